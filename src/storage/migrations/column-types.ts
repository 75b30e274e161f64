import { sql, type ColumnDefinitionBuilder, type CreateTableBuilder } from 'kysely'
import type { EngineTraits } from '../engine-traits.ts'

/** An auto-numbered primary key on every engine (INTEGER rowid, SERIAL, AUTO_INCREMENT). */
export function idColumn (traits: EngineTraits) {
  return (c: ColumnDefinitionBuilder) => {
    const key = c.primaryKey().notNull()
    return traits.idAutoIncrement ? key.autoIncrement() : key
  }
}

/** Adds the engine's table options (MySQL: InnoDB, utf8mb4, binary collation so ids compare case-sensitively). */
export function withTableOptions (traits: EngineTraits) {
  return <T extends string, C extends string>(builder: CreateTableBuilder<T, C>): CreateTableBuilder<T, C> =>
    traits.tableOptions === undefined ? builder : builder.modifyEnd(sql.raw(traits.tableOptions))
}

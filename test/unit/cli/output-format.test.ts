import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parse } from 'yaml'
import { ScopeStateReply } from '../../../src/api/v2/scope/scope-schemas.ts'
import { columnsOf, formatList, formatOne, labelOf, renderTable } from '../../../src/cli/output-format.ts'
import { UsageError } from '../../../src/cli/usage-error.ts'

const columns = columnsOf(ScopeStateReply, ['state'])
const rows = [
  { scope_id: 'bbbb', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', last_processed_timestamp: '2019-07-16T08:00:00+00:00', active: true, scope_activation_toggle_date: '2019-07-01T00:00:00+00:00' },
  { scope_id: 'aaaa', scope_key: null, fetcher: 'gnocchi', collector: 'prometheus', last_processed_timestamp: '2019-07-15T08:00:00+00:00', active: false, scope_activation_toggle_date: '2019-07-02T00:00:00+00:00' },
]

describe('output formats', () => {
  it('derives the columns from the reply schema, in its field order, with OpenStack-style headings', () => {
    assert.deepEqual(columns.map((c) => c.label), [
      'Scope ID', 'Scope Key', 'Fetcher', 'Collector', 'Last Processed Timestamp', 'Active', 'Scope Activation Toggle Date',
    ])
    assert.equal(labelOf('request_id'), 'Request ID')
  })

  it('draws a cliff-style table: rules, left-aligned text, right-aligned numbers, Python spellings of booleans and null', () => {
    const table = formatList([{ key: 'scope_id', label: 'Scope ID' }, { key: 'n', label: 'N' }, { key: 'active', label: 'Active' }, { key: 'scope_key', label: 'Scope Key' }],
      [{ scope_id: 'a-long-id', n: 3, active: true, scope_key: null }, { scope_id: 'b', n: 12, active: false, scope_key: 'k' }])
    assert.equal(table, [
      '+-----------+----+--------+-----------+',
      '| Scope ID  |  N | Active | Scope Key |',
      '+-----------+----+--------+-----------+',
      '| a-long-id |  3 | True   | None      |',
      '| b         | 12 | False  | k         |',
      '+-----------+----+--------+-----------+',
      '',
    ].join('\n'))
  })

  it('prints nothing for an empty table, as cliff does', () => {
    assert.equal(formatList(columns, []), '')
  })

  it('splits multi-line cells over several table lines', () => {
    assert.equal(renderTable(['A'], [['x\nyy']], ['l']), '+----+\n| A  |\n+----+\n| x  |\n| yy |\n+----+\n')
  })

  it('prints JSON keyed by heading, indented unless --noindent', () => {
    const json = formatList(columns, rows, { format: 'json' })
    assert.deepEqual(JSON.parse(json)[1], {
      'Scope ID': 'aaaa', 'Scope Key': null, Fetcher: 'gnocchi', Collector: 'prometheus', 'Last Processed Timestamp': '2019-07-15T08:00:00+00:00', Active: false, 'Scope Activation Toggle Date': '2019-07-02T00:00:00+00:00',
    })
    assert.match(json, /^\[\n {2}\{\n {4}"Scope ID": "bbbb",/)
    assert.equal(formatList(columns, rows, { format: 'json', noIndent: true, columns: ['scope_id'] }), '[{"Scope ID":"bbbb"},{"Scope ID":"aaaa"}]\n')
  })

  it('prints YAML that YAML 1.1 readers read back with timestamps as strings', () => {
    const text = formatList(columns, rows, { format: 'yaml' })
    assert.match(text, /Last Processed Timestamp: "2019-07-16T08:00:00\+00:00"/)
    assert.deepEqual(parse(text)[0]['Active'], true)
    assert.equal(parse(text)[1]['Scope Key'], null)
  })

  it('prints CSV with a heading line, quoting non-numeric values by default, and the other cliff quote modes', () => {
    const data = [{ scope_id: 'a"b,c', n: 3, active: true, scope_key: null }]
    const cols = [{ key: 'scope_id', label: 'Scope ID' }, { key: 'n', label: 'N' }, { key: 'active', label: 'Active' }, { key: 'scope_key', label: 'Scope Key' }]
    assert.equal(formatList(cols, data, { format: 'csv' }), '"Scope ID","N","Active","Scope Key"\n"a""b,c",3,True,""\n')
    assert.equal(formatList(cols, data, { format: 'csv', quote: 'minimal' }), 'Scope ID,N,Active,Scope Key\n"a""b,c",3,True,\n')
    assert.equal(formatList(cols, data, { format: 'csv', quote: 'all' }), '"Scope ID","N","Active","Scope Key"\n"a""b,c","3","True",""\n')
    assert.equal(formatList(cols, data, { format: 'csv', quote: 'none' }), 'Scope ID,N,Active,Scope Key\na\\"b\\,c,3,True,\n')
  })

  it('prints bare values, one row per line, separated by spaces', () => {
    assert.equal(formatList(columns, rows, { format: 'value', columns: ['Scope ID', 'active'] }), 'bbbb True\naaaa False\n')
  })

  it('keeps the command order of columns whatever the order of -c, and matches headings and field names in any case', () => {
    assert.equal(formatList(columns, rows, { format: 'value', columns: ['ACTIVE', 'scope id'] }), 'bbbb True\naaaa False\n')
  })

  it('sorts by several columns, missing values last, and descending on request', () => {
    const data = [
      { scope_id: 'c', fetcher: 'x' }, { scope_id: 'a', fetcher: 'y' }, { scope_id: 'b', fetcher: null }, { scope_id: 'd', fetcher: 'x' },
    ]
    const cols = [{ key: 'scope_id', label: 'Scope ID' }, { key: 'fetcher', label: 'Fetcher' }]
    const ids = (options: object) => formatList(cols, data, { format: 'value', columns: ['scope_id'], ...options }).trim().split('\n')
    assert.deepEqual(ids({ sortColumns: ['Scope ID'] }), ['a', 'b', 'c', 'd'])
    assert.deepEqual(ids({ sortColumns: ['fetcher', 'scope_id'] }), ['c', 'd', 'a', 'b'])
    assert.deepEqual(ids({ sortColumns: ['fetcher', 'scope_id'], sortDescending: true }), ['b', 'a', 'd', 'c'])
  })

  it('refuses an unknown column as a usage error naming the known ones', () => {
    assert.throws(() => formatList(columns, rows, { columns: ['Scope', 'Scope ID'] }), (error: Error) => {
      assert.ok(error instanceof UsageError)
      assert.match(error.message, /Unknown column 'Scope'; the columns are: Scope ID, Scope Key/)
      return true
    })
    assert.throws(() => formatList(columns, [], { sortColumns: ['nope'] }), UsageError)
  })

  it('prints one object as a Field/Value table, a JSON or YAML object, CSV, or one value per line', () => {
    const one = rows[1]
    const table = formatOne(columns, one, { columns: ['scope_id', 'scope_key', 'active'] })
    assert.equal(table, [
      '+-----------+-------+',
      '| Field     | Value |',
      '+-----------+-------+',
      '| Scope ID  | aaaa  |',
      '| Scope Key | None  |',
      '| Active    | False |',
      '+-----------+-------+',
      '',
    ].join('\n'))
    assert.deepEqual(JSON.parse(formatOne(columns, one, { format: 'json', columns: ['scope_id', 'active'] })), { 'Scope ID': 'aaaa', Active: false })
    assert.deepEqual(parse(formatOne(columns, one, { format: 'yaml', columns: ['scope_id'] })), { 'Scope ID': 'aaaa' })
    assert.equal(formatOne(columns, one, { format: 'csv', columns: ['scope_id', 'active'] }), '"Scope ID","Active"\n"aaaa",False\n')
    assert.equal(formatOne(columns, one, { format: 'value', columns: ['scope_id', 'scope_key'] }), 'aaaa\nNone\n')
  })
})

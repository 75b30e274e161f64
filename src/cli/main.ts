import { existsSync } from 'node:fs'
import { Command, Option } from 'commander'
// A JSON import: esbuild inlines it into dist/, tsx reads it from the checkout,
// so the bundle needs no package.json beside it.
import packageJson from '../../package.json' with { type: 'json' }
import { ConfigError, loadConfig, type ConfigFileSource } from '../config/load-config.ts'
import { openProcessLog } from '../logger.ts'
import { onHangup, onStopSignals } from './process-signals.ts'
import { registerScopeCommands } from './scope-commands.ts'

// The server, worker and migrations load their drivers on import: loaded only
// by the commands that need them, so `scopekeeper scope …` starts quickly.
const server = async () => await import('../server.ts')
const migrations = async () => await import('../storage/migrate.ts')

// oslo.config reads --config-file and --config-dir as the command line
// reaches each one (cfg.py _ConfigFileOpt/_ConfigDirOpt): the later wins,
// whichever kind. All three flags append to this one list, in that order.
const configFiles: ConfigFileSource[] = []
const collectFile = (file: string): ConfigFileSource[] => { configFiles.push({ file }); return configFiles }
const collectDir = (dir: string): ConfigFileSource[] => { configFiles.push({ dir }); return configFiles }

function configFrom (options: Record<string, string | number | boolean | undefined>) {
  return loadConfig({ commandLine: configFiles, flags: options })
}

/** Adds the options that name the configuration files, in oslo.config's spelling: every command that reads them has these three. */
function withConfigFileOptions (command: Command): Command {
  return command
    .option('--config-file <file>', 'a cloudkitty.conf-style file; repeatable, a later one wins', collectFile)
    .option('--config-dir <dir>', "every *.conf in DIR, in sorted order; repeatable, read where it stands among --config-file's", collectDir)
    .option('--config <file>', 'the same as --config-file', collectFile)
}

// Help that serve and worker share: both hold CloudKitty's processing locks, and both log.
const COORDINATION_URL_HELP = "tooz URL of CloudKitty's processing locks (default file:///var/lib/cloudkitty/locks)"
const DEBUG_HELP = 'log at debug level ([DEFAULT] debug)'

const program = new Command('scopekeeper')
  .description('OpenStack CloudKitty v2 /v2/scope state API')
  .version(packageJson.version)
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))

const serveCommand = program.command('serve')
  .description('Migrate the database, then serve the API (with the reset worker unless --no-worker).')
  .option('--host <address>', 'address to listen on (default 127.0.0.1)')
  .addOption(new Option('--port <port>', 'port to listen on (default 8889)'))
  .option('--database <url>', 'database URL (default sqlite:///data/scopekeeper.sqlite)')
withConfigFileOptions(serveCommand)
  .option('--auth <strategy>', 'keystone (default, [keystone_authtoken] settings) or noauth')
  .option('--coordination-url <url>', COORDINATION_URL_HELP)
  .option('--no-worker', 'do not apply resets in this process')
  .option('--debug', DEBUG_HELP)
  .action(async (options) => {
    // commander sets worker=true by default; only an explicit --no-worker overrides the config.
    const flags = { ...options, worker: options.worker === false ? false : undefined }
    const config = configFrom(flags)
    const log = openProcessLog(config.log, 'scopekeeper-api')
    // Before the start, which may wait long for the database: SIGHUP's default ends the process.
    const hangup = onHangup(log, config, () => configFrom(flags))
    // Also before it: a SIGTERM right after the "listening" line (a
    // supervisor, a test) found no handler and killed the process.
    const starting = (async () => await (await server()).startServer(config, log.logger))()
    onStopSignals(log, async () => { await (await starting).close() })
    const running = await starting
    hangup.reloadPolicyWith(() => { running.app.reloadPolicy() })
  })

const workerCommand = program.command('worker')
  .description('Apply recorded resets (any number of workers and API replicas share the queue).')
  .option('--database <url>', 'database URL')
withConfigFileOptions(workerCommand)
  .option('--concurrency <n>', 'reset jobs worked on at once (default 1)')
  .option('--coordination-url <url>', COORDINATION_URL_HELP)
  .option('--once', 'apply every claimable job, then exit')
  .option('--debug', DEBUG_HELP)
  .action(async (options) => {
    const config = configFrom(options)
    const log = openProcessLog(config.log, 'scopekeeper-worker')
    const { logger } = log
    onHangup(log, config, () => configFrom(options))
    const { openDatabaseFromConfig, workerFromConfig } = await server()
    const database = openDatabaseFromConfig(config, logger)
    await (await migrations()).migrateToLatest(database)
    const { worker, close } = workerFromConfig(config, database, logger)
    if (options.once === true) {
      const finished = (async () => {
        await worker.drain()
        await close()
        await database.close()
      })()
      // As in the loop: the job in hand goes back to the queue after its batch.
      onStopSignals(log, async () => {
        await worker.stop()
        await finished
      })
      await finished
      log.close()
      return
    }
    onStopSignals(log, async () => {
      await close()
      await database.close()
    })
    worker.start()
    logger.info({ worker: worker.workerId, concurrency: config.reset.concurrency, database: database.description }, 'scopekeeper worker running')
  })

const migrateCommand = program.command('migrate')
  .description('Bring the database schema up to date, then exit.')
  .option('--database <url>', 'database URL')
withConfigFileOptions(migrateCommand)
  .option('--dry-run', 'print the SQL the pending migrations would run, and change nothing')
  .action(async (options) => {
    const config = configFrom(options)
    const { engineOfUrl, sqlitePathFromUrl } = await import('../storage/open-database.ts')
    const url = config.database.url
    // Opening a SQLite file creates it: a dry run plans against an empty
    // database in memory instead, which is what an absent file holds.
    const absent = options.dryRun === true && engineOfUrl(url) === 'sqlite' && !existsSync(sqlitePathFromUrl(url))
    const planned = absent ? { ...config, database: { ...config.database, url: 'sqlite://' } } : config
    const database = (await server()).openDatabaseFromConfig(planned, openProcessLog(config.log, 'scopekeeper-migrate').logger)
    const { migrateToLatest, planMigrations } = await migrations()
    try {
      if (options.dryRun === true) {
        const plans = await planMigrations(database)
        for (const plan of plans) console.log(`-- ${plan.name}\n${plan.statements.join('\n')}\n`)
        if (plans.length === 0) console.log('-- Database schema is up to date.')
        return
      }
      const { results = [] } = await migrateToLatest(database)
      for (const r of results) console.log(`${r.migrationName}: ${r.status}`)
      if (results.length === 0) console.log('Database schema is up to date.')
    } finally {
      await database.close()
    }
  })

registerScopeCommands(program)

program.command('policy')
  .description('Policy rules (oslo.policy).')
  .command('sample')
  .description('Print the default rules as a commented YAML policy file, as oslopolicy-sample-generator does.')
  .action(async () => {
    const { policySample } = await import('../auth/policy/policy-sample.ts')
    process.stdout.write(policySample())
  })

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`scopekeeper: ${error.message}`)
    process.exit(2)
  }
  console.error(`scopekeeper: ${(error as Error)?.stack ?? String(error)}`)
  process.exit(1)
})

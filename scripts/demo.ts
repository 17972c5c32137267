/**
 * The zero-setup demo (`npm run demo`): an embedded PostgreSQL (wal_level=logical), kinesalite with
 * a stream, the service itself (`node src/main.ts`, pgoutput, configured only through its
 * environment as in production), a workload of inserts, updates and deletes, and a reader that
 * reads the stream back. Shows, every second, changes written and read back, lag, end-to-end
 * latency and a sample record. Ctrl-C stops and removes everything.
 *
 *   npm run demo                       runs until Ctrl-C
 *   npm run demo -- --seconds 20       writes for 20 s, waits (30 s at most) for every change to
 *                                      arrive, prints a summary; exit 0 only if all arrived
 *   npm run demo -- --rate 200         changes per second (default 100)
 *   PGHOST=... npm run demo            uses that database (PG* variables) and wal2json instead
 */
import * as Os from "node:os"
import { startKinesalite } from "../support/KinesaliteHarness.ts"
import { valueOf } from "../support/Metrics.ts"
import { startService } from "../support/ServiceProcess.ts"
import type { ServiceProcess } from "../support/ServiceProcess.ts"
import { startEmbeddedPostgres } from "./demo/EmbeddedPostgres.ts"
import { Ledger } from "./demo/Ledger.ts"
import { line, panel, summary } from "./demo/Panel.ts"
import type { ServiceFigures } from "./demo/Panel.ts"
import { type Options, parseOptions } from "./demo/Options.ts"
import { openSql } from "./demo/Sql.ts"
import type { Sql } from "./demo/Sql.ts"
import { startStreamReader } from "./demo/StreamReader.ts"
import { prefilledRows, prefilledTable, schema, setupStatements, startWorkload } from "./demo/Workload.ts"

const streamName = "cdc-demo"
const drainTimeoutMs = 30_000
const tty = process.stdout.isTTY === true
const say = (text: string): void => {
  process.stdout.write(text + "\n")
}

/** Things to undo at the end, newest first. */
const cleanups: Array<{ readonly what: string; readonly run: () => Promise<unknown> }> = []
const cleanUp = async (): Promise<void> => {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!
    await step.run().catch((error: unknown) => say(`cleanup: ${step.what} failed: ${String(error)}`))
  }
}

let interrupted = false
let wakeUp: () => void = () => undefined
process.on("SIGINT", () => {
  if (interrupted) {
    say("second Ctrl-C: exiting now")
    process.exit(130)
  }
  interrupted = true
  wakeUp()
})
process.on("SIGTERM", () => {
  interrupted = true
  wakeUp()
})

const sleepUnlessInterrupted = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    wakeUp = () => {
      clearTimeout(timer)
      resolve()
    }
  })

interface Database {
  readonly mode: string
  readonly plugin: "pgoutput" | "wal2json"
  readonly env: Readonly<Record<string, string>>
}

/** The user's PostgreSQL (PGHOST set) or an embedded one. */
const database = async (): Promise<Database> => {
  if (process.env.PGHOST !== undefined && process.env.PGHOST !== "") {
    const user = process.env.PGUSER ?? Os.userInfo().username
    const env: Record<string, string> = {
      PGHOST: process.env.PGHOST, PGPORT: process.env.PGPORT ?? "5432", PGUSER: user, PGDATABASE: process.env.PGDATABASE ?? user
    }
    for (const name of ["PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT"]) {
      const value = process.env[name]
      if (value !== undefined) env[name] = value
    }
    return { mode: `PostgreSQL at ${env.PGHOST}:${env.PGPORT}, wal2json`, plugin: "wal2json", env }
  }
  say("starting an embedded PostgreSQL ...")
  const pg = await startEmbeddedPostgres()
  cleanups.push({ what: "stop PostgreSQL", run: pg.stop })
  say(`  ${pg.version} on 127.0.0.1:${pg.port}`)
  return { mode: `embedded ${pg.version.replace(/^postgres \(PostgreSQL\) /, "PostgreSQL ")}, pgoutput`, plugin: "pgoutput", env: pg.env }
}

const connect = (env: Readonly<Record<string, string>>): Promise<Sql> =>
  openSql({
    host: env.PGHOST!, port: Number(env.PGPORT ?? 5432), user: env.PGUSER!, password: env.PGPASSWORD,
    database: env.PGDATABASE!, ssl: env.PGSSLMODE !== undefined && env.PGSSLMODE !== "disable" && env.PGSSLMODE !== "prefer",
    maxConnections: 2
  })

const serviceFigures = async (service: ServiceProcess): Promise<ServiceFigures> => {
  const samples = await service.metricsNow()
  return {
    published: samples && valueOf(samples, "cdc_changes_published_total"),
    lagBytes: samples && valueOf(samples, "cdc_replication_lag_bytes"),
    lagSeconds: samples && valueOf(samples, "cdc_replication_lag_seconds")
  }
}

const main = async (options: Options): Promise<number> => {
  const db = await database()
  const sql = await connect(db.env)
  cleanups.push({ what: "close the workload's connections", run: sql.close })
  for (const statement of setupStatements) await sql.query(statement)
  const slot = `cdc_demo_${db.plugin}`
  await sql.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot])
  // the service keeps backfill requests in a schema of its own: leave the database as it was
  const ownSchemaExisted = (await sql.query<{ found: boolean }>(
    "SELECT to_regnamespace('cdc_logical_replication') IS NOT NULL AS found"))[0]?.found === true
  cleanups.push({
    what: "drop the demo's slot and schema",
    run: async () => {
      await sql.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot])
      await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      if (db.plugin === "pgoutput") await sql.query("DROP PUBLICATION IF EXISTS cdc_demo")
      if (!ownSchemaExisted) await sql.query("DROP SCHEMA IF EXISTS cdc_logical_replication CASCADE")
      else await sql.query("DELETE FROM cdc_logical_replication.backfills WHERE slot = $1", [slot])
    }
  })

  say("starting kinesalite (a Kinesis implementation) ...")
  const kinesis = await startKinesalite()
  cleanups.push({ what: "stop kinesalite", run: kinesis.stop })
  await kinesis.createStream(streamName, 2)

  say(`starting the service: node src/main.ts (slot ${slot}, ${db.plugin}) ...`)
  const service = startService({
    ...db.env,
    REPLICATION_SLOT: slot,
    REPLICATION_PLUGIN: db.plugin,
    PUBLICATION_NAME: "cdc_demo",
    ...(db.plugin === "wal2json" ? { WAL2JSON_ADD_TABLES: `${schema}.*` } : {}),
    AWS_REGION: kinesis.region,
    AWS_ACCESS_KEY_ID: "demo",
    AWS_SECRET_ACCESS_KEY: "demo",
    KINESIS_STREAM: streamName,
    AWS_ENDPOINT_URL_KINESIS: kinesis.endpoint,
    // the slot is new: backfill the rows that were there before it (cdc_demo.products)
    INITIAL_BACKFILL: "true"
  })
  cleanups.push({ what: "stop the service", run: () => service.stop() })
  const failWithLog = (message: string): never => {
    throw new Error(`${message}\nthe service's log ends with:\n${service.logTail(30)}`)
  }
  // changes count from the moment the service's slot exists and streams
  await service.waitUntil(`the service to stream from slot ${slot}`, async () => {
    const rows = await sql.query<{ active: boolean }>("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot])
    return rows[0]?.active === true
  }, { timeoutMs: 60_000, intervalMs: 200 })

  const ledger = new Ledger(schema)
  ledger.expectBackfill(prefilledTable, prefilledRows)
  const problems: Array<string> = []
  const reader = await startStreamReader(kinesis.client, streamName, (data, at) => ledger.readBack(data, at),
    (error) => problems.push(`stream reader: ${String(error)}`))
  cleanups.push({ what: "stop the stream reader", run: reader.stop })
  const workload = startWorkload(sql, ledger, options.rate, (error) => problems.push(`workload: ${String(error)}`))
  cleanups.push({ what: "stop the workload", run: workload.stop })
  say(`${schema}.${prefilledTable} held ${prefilledRows} rows before the slot: the service backfills them while the workload runs`)
  say(`writing about ${options.rate} changes/s${options.seconds === undefined ? " (Ctrl-C to stop)" : ` for ${options.seconds} s`}`)

  const started = Date.now()
  let writing = true
  let writeSeconds = 0
  const show = async (): Promise<void> => {
    const state = {
      elapsedSeconds: (Date.now() - started) / 1000, mode: db.mode, ledger: ledger.snapshot(),
      service: await serviceFigures(service), writing
    }
    if (tty) process.stdout.write(`\x1b[H\x1b[J${panel(state, process.stdout.columns ?? 100)}\n${problems.slice(-3).join("\n")}\n`)
    else say(line(state))
    problems.splice(0, Math.max(0, problems.length - 3))
  }
  for (;;) {
    await sleepUnlessInterrupted(1_000)
    // Ctrl-C in a terminal signals the whole process group: the service may be stopping too
    if (interrupted || (options.seconds !== undefined && Date.now() - started >= options.seconds * 1000)) break
    if (service.hasExited()) failWithLog(`the service exited (code ${await service.exited})`)
    await show()
  }
  writing = false
  writeSeconds = (Date.now() - started) / 1000
  await workload.stop()
  if (!interrupted) {
    // every change written must reach the stream
    const deadline = Date.now() + drainTimeoutMs
    while (!ledger.complete() && Date.now() < deadline && !interrupted) {
      await sleepUnlessInterrupted(250)
      if (service.hasExited()) failWithLog(`the service exited (code ${await service.exited})`)
    }
  }
  await show()
  const final = ledger.snapshot()
  say(summary(final, writeSeconds, interrupted))
  if (final.missing > 0 && !interrupted) say(`the service's log ends with:\n${service.logTail(15)}`)
  if (workload.failures() > 0) say(`(${workload.failures()} workload transactions failed and were not counted)`)
  if (interrupted) return 130
  return final.written > 0 && final.missing === 0 && final.backfilled === final.backfillExpected ? 0 : 1
}

const parsed = await parseOptions(process.argv.slice(2))
if (parsed._tag === "Exit") process.exit(parsed.code)
const options = parsed.value
let code = 1
try {
  code = await main(options)
} catch (error) {
  process.stderr.write(`\nDEMO FAILED: ${error instanceof Error ? error.message : String(error)}\n`)
  code = 1
}
await cleanUp()
process.exit(code)

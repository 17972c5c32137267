/**
 * The benchmark (`npm run bench`, `npm run bench -- --quick`): a throwaway PostgreSQL with wal2json,
 * a backlog preloaded into several identical slots, then
 *   - the ceiling: pg_recvlogical draining one slot (what PostgreSQL itself streams here),
 *   - drains: the service (`node src/main.ts`, default settings) draining a slot into the bench
 *     endpoint at 0 ms and 20 ms per request, and into kinesalite,
 *   - latency: a steady load of single-row transactions, commit time to Kinesis acknowledgement,
 *   - memory: peak RSS draining a backlog of at least 4x QUEUE_MAX_BYTES, with a small queue and
 *     (in a full run) with the default one (the default-settings drains).
 * Prints a markdown table and writes JSON to bench/results/. Every figure is measured; when the
 * service does not stream, the run fails with the service's log instead of reporting anything.
 *
 * Options: --quick, --changes N, --latency-rate N, --latency-seconds N, --results-dir DIR.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freePort, startPostgres } from "../test/support/PostgresHarness.ts"
import type { PgCluster } from "../test/support/PostgresHarness.ts"
import { DEFAULT_QUEUE_MAX_BYTES } from "../src/config/ServiceConfig.ts"
import * as Backlog from "./Backlog.ts"
import { measureCeiling } from "./Ceiling.ts"
import { startEndpointProcess, startKinesaliteProcess } from "./EndpointProcess.ts"
import type { ChildServer, EndpointProcess } from "./EndpointProcess.ts"
import { createLoadSchema, runLoad } from "./LatencyLoad.ts"
import { markdown, throughput, writeResults } from "./Report.ts"
import type { BacklogFigures, BenchResults, DrainFigures, LatencyFigures, Machine, MemoryFigures, Throughput } from "./Report.ts"
import { readMemory, repoRoot, startService, waitFor } from "./ServiceProcess.ts"
import type { ServiceProcess } from "./ServiceProcess.ts"

const MiB = 1024 * 1024

interface Settings {
  readonly quick: boolean
  readonly changes: number
  readonly latencyRate: number
  readonly latencySeconds: number
  readonly latencyClients: number
  readonly memoryQueueBytes: number
  readonly resultsDir: string
}

const settingsFrom = (args: ReadonlyArray<string>): Settings => {
  const value = (name: string): number | undefined => {
    const at = args.indexOf(name)
    if (at < 0) return undefined
    const n = Number(args[at + 1])
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`)
    return n
  }
  const quick = args.includes("--quick")
  const resultsAt = args.indexOf("--results-dir")
  return {
    quick,
    // full: bodies of at least 4x the default QUEUE_MAX_BYTES, so the default drains measure memory too
    changes: value("--changes") ?? (quick ? 20_000 : 500_000),
    latencyRate: value("--latency-rate") ?? (quick ? 1_000 : 5_000),
    latencySeconds: value("--latency-seconds") ?? (quick ? 5 : 30),
    latencyClients: 8,
    memoryQueueBytes: quick ? 2 * MiB : 16 * MiB,
    resultsDir: resultsAt >= 0 && args[resultsAt + 1] !== undefined
      ? Path.resolve(args[resultsAt + 1]!)
      : Path.join(repoRoot, "bench", "results")
  }
}

const log = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

/** "16/B374D848" → 0x16B374D848 */
const lsnToNumber = (lsn: string): number => {
  const [hi, lo] = lsn.split("/")
  return Number((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`))
}

/** Things to stop at the end, whatever happens, newest first. */
const cleanups: Array<() => Promise<unknown>> = []
const cleanUp = async (): Promise<void> => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined)
}

const machine = async (pg: PgCluster, loadAverageAtStart: number): Promise<Machine> => ({
  cores: Os.cpus().length,
  cpuModel: Os.cpus()[0]?.model.trim() ?? "unknown",
  memoryGiB: Os.totalmem() / 1024 ** 3,
  node: process.versions.node,
  postgres: (await pg.psql("SELECT version()")).split(" on ")[0] ?? "PostgreSQL",
  loadAverageAtStart
})

interface ServiceRun {
  readonly service: ServiceProcess
  /** performance.now() and Date.now() when the service was spawned. */
  readonly startedAt: number
  readonly startedAtEpochMs: number
}

const runService = async (
  pg: PgCluster,
  workDir: string,
  options: { readonly slot: string; readonly endpointUrl: string; readonly streamName: string; readonly extraEnv?: Readonly<Record<string, string>> }
): Promise<ServiceRun> => {
  const httpPort = await freePort()
  const startedAt = performance.now()
  const startedAtEpochMs = Date.now()
  const service = startService({
    httpPort,
    logFile: Path.join(workDir, `service-${options.slot}.log`),
    env: {
      ...pg.env,
      REPLICATION_SLOT: options.slot,
      REPLICATION_PLUGIN: "wal2json",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "bench",
      AWS_SECRET_ACCESS_KEY: "bench",
      KINESIS_STREAM: options.streamName,
      AWS_ENDPOINT_URL_KINESIS: options.endpointUrl,
      LOG_FORMAT: "json",
      ...options.extraEnv
    }
  })
  cleanups.push(() => service.stop())
  return { service, startedAt, startedAtEpochMs }
}

/** Waits until the service's frontier reaches `endLsn`; samples RSS meanwhile; returns seconds and peak RSS. */
const awaitFrontier = async (run: ServiceRun, endLsn: string, timeoutMs: number): Promise<{ seconds: number; peakRssBytes: number | undefined }> => {
  const target = lsnToNumber(endLsn)
  let peak = 0
  await waitFor(`the service's frontier (cdc_frontier_lsn) to reach ${endLsn}`, async () => {
    const memory = run.service.memory()
    if (memory !== undefined) peak = Math.max(peak, memory.peakRssBytes, memory.rssBytes)
    const frontier = (await run.service.metrics())?.get("cdc_frontier_lsn")
    return frontier !== undefined && frontier >= target ? true : undefined
  }, { timeoutMs, intervalMs: 25, service: run.service })
  const seconds = (performance.now() - run.startedAt) / 1000
  const memory = readMemory(run.service.pid)
  if (memory !== undefined) peak = Math.max(peak, memory.peakRssBytes)
  return { seconds, peakRssBytes: peak === 0 ? undefined : peak }
}

const drain = async (
  pg: PgCluster,
  workDir: string,
  backlog: BacklogFigures & { readonly endLsn: string },
  ceiling: Throughput,
  options: { readonly name: string; readonly slot: string; readonly server: ChildServer; readonly endpoint?: EndpointProcess; readonly latencyMs: number }
): Promise<DrainFigures> => {
  log(`drain: service → ${options.name} (slot ${options.slot})`)
  const run = await runService(pg, workDir, { slot: options.slot, endpointUrl: options.server.url, streamName: "bench" })
  const { seconds, peakRssBytes } = await awaitFrontier(run, backlog.endLsn, 600_000)
  await run.service.stop()
  const stats = options.endpoint ? await options.endpoint.stats() : undefined
  if (stats !== undefined && stats.records < backlog.changes) {
    throw new Error(`the service's frontier passed the backlog's end but the endpoint acknowledged only ${stats.records} of ${backlog.changes} changes`)
  }
  const t = throughput(backlog.changes, backlog.bodyBytes, seconds)
  log(`  ${Math.round(t.changesPerSecond)} changes/s in ${seconds.toFixed(2)} s`)
  return {
    name: options.name,
    endpoint: options.endpoint ? "bench endpoint" : "kinesalite",
    endpointLatencyMs: options.latencyMs,
    changes: backlog.changes,
    recordsAcknowledged: stats?.records,
    secondsToFirstAck: stats?.firstAckMs === undefined ? undefined : (stats.firstAckMs - run.startedAtEpochMs) / 1000,
    ...t,
    ratioToCeiling: t.changesPerSecond / ceiling.changesPerSecond,
    peakRssBytes
  }
}

const measureLatency = async (pg: PgCluster, workDir: string, settings: Settings): Promise<LatencyFigures> => {
  log(`latency: ${settings.latencyRate} single-row transactions/s for ${settings.latencySeconds} s`)
  await createLoadSchema(pg)
  await Backlog.createSlot(pg, "bench_latency")
  const endpoint = await startEndpointProcess({ latencyMs: 0 })
  cleanups.push(() => endpoint.stop())
  const run = await runService(pg, workDir, { slot: "bench_latency", endpointUrl: endpoint.url, streamName: "bench" })
  // streaming: a first change arrives
  await pg.psql("INSERT INTO public.bench_events (account, status, payload) VALUES (0, 'warm-up', 'x')")
  await waitFor("the service to publish a first change", async () => ((await endpoint.stats()).records > 0 ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 50, service: run.service })
  await endpoint.reset()
  const load = await runLoad(pg, { rate: settings.latencyRate, seconds: settings.latencySeconds, clients: settings.latencyClients, workDir })
  await waitFor(`all ${load.transactions} changes of the load to be acknowledged`,
    async () => ((await endpoint.stats()).records >= load.transactions ? true : undefined),
    { timeoutMs: 120_000, intervalMs: 50, service: run.service })
  const stats = await endpoint.stats()
  await run.service.stop()
  await endpoint.stop()
  if (stats.latencyMs === undefined) throw new Error("the endpoint found no commit timestamp in the records")
  return {
    offeredRate: settings.latencyRate,
    seconds: settings.latencySeconds,
    transactions: load.transactions,
    achievedTps: load.achievedTps,
    latencyMs: stats.latencyMs
  }
}

const main = async (): Promise<void> => {
  const settings = settingsFrom(process.argv.slice(2))
  const startedAt = new Date().toISOString()
  const loadAverageAtStart = Os.loadavg()[0] ?? 0
  const workDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-bench-"))
  cleanups.push(async () => Fs.rmSync(workDir, { recursive: true, force: true }))
  log(`PostgreSQL with wal2json (work dir ${workDir})`)
  const pg = await startPostgres({ conf: { synchronous_commit: "on", max_wal_size: "'8GB'", checkpoint_timeout: "'30min'" } })
  cleanups.push(() => pg.stop())
  // the service, pg_recvlogical and the endpoint must see the same backlog: one slot each, created before it
  const slots = ["bench_ceiling", "bench_drain_0ms", "bench_drain_20ms", "bench_drain_kinesalite", "bench_memory"]
  await Backlog.createSchema(pg)
  for (const slot of slots) await Backlog.createSlot(pg, slot)

  log(`backlog: writing ${settings.changes} changes`)
  const written = await Backlog.writeBacklog(pg, Backlog.planBacklog(settings.changes))
  const endpos = await Backlog.currentLsn(pg)
  // WAL after the backlog's end, so pg_recvlogical --endpos has a record to stop at
  await pg.psql("SELECT pg_logical_emit_message(false, 'bench', 'end of backlog')")

  log("ceiling: pg_recvlogical")
  const ceilingRun = await measureCeiling(pg, "bench_ceiling", endpos, workDir)
  if (ceilingRun.changes !== written || ceilingRun.lastCommitEndLsn === undefined) {
    throw new Error(`pg_recvlogical read ${ceilingRun.changes} changes, the backlog has ${written}`)
  }
  const backlog = {
    changes: ceilingRun.changes, transactions: ceilingRun.transactions, byAction: ceilingRun.byAction,
    bodyBytes: ceilingRun.bodyBytes, endLsn: ceilingRun.lastCommitEndLsn
  }
  const ceiling = throughput(backlog.changes, backlog.bodyBytes, ceilingRun.seconds)
  log(`  ${Math.round(ceiling.changesPerSecond)} changes/s, ${ceiling.megabytesPerSecond.toFixed(1)} MB/s; backlog ends at ${backlog.endLsn}`)

  const drains: Array<DrainFigures> = []
  for (const latencyMs of [0, 20]) {
    const endpoint = await startEndpointProcess({ latencyMs })
    cleanups.push(() => endpoint.stop())
    drains.push(await drain(pg, workDir, backlog, ceiling, {
      name: `bench endpoint, ${latencyMs} ms`, slot: `bench_drain_${latencyMs}ms`, server: endpoint, endpoint, latencyMs
    }))
    await endpoint.stop()
  }
  const kinesalite = await startKinesaliteProcess({ streamName: "bench", shards: 4 })
  cleanups.push(() => kinesalite.stop())
  drains.push(await drain(pg, workDir, backlog, ceiling, { name: "kinesalite", slot: "bench_drain_kinesalite", server: kinesalite, latencyMs: 0 }))
  await kinesalite.stop()

  log(`memory: QUEUE_MAX_BYTES=${settings.memoryQueueBytes}, backlog bodies ${backlog.bodyBytes} bytes`)
  if (backlog.bodyBytes < 4 * settings.memoryQueueBytes) {
    throw new Error(`the backlog (${backlog.bodyBytes} bytes) is smaller than 4x QUEUE_MAX_BYTES (${settings.memoryQueueBytes}); use more --changes`)
  }
  const memoryEndpoint = await startEndpointProcess({ latencyMs: 0 })
  cleanups.push(() => memoryEndpoint.stop())
  const memoryRun = await runService(pg, workDir, {
    slot: "bench_memory", endpointUrl: memoryEndpoint.url, streamName: "bench",
    extraEnv: { QUEUE_MAX_BYTES: String(settings.memoryQueueBytes) }
  })
  const memoryDrain = await awaitFrontier(memoryRun, backlog.endLsn, 600_000)
  await memoryRun.service.stop()
  await memoryEndpoint.stop()
  if (memoryDrain.peakRssBytes === undefined) throw new Error("could not read the service's peak RSS from /proc")
  const memory: Array<MemoryFigures> = [{
    run: "small queue", queueMaxBytes: settings.memoryQueueBytes, backlogBodyBytes: backlog.bodyBytes,
    seconds: memoryDrain.seconds, peakRssBytes: memoryDrain.peakRssBytes
  }]
  // the default-settings drains are memory runs too when the backlog is at least 4x the default queue
  for (const d of drains) {
    if (d.endpoint !== "bench endpoint" || d.peakRssBytes === undefined) continue
    if (backlog.bodyBytes < 4 * DEFAULT_QUEUE_MAX_BYTES) continue
    memory.push({
      run: `default settings (${d.name})`, queueMaxBytes: DEFAULT_QUEUE_MAX_BYTES, backlogBodyBytes: backlog.bodyBytes,
      seconds: d.seconds, peakRssBytes: d.peakRssBytes
    })
  }

  const latency = await measureLatency(pg, workDir, settings)

  const results: BenchResults = {
    startedAt, quick: settings.quick, machine: await machine(pg, loadAverageAtStart),
    backlog: { changes: backlog.changes, transactions: backlog.transactions, byAction: backlog.byAction, bodyBytes: backlog.bodyBytes },
    ceiling, drains, latency, memory
  }
  process.stdout.write(markdown(results) + "\n")
  const file = writeResults(settings.resultsDir, results)
  log(`results written to ${file}`)
}

let interrupted = false
const onSignal = (): void => {
  if (interrupted) process.exit(130)
  interrupted = true
  log("interrupted: cleaning up")
  void cleanUp().then(() => process.exit(130))
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

try {
  await main()
  await cleanUp()
} catch (error) {
  process.stderr.write(`\nBENCHMARK FAILED: ${error instanceof Error ? error.message : String(error)}\n`)
  await cleanUp()
  process.exitCode = 1
}

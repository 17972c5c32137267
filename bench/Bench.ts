/**
 * What every benchmark scenario shares: one throwaway PostgreSQL, one backlog written into every
 * slot the scenarios ask for (created before it, so each sees the same changes), the pg_recvlogical
 * ceiling of each plugin on a twin slot, and the means to run the service against an endpoint and
 * measure it (seconds, peak RSS, CPU time). Everything started is stopped by `cleanUp`.
 *
 * A scenario (bench/scenarios/) names the backlog slots it needs and returns rows of results; to add
 * one, write it there and list it in bench/run.ts.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { PgCluster } from "../support/PostgresHarness.ts"
import { startPostgres } from "../support/PostgresHarness.ts"
import { type Checkout, checkoutAt, type ServiceProcess, startService, thisCheckout, warmCompileCache } from "../support/ServiceProcess.ts"
import { valueOf } from "../support/Metrics.ts"
import type { ScenarioName } from "./Arguments.ts"
import * as Backlog from "./Backlog.ts"
import { type Plugin, readSlotOutput, recvlogical } from "./Ceiling.ts"
import { type ChildServer, type EndpointProcess, startEndpointProcess, startKinesaliteProcess } from "./EndpointProcess.ts"
import type { BacklogFigures, BenchResults, CeilingFigures, Machine } from "./Report.ts"
import { throughput } from "./Report.ts"

export interface Settings {
  readonly quick: boolean
  readonly changes: number
  readonly latencyRate: number
  readonly latencySeconds: number
  /** QUEUE_MAX_BYTES of the small-queue memory run. */
  readonly memoryQueueBytes: number
  /** Seconds the stuck-key scenario fails one key under load. */
  readonly stuckSeconds: number
  /** A checkout of the baseline commit (bench/BASELINE.md) whose drains run beside this one's, when given. */
  readonly baselineCheckout: string | undefined
  /** Whether to measure the scaling table (KINESIS_MAX_INFLIGHT × endpoint latency, row sizes). */
  readonly scaling: boolean
  /** Only these scenarios (all when empty). */
  readonly only: ReadonlyArray<ScenarioName>
}

export interface SlotSpec {
  readonly slot: string
  readonly plugin: Plugin
}

/** What a scenario adds to the results. */
export type ScenarioResults = Partial<Pick<BenchResults, "drains" | "latency" | "memory" | "scaling" | "backfill">>

export interface Scenario {
  readonly name: string
  /** Slots that must hold the shared backlog (created before it is written). */
  readonly backlogSlots: (settings: Settings) => ReadonlyArray<SlotSpec>
  readonly run: (bench: Bench) => Promise<ScenarioResults>
}

export interface BacklogRun extends BacklogFigures {
  /** The end LSN of the backlog's last commit: a drain is done when the service's frontier reaches it. */
  readonly endLsn: string
}

/**
 * How often a measured run's frontier is polled (its /metrics, which the service spends CPU time
 * answering: ~3% of its CPU time at one poll every 25 ms, in the README's profile): every
 * POLL_START_MS until the frontier moves; then an eighth of the time the end is estimated to be
 * away (from the frontier's last progress), between POLL_MIN_MS and POLL_MAX_MS, and half the last
 * wait whenever the frontier stood still. How late that may see the end is measured for each run
 * (`endWithinSeconds`).
 */
const POLL_START_MS = 100
const POLL_MIN_MS = 25
const POLL_MAX_MS = 200

/** One service run measured until its frontier reached an LSN. */
export interface Measured {
  readonly service: ServiceProcess
  /**
   * From spawn to the first poll that saw the frontier past the LSN: an upper bound, at most
   * `endWithinSeconds` late (the time since the poll before it saw the frontier short of the LSN).
   */
  readonly seconds: number
  readonly endWithinSeconds: number
  /** How many times the frontier was polled. */
  readonly polls: number
  /** Epoch ms at spawn. */
  readonly startedAtEpochMs: number
  /** Highest VmHWM/VmRSS seen, including at the end. */
  readonly peakRssBytes: number | undefined
  /** User + system CPU seconds from spawn until the poll that saw the frontier past the LSN. */
  readonly cpuSeconds: number
}

export interface Bench {
  readonly settings: Settings
  readonly pg: PgCluster
  readonly workDir: string
  /** The publication (FOR ALL TABLES, created before the backlog) pgoutput slots read. */
  readonly publication: string
  readonly backlog: BacklogRun
  readonly ceiling: (plugin: Plugin) => CeilingFigures
  /** The baseline checkout, when the run was given one. */
  readonly baseline: Checkout | undefined
  readonly log: (message: string) => void
  /** Runs `stop` at the end (newest first), whatever happens. */
  readonly onCleanUp: (stop: () => Promise<unknown>) => void
  readonly startEndpoint: (options: { readonly latencyMs: number }) => Promise<EndpointProcess>
  readonly startKinesalite: (options: { readonly streamName: string; readonly shards: number }) => Promise<ChildServer>
  /**
   * Starts the service (default settings plus `env`; this checkout's unless told otherwise) on `slot`,
   * publishing to stream "bench" at `endpointUrl`.
   */
  readonly startService: (options: {
    readonly slot: string
    readonly plugin: Plugin
    readonly endpointUrl: string
    readonly env?: Readonly<Record<string, string>>
    readonly checkout?: Checkout
  }) => ServiceProcess
  /** Starts the service and waits until its frontier reaches `endLsn` (default: the backlog's end); stops it. */
  readonly measureService: (options: {
    readonly slot: string
    readonly plugin: Plugin
    readonly endpointUrl: string
    readonly env?: Readonly<Record<string, string>>
    readonly endLsn?: string
    readonly timeoutMs?: number
    readonly checkout?: Checkout
  }) => Promise<Measured>
}

export const log = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

/** "16/B374D848" → 0x16B374D848 */
export const lsnToNumber = (lsn: string): number => {
  const [hi, lo] = lsn.split("/")
  return Number((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`))
}

/** Things to stop at the end, whatever happens, newest first. */
const cleanups: Array<() => Promise<unknown>> = []
export const cleanUp = async (): Promise<void> => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined)
}
const onCleanUp = (stop: () => Promise<unknown>): void => {
  cleanups.push(stop)
}

export const machine = async (pg: PgCluster, loadAverageAtStart: number): Promise<Machine> => ({
  cores: Os.cpus().length,
  cpuModel: Os.cpus()[0]?.model.trim() ?? "unknown",
  memoryGiB: Os.totalmem() / 1024 ** 3,
  node: process.versions.node,
  postgres: (await pg.psql("SELECT version()")).split(" on ")[0] ?? "PostgreSQL",
  loadAverageAtStart
})

const publication = "bench_publication"
const ceilingSlot = (plugin: Plugin): string => `bench_ceiling_${plugin}`

/**
 * Starts PostgreSQL, creates the publication and every slot (the scenarios' and one ceiling slot
 * per plugin), writes the backlog, and measures both ceilings.
 */
export const setUp = async (settings: Settings, scenarios: ReadonlyArray<Scenario>): Promise<Bench> => {
  const baseline = settings.baselineCheckout === undefined ? undefined : await checkoutAt(settings.baselineCheckout)
  // as the container image is built: no measured start pays for stripping and compiling the sources
  for (const checkout of baseline === undefined ? [thisCheckout] : [thisCheckout, baseline]) warmCompileCache(checkout)
  const workDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-bench-"))
  onCleanUp(async () => Fs.rmSync(workDir, { recursive: true, force: true }))
  log(`PostgreSQL with wal2json (work dir ${workDir})`)
  const pg = await startPostgres({
    conf: { synchronous_commit: "on", max_wal_size: "'8GB'", checkpoint_timeout: "'30min'", max_replication_slots: 40, max_wal_senders: 40 }
  })
  onCleanUp(() => pg.stop())
  await Backlog.createSchema(pg)
  await pg.psql(`CREATE PUBLICATION ${publication} FOR ALL TABLES`)
  const slots: Array<SlotSpec> = [
    { slot: ceilingSlot("wal2json"), plugin: "wal2json" },
    { slot: ceilingSlot("pgoutput"), plugin: "pgoutput" },
    ...scenarios.flatMap((s) => s.backlogSlots(settings))
  ]
  const names = slots.map((s) => s.slot)
  if (new Set(names).size !== names.length) throw new Error(`two scenarios ask for the same slot: ${names.join(", ")}`)
  for (const { slot, plugin } of slots) await Backlog.createSlot(pg, slot, plugin)

  log(`backlog: writing ${settings.changes} changes into ${slots.length} slots`)
  const written = await Backlog.writeBacklog(pg, Backlog.planBacklog(settings.changes))
  const endpos = await Backlog.currentLsn(pg)
  // WAL after the backlog's end, so pg_recvlogical --endpos has a record to stop at
  await pg.psql("SELECT pg_logical_emit_message(false, 'bench', 'end of backlog')")

  log("ceiling: pg_recvlogical, wal2json")
  const wal2json = await recvlogical(pg, { slot: ceilingSlot("wal2json"), plugin: "wal2json", publication, endLsn: endpos, workDir })
  const output = await readSlotOutput(wal2json.file)
  Fs.rmSync(wal2json.file, { force: true })
  if (output.changes !== written || output.lastCommitEndLsn === undefined) {
    throw new Error(`pg_recvlogical read ${output.changes} changes, the backlog has ${written}`)
  }
  const backlog: BacklogRun = {
    changes: output.changes, transactions: output.transactions, byAction: output.byAction,
    bodyBytes: output.bodyBytes, endLsn: output.lastCommitEndLsn
  }
  log("ceiling: pg_recvlogical, pgoutput")
  const pgoutput = await recvlogical(pg, { slot: ceilingSlot("pgoutput"), plugin: "pgoutput", publication, endLsn: endpos, workDir })
  const pgoutputBytes = Fs.statSync(pgoutput.file).size
  Fs.rmSync(pgoutput.file, { force: true })
  if (pgoutputBytes === 0) throw new Error("pg_recvlogical read nothing from the pgoutput slot")
  const ceilings = new Map<Plugin, CeilingFigures>()
  for (const [plugin, run] of [["wal2json", wal2json], ["pgoutput", pgoutput]] as const) {
    const figures: CeilingFigures = {
      plugin,
      ...throughput(backlog.changes, backlog.bodyBytes, run.seconds),
      cpuSeconds: run.cpuSeconds,
      cpuMicrosPerChange: (run.cpuSeconds / backlog.changes) * 1e6
    }
    ceilings.set(plugin, figures)
    log(`  ${plugin}: ${Math.round(figures.changesPerSecond)} changes/s, ${figures.cpuMicrosPerChange.toFixed(1)} µs CPU per change`)
  }

  const startServiceOn: Bench["startService"] = (options) => {
    const service = startService({
      ...pg.env,
      REPLICATION_SLOT: options.slot,
      REPLICATION_PLUGIN: options.plugin,
      PUBLICATION_NAME: publication,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "bench",
      AWS_SECRET_ACCESS_KEY: "bench",
      KINESIS_STREAM: "bench",
      AWS_ENDPOINT_URL_KINESIS: options.endpointUrl,
      ...options.env
    }, options.checkout ?? thisCheckout)
    onCleanUp(() => service.stop())
    return service
  }

  const measureService: Bench["measureService"] = async (options) => {
    const endLsn = options.endLsn ?? backlog.endLsn
    const target = lsnToNumber(endLsn)
    const startedAt = performance.now()
    const startedAtEpochMs = Date.now()
    const service = startServiceOn(options)
    let peak = 0
    const sample = (): void => {
      const memory = service.memory()
      if (memory !== undefined) peak = Math.max(peak, memory.peakRssBytes, memory.rssBytes)
    }
    /** The last poll that saw the frontier short of the end, and the one before it that saw it move. */
    let lastShortAt = startedAt
    let moving: { readonly at: number; readonly frontier: number } | undefined
    let polls = 0
    let waitMs = POLL_START_MS
    await service.waitUntil(`the service's frontier (cdc_frontier_lsn) to reach ${endLsn}`, async () => {
      sample()
      polls++
      const samples = await service.metricsNow()
      const frontier = samples === undefined ? undefined : valueOf(samples, "cdc_frontier_lsn")
      if (frontier !== undefined && frontier >= target) return true
      const now = performance.now()
      lastShortAt = now
      // every poll costs the service a /metrics answer: poll rarely while the end is far, often near it
      if (frontier !== undefined && frontier > 0) {
        if (moving !== undefined && frontier > moving.frontier) {
          const remainingMs = ((target - frontier) / (frontier - moving.frontier)) * (now - moving.at)
          waitMs = Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, remainingMs / 8))
        } else if (moving !== undefined) {
          // it stands still (the last requests in flight?): the end may come with any answer
          waitMs = Math.max(POLL_MIN_MS, waitMs / 2)
        }
        if (moving === undefined || frontier > moving.frontier) moving = { at: now, frontier }
      }
      await new Promise((resolve) => setTimeout(resolve, waitMs - POLL_MIN_MS))
      return false
    }, { timeoutMs: options.timeoutMs ?? 600_000, intervalMs: POLL_MIN_MS })
    const cpuSeconds = service.cpuSeconds()
    const endedAt = performance.now()
    const seconds = (endedAt - startedAt) / 1000
    sample()
    await service.stop()
    if (cpuSeconds === undefined) throw new Error("could not read the service's CPU time from /proc")
    return {
      service, seconds, endWithinSeconds: (endedAt - lastShortAt) / 1000, polls, startedAtEpochMs,
      peakRssBytes: peak === 0 ? undefined : peak, cpuSeconds
    }
  }

  return {
    settings, pg, workDir, publication, backlog, log, onCleanUp,
    ceiling: (plugin) => ceilings.get(plugin)!,
    baseline,
    startEndpoint: async (options) => {
      const endpoint = await startEndpointProcess(options)
      onCleanUp(() => endpoint.stop())
      return endpoint
    },
    startKinesalite: async (options) => {
      const kinesalite = await startKinesaliteProcess(options)
      onCleanUp(() => kinesalite.stop())
      return kinesalite
    },
    startService: startServiceOn,
    measureService
  }
}

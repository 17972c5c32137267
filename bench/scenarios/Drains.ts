/**
 * Drains: the service (default settings) draining the backlog from its own slot, from spawn until its
 * frontier passes the backlog's end, into the bench endpoint at 0 and 20 ms per request (wal2json)
 * and at 20 ms (pgoutput), into kinesalite (wal2json), and at 20 ms again for each plugin with
 * RECORD_FORMAT=debezium (the cost of rendering Debezium's envelope, in CPU per change). Each is compared with its plugin's
 * ceiling; CPU per change and peak RSS come with it. Given a baseline checkout (`--baseline`), each
 * 20 ms drain is followed by the same drain run by the baseline's code, so CPU per change can be
 * compared within one run. With a backlog of at least 4× the default queue, this checkout's
 * bench-endpoint drains are memory runs of the default queue too.
 */
import { DEFAULT_QUEUE_MAX_BYTES } from "../../src/config/ServiceConfig.ts"
import type { Bench, Scenario, Settings } from "../Bench.ts"
import type { Plugin } from "../Ceiling.ts"
import type { DrainFigures, MemoryFigures } from "../Report.ts"
import { throughput } from "../Report.ts"

interface Drain {
  readonly slot: string
  readonly plugin: Plugin
  readonly endpoint: "bench endpoint" | "kinesalite"
  readonly latencyMs: number
  readonly checkout: "this" | "baseline"
  /** RECORD_FORMAT; wal2json when absent. */
  readonly format?: "debezium"
}

const drainsOf = (settings: Settings): ReadonlyArray<Drain> => {
  const drain = (plugin: Plugin, endpoint: Drain["endpoint"], latencyMs: number, checkout: Drain["checkout"] = "this"): Drain => ({
    slot: `bench_drain_${plugin}_${endpoint === "kinesalite" ? "kinesalite" : `${latencyMs}ms`}${checkout === "baseline" ? "_baseline" : ""}`,
    plugin, endpoint, latencyMs, checkout
  })
  const withBaseline = (d: Drain): ReadonlyArray<Drain> =>
    settings.baselineCheckout === undefined ? [d] : [d, drain(d.plugin, d.endpoint, d.latencyMs, "baseline")]
  const debezium = (plugin: Plugin): Drain => ({ ...drain(plugin, "bench endpoint", 20), slot: `bench_drain_${plugin}_20ms_debezium`, format: "debezium" })
  return [
    drain("wal2json", "bench endpoint", 0),
    ...withBaseline(drain("wal2json", "bench endpoint", 20)),
    ...withBaseline(drain("pgoutput", "bench endpoint", 20)),
    drain("wal2json", "kinesalite", 0),
    debezium("wal2json"),
    debezium("pgoutput")
  ]
}

const nameOf = (d: Drain): string =>
  (d.endpoint === "kinesalite" ? "kinesalite" : `bench endpoint, ${d.latencyMs} ms`) +
  (d.format === undefined ? "" : `, RECORD_FORMAT=${d.format}`)

const runDrain = async (bench: Bench, d: Drain): Promise<DrainFigures> => {
  const { backlog } = bench
  const checkout = d.checkout === "baseline" ? bench.baseline : undefined
  bench.log(`drain: service${checkout ? ` (baseline ${checkout.root})` : ""}, ${d.plugin} → ${nameOf(d)} (slot ${d.slot})`)
  const endpoint = d.endpoint === "bench endpoint" ? await bench.startEndpoint({ latencyMs: d.latencyMs }) : undefined
  const server = endpoint ?? await bench.startKinesalite({ streamName: "bench", shards: 4 })
  const run = await bench.measureService({
    slot: d.slot, plugin: d.plugin, endpointUrl: server.url, ...(checkout ? { checkout } : {}),
    ...(d.format === undefined ? {} : { env: { RECORD_FORMAT: d.format } })
  })
  const stats = endpoint === undefined ? undefined : await endpoint.stats()
  await server.stop()
  if (stats !== undefined && stats.records < backlog.changes) {
    throw new Error(`the service's frontier passed the backlog's end but the endpoint acknowledged only ${stats.records} of ${backlog.changes} changes`)
  }
  const t = throughput(backlog.changes, backlog.bodyBytes, run.seconds)
  const cpuMicros = (run.cpuSeconds / backlog.changes) * 1e6
  bench.log(`  ${Math.round(t.changesPerSecond)} changes/s in ${run.seconds.toFixed(2)} s (at most ${Math.round(run.endWithinSeconds * 1000)} ms late, ` +
    `${run.polls} polls), ${cpuMicros.toFixed(1)} µs CPU per change`)
  return {
    name: nameOf(d),
    plugin: d.plugin,
    checkout: d.checkout === "baseline" ? `baseline ${checkout?.root}` : "this",
    endpoint: d.endpoint,
    endpointLatencyMs: d.latencyMs,
    changes: backlog.changes,
    recordsAcknowledged: stats?.records,
    secondsToFirstAck: stats?.firstAckMs === undefined ? undefined : (stats.firstAckMs - run.startedAtEpochMs) / 1000,
    ...t,
    ratioToCeiling: t.changesPerSecond / bench.ceiling(d.plugin).changesPerSecond,
    peakRssBytes: run.peakRssBytes,
    endWithinSeconds: run.endWithinSeconds,
    serviceCpuSeconds: run.cpuSeconds,
    serviceCpuMicrosPerChange: cpuMicros
  }
}

export const scenario: Scenario = {
  name: "drains",
  backlogSlots: (settings) => drainsOf(settings).map(({ slot, plugin }) => ({ slot, plugin })),
  run: async (bench) => {
    const figures: Array<DrainFigures> = []
    for (const d of drainsOf(bench.settings)) figures.push(await runDrain(bench, d))
    const memory: Array<MemoryFigures> = []
    if (bench.backlog.bodyBytes >= 4 * DEFAULT_QUEUE_MAX_BYTES) {
      for (const d of figures) {
        if (d.checkout !== "this" || d.endpoint !== "bench endpoint" || d.peakRssBytes === undefined) continue
        memory.push({
          run: `default queue, ${d.plugin} drain → ${d.name}`, queueMaxBytes: DEFAULT_QUEUE_MAX_BYTES,
          streamedBytes: bench.backlog.bodyBytes, seconds: d.seconds, peakRssBytes: d.peakRssBytes
        })
      }
    }
    return { drains: figures, memory }
  }
}

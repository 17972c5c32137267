/**
 * Scaling (`--scaling`, not in the default run): the wal2json drain rate against
 * KINESIS_MAX_INFLIGHT and the endpoint's latency per request (0, 20, 100 ms: same region,
 * cross-region), on the shared backlog; and against the row size, on backlogs of small and large
 * rows written after it (each with its own pg_recvlogical ceiling on a twin slot), so an operator can
 * size a deployment. Beside each rate: the service's CPU utilization (CPU seconds ÷ seconds: near 1
 * means the service's one thread is the limit) and the request bound (in-flight requests × full
 * batches ÷ latency: the most the endpoint's latency lets through).
 */
import * as Fs from "node:fs"
import type { Bench, Scenario } from "../Bench.ts"
import * as Backlog from "../Backlog.ts"
import { readSlotOutput, recvlogical } from "../Ceiling.ts"
import type { ScalingFigures } from "../Report.ts"
import { throughput } from "../Report.ts"

const inflights = [2, 8, 32] as const
const latencies = [0, 20, 100] as const
/** The service's BATCH_MAX_RECORDS default: records per PutRecords when batches are full. */
const batchMaxRecords = 500
/** Row sizes beside the shared backlog's: payload characters, and how much WAL to allow each. */
const rowSizes = [
  { name: "rows with a 16-character payload", payloadChars: 16, maxBytes: Number.POSITIVE_INFINITY },
  { name: "rows with an 8,000-character payload", payloadChars: 8_000, maxBytes: 1_000_000_000 }
] as const

const gridSlot = (inflight: number, latencyMs: number): string => `bench_scaling_${inflight}_${latencyMs}ms`

interface Drained {
  readonly changes: number
  readonly bodyBytes: number
  readonly ceilingChangesPerSecond: number
  readonly endLsn: string
}

const measure = async (
  bench: Bench,
  drained: Drained,
  options: { readonly rows: string; readonly slot: string; readonly inflight: number; readonly latencyMs: number }
): Promise<ScalingFigures> => {
  bench.log(`scaling: ${options.rows}, KINESIS_MAX_INFLIGHT=${options.inflight}, endpoint ${options.latencyMs} ms`)
  const endpoint = await bench.startEndpoint({ latencyMs: options.latencyMs })
  const run = await bench.measureService({
    slot: options.slot, plugin: "wal2json", endpointUrl: endpoint.url, endLsn: drained.endLsn,
    env: { KINESIS_MAX_INFLIGHT: String(options.inflight) }
  })
  const stats = await endpoint.stats()
  await endpoint.stop()
  await Backlog.dropSlot(bench.pg, options.slot)
  if (stats.records < drained.changes) {
    throw new Error(`the frontier passed the end but the endpoint acknowledged only ${stats.records} of ${drained.changes} changes`)
  }
  const t = throughput(drained.changes, drained.bodyBytes, run.seconds)
  bench.log(`  ${Math.round(t.changesPerSecond)} changes/s`)
  return {
    rows: options.rows,
    averageBodyBytes: drained.bodyBytes / drained.changes,
    kinesisMaxInflight: options.inflight,
    endpointLatencyMs: options.latencyMs,
    changes: drained.changes,
    ...t,
    ratioToCeiling: t.changesPerSecond / drained.ceilingChangesPerSecond,
    serviceCpuMicrosPerChange: (run.cpuSeconds / drained.changes) * 1e6,
    serviceCpuUtilization: run.cpuSeconds / run.seconds,
    requestBoundChangesPerSecond: options.latencyMs === 0 ? undefined : (options.inflight * batchMaxRecords) / (options.latencyMs / 1000)
  }
}

/** A backlog of other rows in its own table, written now (after the shared one), with its ceiling. */
const otherRows = async (bench: Bench, size: (typeof rowSizes)[number], index: number): Promise<Drained & { readonly slot: string }> => {
  const { pg } = bench
  const table = `public.bench_scaling_rows_${index}`
  const slot = `bench_scaling_rows_${index}`
  const ceilingSlot = `${slot}_ceiling`
  await Backlog.createSchema(pg, table)
  await Backlog.createSlot(pg, slot)
  await Backlog.createSlot(pg, ceilingSlot)
  const changes = Math.max(1_000, Math.min(bench.settings.changes, Math.floor(size.maxBytes / size.payloadChars)))
  bench.log(`scaling: writing ${changes} changes of ${size.name}`)
  const written = await Backlog.writeBacklog(pg, Backlog.planBacklog(changes), { table, payloadChars: size.payloadChars })
  const endpos = await Backlog.currentLsn(pg)
  await pg.psql("SELECT pg_logical_emit_message(false, 'bench', 'end of backlog')")
  const ceiling = await recvlogical(pg, { slot: ceilingSlot, plugin: "wal2json", publication: bench.publication, endLsn: endpos, workDir: bench.workDir })
  const output = await readSlotOutput(ceiling.file)
  Fs.rmSync(ceiling.file, { force: true })
  await Backlog.dropSlot(pg, ceilingSlot)
  if (output.changes !== written || output.lastCommitEndLsn === undefined) {
    throw new Error(`pg_recvlogical read ${output.changes} changes of ${size.name}, the backlog has ${written}`)
  }
  return {
    slot, changes: written, bodyBytes: output.bodyBytes, endLsn: output.lastCommitEndLsn,
    ceilingChangesPerSecond: written / ceiling.seconds
  }
}

export const scenario: Scenario = {
  name: "scaling",
  backlogSlots: () => inflights.flatMap((inflight) => latencies.map((latencyMs) => ({ slot: gridSlot(inflight, latencyMs), plugin: "wal2json" as const }))),
  run: async (bench) => {
    const scaling: Array<ScalingFigures> = []
    const shared: Drained = {
      changes: bench.backlog.changes, bodyBytes: bench.backlog.bodyBytes, endLsn: bench.backlog.endLsn,
      ceilingChangesPerSecond: bench.ceiling("wal2json").changesPerSecond
    }
    for (const inflight of inflights) {
      for (const latencyMs of latencies) {
        scaling.push(await measure(bench, shared, { rows: "the backlog's rows (10-209-character payloads)", slot: gridSlot(inflight, latencyMs), inflight, latencyMs }))
      }
    }
    for (const [index, size] of rowSizes.entries()) {
      const drained = await otherRows(bench, size, index)
      scaling.push(await measure(bench, drained, { rows: size.name, slot: drained.slot, inflight: 8, latencyMs: 20 }))
    }
    return { scaling }
  }
}

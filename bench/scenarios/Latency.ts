/**
 * Latency: a steady load of single-row transactions (pgbench) while the service (wal2json, default
 * settings) streams into the bench endpoint at 0 ms; commit time to the endpoint's acknowledgement
 * of each change. Then the floor: the same load again while pg_recvlogical streams it (no service),
 * commit time to the arrival of each change in the bench's pipe from pg_recvlogical: what
 * PostgreSQL and this machine take before any client could publish a change.
 */
import type { Scenario } from "../Bench.ts"
import { createLoadSchema, type LoadResult, runLoad } from "../LatencyLoad.ts"
import * as Backlog from "../Backlog.ts"
import { recvlogicalStream } from "../Ceiling.ts"
import { type Distribution, distribution } from "../../support/Distribution.ts"

export const scenario: Scenario = {
  name: "latency",
  backlogSlots: () => [],
  run: async (bench) => {
    const { pg, settings } = bench
    bench.log(`latency: ${settings.latencyRate} single-row transactions/s for ${settings.latencySeconds} s`)
    await createLoadSchema(pg)
    // created after the backlog: it streams only the load
    await Backlog.createSlot(pg, "bench_latency")
    const endpoint = await bench.startEndpoint({ latencyMs: 0 })
    const service = bench.startService({ slot: "bench_latency", plugin: "wal2json", endpointUrl: endpoint.url })
    // streaming: a first change arrives
    await pg.psql("INSERT INTO public.bench_events (account, status, payload) VALUES (0, 'warm-up', 'x')")
    await service.waitUntil("the service to publish a first change", async () => (await endpoint.stats()).records > 0,
      { timeoutMs: 60_000 })
    await endpoint.reset()
    const load = await runLoad(pg, { rate: settings.latencyRate, seconds: settings.latencySeconds, clients: 8, workDir: bench.workDir })
    await service.waitUntil(`all ${load.transactions} changes of the load to be acknowledged`,
      async () => (await endpoint.stats()).records >= load.transactions, { timeoutMs: 120_000 })
    const stats = await endpoint.stats()
    await service.stop()
    await endpoint.stop()
    if (stats.latencyMs === undefined) throw new Error("the endpoint found no commit timestamp in the records")

    // the floor: the same load streamed by pg_recvlogical alone, on a slot that sees only this load
    bench.log(`latency floor: pg_recvlogical, the same load`)
    await Backlog.createSlot(pg, "bench_latency_floor")
    const recv = recvlogicalStream(pg, { slot: "bench_latency_floor" })
    let floorLoad: LoadResult
    let floorMs: Distribution | undefined
    try {
      await pg.psql("INSERT INTO public.bench_events (account, status, payload) VALUES (0, 'warm-up', 'x')")
      await waitFor("pg_recvlogical to receive a first change", () => recv.samples().length > 0, 60_000)
      const warmUp = recv.samples().length
      floorLoad = await runLoad(pg, { rate: settings.latencyRate, seconds: settings.latencySeconds, clients: 8, workDir: bench.workDir })
      await waitFor(`pg_recvlogical to receive all ${floorLoad.transactions} changes of the load`,
        () => recv.samples().length - warmUp >= floorLoad.transactions, 120_000)
      floorMs = distribution(Float64Array.from(recv.samples().slice(warmUp)))
    } finally {
      await recv.stop()
    }
    if (floorMs === undefined) throw new Error("pg_recvlogical received no change with a commit timestamp")
    return {
      latency: [{
        name: "wal2json → bench endpoint, 0 ms",
        offeredRate: settings.latencyRate,
        seconds: settings.latencySeconds,
        transactions: load.transactions,
        achievedTps: load.achievedTps,
        latencyMs: stats.latencyMs
      }, {
        name: "floor: pg_recvlogical, commit → received (no service)",
        floor: true,
        offeredRate: settings.latencyRate,
        seconds: settings.latencySeconds,
        transactions: floorLoad.transactions,
        achievedTps: floorLoad.achievedTps,
        latencyMs: floorMs
      }]
    }
  }
}

const waitFor = async (what: string, condition: () => boolean, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * Latency: a steady load of single-row transactions (pgbench) while the service (wal2json, default
 * settings) streams into the bench endpoint at 0 ms; commit time to the endpoint's acknowledgement
 * of each change.
 */
import type { Scenario } from "../Bench.ts"
import { createLoadSchema, runLoad } from "../LatencyLoad.ts"
import * as Backlog from "../Backlog.ts"

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
    return {
      latency: [{
        name: "wal2json → bench endpoint, 0 ms",
        offeredRate: settings.latencyRate,
        seconds: settings.latencySeconds,
        transactions: load.transactions,
        achievedTps: load.achievedTps,
        latencyMs: stats.latencyMs
      }]
    }
  }
}

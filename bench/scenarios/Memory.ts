/**
 * Memory with a small queue: peak RSS of the service (wal2json, QUEUE_MAX_BYTES small) draining a
 * backlog of at least 4× the queue into the bench endpoint at 0 ms.
 */
import type { Scenario } from "../Bench.ts"

const slot = "bench_memory_small_queue"
const MiB = 1024 * 1024

export const scenario: Scenario = {
  name: "memory, small queue",
  backlogSlots: () => [{ slot, plugin: "wal2json" }],
  run: async (bench) => {
    const queueMaxBytes = bench.settings.memoryQueueBytes
    const { backlog } = bench
    bench.log(`memory: QUEUE_MAX_BYTES=${queueMaxBytes}, backlog bodies ${backlog.bodyBytes} bytes`)
    if (backlog.bodyBytes < 4 * queueMaxBytes) {
      throw new Error(`the backlog (${backlog.bodyBytes} bytes) is smaller than 4x QUEUE_MAX_BYTES (${queueMaxBytes}); use more --changes`)
    }
    const endpoint = await bench.startEndpoint({ latencyMs: 0 })
    const run = await bench.measureService({ slot, plugin: "wal2json", endpointUrl: endpoint.url, env: { QUEUE_MAX_BYTES: String(queueMaxBytes) } })
    await endpoint.stop()
    if (run.peakRssBytes === undefined) throw new Error("could not read the service's peak RSS from /proc")
    return {
      memory: [{
        run: `${queueMaxBytes / MiB} MiB queue, wal2json drain → bench endpoint, 0 ms (backlog ${(backlog.bodyBytes / queueMaxBytes).toFixed(1)}× the queue)`,
        queueMaxBytes, streamedBytes: backlog.bodyBytes, seconds: run.seconds, peakRssBytes: run.peakRssBytes
      }]
    }
  }
}

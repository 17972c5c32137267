/**
 * Memory while one key is stuck: the service (wal2json, default settings) streams a steady load of
 * single-row transactions (pgbench: 99 % inserts of new rows, 1 % updates of one row) into the bench
 * endpoint, which fails every record of that one row's partition key with
 * ProvisionedThroughputExceededException for the whole load (`--stuck-seconds`: five minutes by
 * default; a quick run: 10 s with the small queue), then accepts it again. The stuck row's changes
 * keep their read buffers alive (counted in the queue's bytes) until the key recovers. Peak RSS covers
 * the load and the recovery; the row also names the highest frontier bookkeeping (cdc_frontier_pending)
 * and queue bytes seen, RSS before the key failed, and RSS 10, 30 and 60 s (quick: 2 and 5 s) after
 * every change was acknowledged, the load over and the service idle: the target "RSS returns" compares
 * the last with RSS before (the service's idle memory release runs after 30 s idle; a quick run ends
 * before it). The log adds V8's heap in use and external memory (the service's cdc_memory_bytes) at
 * each point, when the release ran (`memory_released`, logged at debug) and what its C heap trim returned
 * (`heap_trimmed`). The run fails unless every change arrives.
 */
import { execFile as execFileCb } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { promisify } from "node:util"
import { type Sample, valueOf } from "../../support/Metrics.ts"
import type { Memory } from "../../support/ProcessStats.ts"
import * as Backlog from "../Backlog.ts"
import type { Scenario } from "../Bench.ts"
import { createLoadSchema, table } from "../LatencyLoad.ts"

const execFile = promisify(execFileCb)

const slot = "bench_stuck_key"
const stuckTable = "public.bench_stuck"
/** The partition key of the stuck row (PARTITION_KEY_MODE=primary_key). */
const stuckKey = `${stuckTable}:[0]`
const MiB = 1024 * 1024
/** QUEUE_MAX_BYTES's default. */
const defaultQueueBytes = 64 * MiB

/** How this scenario's memory row starts (its streamed bytes are a load's, not 4× the queue). */
export const stuckRunPrefix = "one key failing"

const inMiB = (bytes: number | undefined) => bytes === undefined ? "n/a" : (bytes / MiB).toFixed(1)

/** RSS, its anonymous part, and V8's heap in use and external memory (the service's cdc_memory_bytes). */
const describe = (memory: Memory | undefined, samples: ReadonlyArray<Sample> | undefined) =>
  memory === undefined ? "n/a" : `${inMiB(memory.rssBytes)} MiB (anonymous ${inMiB(memory.rssAnonBytes)}, ` +
    `heap used ${inMiB(valueOf(samples ?? [], "cdc_memory_bytes", { kind: "heap_used" }))}, ` +
    `external ${inMiB(valueOf(samples ?? [], "cdc_memory_bytes", { kind: "external" }))})`

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const scenario: Scenario = {
  name: "memory, one key stuck",
  backlogSlots: () => [],
  run: async (bench) => {
    const { pg, workDir } = bench
    const { quick } = bench.settings
    const seconds = bench.settings.stuckSeconds
    const rate = quick ? 300 : 1_000
    const queueMaxBytes = quick ? bench.settings.memoryQueueBytes : defaultQueueBytes
    await createLoadSchema(pg)
    await pg.psql(`CREATE TABLE ${stuckTable} (id integer PRIMARY KEY, v bigint NOT NULL); INSERT INTO ${stuckTable} VALUES (0, 0)`)
    // created after the backlog: it streams only the load
    await Backlog.createSlot(pg, slot)
    const endpoint = await bench.startEndpoint({ latencyMs: 0 })
    const service = bench.startService({
      slot, plugin: "wal2json", endpointUrl: endpoint.url, env: { QUEUE_MAX_BYTES: String(queueMaxBytes), LOG_LEVEL: "DEBUG" }
    })
    await pg.psql(`INSERT INTO ${table} (account, status, payload) VALUES (0, 'warm-up', 'x')`)
    await service.waitUntil("the service to publish a first change", async () => (await endpoint.stats()).records > 0,
      { timeoutMs: 60_000 })
    await endpoint.reset()
    const before = service.memory()
    const beforeText = describe(before, await service.metricsNow())

    bench.log(`one key stuck: ${rate} transactions/s for ${seconds} s, 1 % of them on the key the endpoint fails`)
    await endpoint.failKey(stuckKey)
    const startedAt = performance.now()
    let peakRss = 0
    let maxPending = 0
    let maxQueueBytes = 0
    let maxHeapUsed = 0
    let maxExternal = 0
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const memory = service.memory()
        if (memory !== undefined) peakRss = Math.max(peakRss, memory.peakRssBytes, memory.rssBytes)
        const samples = await service.metricsNow()
        if (samples !== undefined) {
          maxPending = Math.max(maxPending, valueOf(samples, "cdc_frontier_pending") ?? 0)
          maxQueueBytes = Math.max(maxQueueBytes, valueOf(samples, "cdc_queue_bytes") ?? 0)
          maxHeapUsed = Math.max(maxHeapUsed, valueOf(samples, "cdc_memory_bytes", { kind: "heap_used" }) ?? 0)
          maxExternal = Math.max(maxExternal, valueOf(samples, "cdc_memory_bytes", { kind: "external" }) ?? 0)
        }
        await sleep(250)
      }
    })()
    const others = Path.join(workDir, "stuck-others.sql")
    const stuck = Path.join(workDir, "stuck-key.sql")
    Fs.writeFileSync(others, `\\set n random(1, 1000000000)
INSERT INTO ${table} (account, status, payload) VALUES (:n % 1000, 'new', rpad(md5(:n::text), 10 + :n % 200, md5((:n + 1)::text)));
`)
    Fs.writeFileSync(stuck, `UPDATE ${stuckTable} SET v = v + 1 WHERE id = 0;\n`)
    const { stdout } = await execFile(Path.join(pg.binDir, "pgbench"), [
      "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-n", "-f", `${others}@99`, "-f", `${stuck}@1`,
      "-R", String(rate), "-T", String(seconds), "-c", "4", "-j", "2", pg.database
    ], { env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" }, timeout: (seconds + 120) * 1000 })
    const transactions = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1])
    if (!Number.isFinite(transactions)) throw new Error(`could not read pgbench's output:\n${stdout}`)

    await endpoint.failKey("")
    await service.waitUntil(`all ${transactions} changes acknowledged after the key recovered`, async () =>
      (await endpoint.stats()).records >= transactions &&
      valueOf((await service.metricsNow()) ?? [], "cdc_frontier_pending") === 0, { timeoutMs: 600_000, intervalMs: 100 })
    const totalSeconds = (performance.now() - startedAt) / 1000
    sampling = false
    await sampler
    const atRecovery = service.memory()
    const atRecoveryText = describe(atRecovery, await service.metricsNow())
    // the load stopped with the recovery: RSS while the service idles (V8's memory reducer runs then)
    const settleSeconds = quick ? [2, 5] : [10, 30, 60]
    const settled: Array<{ readonly seconds: number; readonly memory: Memory | undefined; readonly text: string }> = []
    const settleStart = performance.now()
    const acknowledgedAt = Date.now()
    for (const s of settleSeconds) {
      await sleep(Math.max(0, s * 1000 - (performance.now() - settleStart)))
      const memory = service.memory()
      settled.push({ seconds: s, memory, text: describe(memory, await service.metricsNow()) })
    }
    const after = settled[settled.length - 1]?.memory
    const pendingAfter = valueOf((await service.metricsNow()) ?? [], "cdc_frontier_pending")
    const stats = await endpoint.stats()
    if (after !== undefined) peakRss = Math.max(peakRss, after.peakRssBytes)
    await service.stop()
    await endpoint.stop()
    if (peakRss === 0 || before === undefined || atRecovery === undefined || after === undefined) {
      throw new Error("could not read the service's RSS from /proc")
    }
    const afterRecovery = settled.map(({ seconds: s, text }) => `${s} s ${text}`).join("; ")
    const releases = service.logs().filter((l) => l.message === "memory_released").map((l) =>
      ` ${((Date.parse(l.timestamp) - acknowledgedAt) / 1000).toFixed(0)} s after all was acknowledged, ` +
      `RSS ${inMiB(Number(l.rssBeforeBytes))} → ${inMiB(Number(l.rssAfterBytes))} MiB`
    )
    const trims = service.logs().filter((l) => l.message === "heap_trimmed" || l.message === "heap_trim_unavailable").map((l) =>
      l.message === "heap_trimmed"
        ? ` C heap trimmed in ${String(l.durationMs)} ms, RSS ${inMiB(Number(l.rssBeforeBytes))} → ${inMiB(Number(l.rssAfterBytes))} MiB`
        : ` C heap trim unavailable (${String(l.reason)})`
    )
    bench.log(`  RSS before ${beforeText}; peak ${inMiB(peakRss)} MiB (max heap used ${inMiB(maxHeapUsed)}, ` +
      `max external ${inMiB(maxExternal)}); when all was acknowledged ` +
      `${atRecoveryText}; idle after recovery: ${afterRecovery}; max cdc_frontier_pending ${maxPending}, ` +
      `${stats.failedRecords} records failed; ` +
      (releases.length === 0 ? "no idle memory release" : `idle memory release:${releases.join(";")}`) +
      (trims.length === 0 ? "" : `;${trims.join(";")}`))
    return {
      memory: [{
        run: `${stuckRunPrefix} ${seconds} s under ${rate} tx/s on other keys, ${queueMaxBytes / MiB} MiB queue ` +
          `(max frontier pending ${maxPending}, queue ${(maxQueueBytes / MiB).toFixed(1)} MiB; ` +
          `RSS before ${(before.rssBytes / MiB).toFixed(1)} MiB; idle after recovery: ` +
          `${settled.map(({ memory, seconds: s }) => `${s} s ${memory === undefined ? "n/a" : (memory.rssBytes / MiB).toFixed(1)}`).join(", ")} MiB, ` +
          `pending ${pendingAfter ?? "n/a"})`,
        queueMaxBytes,
        streamedBytes: stats.dataBytes,
        seconds: totalSeconds,
        peakRssBytes: peakRss,
        returned: { rssBeforeBytes: before.rssBytes, idleSeconds: settleSeconds[settleSeconds.length - 1]!, rssAfterBytes: after.rssBytes }
      }]
    }
  }
}

/**
 * Memory while one huge row passes: peak RSS of the service (wal2json, default QUEUE_MAX_BYTES;
 * a quick run: a 20 MB row and the small queue) while a single row with a 300 MB bytea (600 MB of
 * hex in wal2json's output, one CopyData message) streams through and is dropped as it arrives
 * (OVERSIZED_RECORD_POLICY=drop), then a small row after it. The run checks that the row was
 * dropped, once, and that the frontier passed the small one.
 */
import type { Scenario } from "../Bench.ts"

const slot = "bench_huge_row"
const table = "public.bench_huge"
const MiB = 1024 * 1024
const MB = 1_000_000
/** QUEUE_MAX_BYTES's default. */
const defaultQueueBytes = 64 * MiB

export const scenario: Scenario = {
  name: "memory, one huge row",
  backlogSlots: () => [],
  run: async (bench) => {
    const { pg } = bench
    const rowBytes = bench.settings.quick ? 20 * MB : 300 * MB
    const queueMaxBytes = bench.settings.quick ? bench.settings.memoryQueueBytes : defaultQueueBytes
    await pg.psql(`CREATE TABLE ${table} (id int PRIMARY KEY, data bytea)`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('${slot}', 'wal2json')`)
    bench.log(`huge row: one ${rowBytes / MB} MB bytea row (${(2 * rowBytes) / MB} MB of hex), then a small row`)
    await pg.psql(`INSERT INTO ${table} VALUES (1, decode(repeat('ab', ${rowBytes}), 'hex'))`)
    // a position inside the small row's transaction: the frontier passes it once that commit is published
    const endLsn = (await pg.psql(`BEGIN; INSERT INTO ${table} VALUES (2, '\\x00'); SELECT pg_current_wal_insert_lsn(); COMMIT`)).trim()

    const endpoint = await bench.startEndpoint({ latencyMs: 0 })
    const run = await bench.measureService({
      slot, plugin: "wal2json", endpointUrl: endpoint.url, endLsn, timeoutMs: 900_000,
      env: { QUEUE_MAX_BYTES: String(queueMaxBytes) }
    })
    await endpoint.stop()
    const dropped = run.service.logs().filter((l) => l.message === "change_dropped")
    if (dropped.length !== 1 || dropped[0]!.table !== "bench_huge" || Number(dropped[0]!.bytes) < 2 * rowBytes) {
      throw new Error(`expected the huge row dropped once, logged: ${JSON.stringify(dropped)}`)
    }
    if (run.peakRssBytes === undefined) throw new Error("could not read the service's peak RSS from /proc")
    return {
      memory: [{
        run: `one ${rowBytes / MB} MB bytea row (${(2 * rowBytes) / MB} MB wal2json message) dropped as it arrives, ${queueMaxBytes / MiB} MiB queue`,
        queueMaxBytes,
        streamedBytes: Number(dropped[0]!.bytes),
        seconds: run.seconds,
        peakRssBytes: run.peakRssBytes
      }]
    }
  }
}

/**
 * Micro-benchmark: CPU per change of the pipeline alone (queue, batcher, frontier, publisher and the
 * Effect runtime under them), between in-memory ends: a session handing out reads of about 110
 * changes in transactions of 1 to 5 (B, changes, C), each read's events made when it is taken (as
 * a decoder makes them: the measured CPU includes making them), its bodies views of one buffer as
 * the wal2json decoder makes them, and a Kinesis client accepting every record one macrotask later
 * (or CLIENT_DELAY_MS later: with 20, a backlog builds up in the queue as against a 20 ms endpoint).
 * Checkouts given as arguments run interleaved in one process, several rounds (the first warms up):
 *
 *   CHANGES=200000 ROUNDS=7 npx node --expose-gc bench/PipelineMicro.ts /path/to/base /path/to/this
 */
import * as Effect from "effect/Effect"
import type { ChangeEvent } from "../src/domain/ChangeEvent.ts"
import type * as KinesisClientModule from "../src/kinesis/KinesisClient.ts"
import type * as PipelineModule from "../src/pipeline/Pipeline.ts"
import type { ReplicationSession } from "../src/replication/ReplicationSession.ts"
import { kinesisConfig, pipelineConfig } from "../test/pipeline/fixtures.ts"

const roots = process.argv.slice(2)
const changes = Number(process.env.CHANGES ?? 200_000)
const rounds = Number(process.env.ROUNDS ?? 7)
const perRead = 110
const bodyBytes = 552
/** The client's answer comes this many ms later (CLIENT_DELAY_MS; default 0: one macrotask later). */
const clientDelayMs = Number(process.env.CLIENT_DELAY_MS ?? 0)

/**
 * The backlog as reads, in WAL order, each made when asked for; with `slots` (a checkout whose
 * events carry the pipeline's slots), each change has them, unset, as the decoders make it.
 */
function* makeReads(slots: ReadonlyArray<string>): Generator<Array<ChangeEvent>> {
  const fill = new Uint8Array(bodyBytes).fill(0x61)
  const empty = new Uint8Array(0)
  let read: Array<ChangeEvent> = []
  let buffer = new Uint8Array(perRead * bodyBytes)
  let offset = 0
  let lsn = 0x1000000n
  let made = 0
  for (let xid = 1; made < changes; xid++) {
    const commitLsn = lsn + 0x1000n
    const boundary = (action: "B" | "C", at: bigint, ackLsn: bigint): ChangeEvent => ({
      lsn: at, ackLsn, xid, commitLsn, commitIdx: -1, action, schema: "", table: "", pk: undefined,
      commitTimeMs: 1_700_000_000_000, body: empty
    })
    read.push(boundary("B", lsn, lsn))
    for (let i = 0; i < 1 + (xid % 5) && made < changes; i++) {
      lsn += 0x40n
      if (offset + bodyBytes > buffer.length) {
        yield read
        read = []
        buffer = new Uint8Array(perRead * bodyBytes)
        offset = 0
      }
      buffer.set(fill, offset)
      const action = i % 3 === 0 ? "U" : "I"
      const pk = `[${(made * 7919) % 50_000}]`
      const body = buffer.subarray(offset, offset + bodyBytes)
      read.push(
        slots.length > 0
          ? {
            lsn, ackLsn: lsn, xid, commitLsn, commitIdx: i, action, schema: "public", table: "orders", pk,
            commitTimeMs: 1_700_000_000_000, body,
            partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
          }
          : {
            lsn, ackLsn: lsn, xid, commitLsn, commitIdx: i, action, schema: "public", table: "orders", pk,
            commitTimeMs: 1_700_000_000_000, body
          }
      )
      offset += bodyBytes
      made++
    }
    read.push(boundary("C", commitLsn, commitLsn + 8n))
    lsn = commitLsn + 0x100n
  }
  yield read
}

/** Drains the backlog through one checkout's pipeline; returns its CPU time per change (µs). */
const runOnce = async (root: string): Promise<number> => {
  const Pipeline: typeof PipelineModule = await import(`${root}/src/pipeline/Pipeline.ts`)
  const { KinesisClient }: typeof KinesisClientModule = await import(`${root}/src/kinesis/KinesisClient.ts`)
  const { pipelineSlots }: { pipelineSlots?: ReadonlyArray<string> } = await import(`${root}/src/domain/ChangeEvent.ts`)
  let finalAck = 0n
  for (const read of makeReads([])) finalAck = read.at(-1)!.ackLsn
  const reads = makeReads(pipelineSlots ?? [])
  let drained!: () => void
  const done = new Promise<void>((resolve) => (drained = resolve))
  const session: ReplicationSession = {
    slot: "micro",
    startLsn: 0n,
    // each read arrives one macrotask later, as a socket read would; none after the last
    take: Effect.callback<ReadonlyArray<ChangeEvent>>((resume) => {
      const read = reads.next()
      if (read.done === true) return
      setImmediate(() => resume(Effect.succeed(read.value)))
    }),
    acknowledge: (lsn) => Effect.sync(() => (lsn >= finalAck ? drained() : undefined)),
    flushed: Effect.succeed(0n),
    serverWalEnd: Effect.succeed(0n),
    sendStatusNow: Effect.void
  }
  const ok = { _tag: "Ok", shardId: "shardId-000000000000", sequenceNumber: "1" } as const
  const client: KinesisClientModule.KinesisClient["Service"] = {
    putRecords: (records) =>
      Effect.callback((resume) => {
        const results = new Array(records.length).fill(ok)
        if (clientDelayMs > 0) setTimeout(() => resume(Effect.succeed(results)), clientDelayMs)
        else setImmediate(() => resume(Effect.succeed(results)))
      }),
    describeLimits: Effect.succeed({ maxRecordBytes: 1024 * 1024 }),
    forStream: () => client
  }
  const ordering = process.env.ORDERING === "relaxed" ? "relaxed" : "per_key"
  const program = Effect.flatMap(Effect.service(Pipeline.Pipeline), (pipeline) =>
    pipeline.run(session, { stop: Effect.promise(() => done), maxRecordBytes: 1024 * 1024 })).pipe(
      Effect.provide(Pipeline.layer({ kinesis: kinesisConfig({ ordering }), pipeline: pipelineConfig() })),
      Effect.provideService(KinesisClient, client)
    )
  globalThis.gc?.()
  const before = process.cpuUsage()
  await Effect.runPromise(program)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / changes
}

const results = new Map<string, Array<number>>(roots.map((root) => [root, []]))
for (let r = 0; r < rounds; r++) {
  for (const root of r % 2 === 0 ? roots : [...roots].reverse()) results.get(root)!.push(await runOnce(root))
}
for (const [root, xs] of results) {
  const measured = xs.length > 1 ? xs.slice(1) : xs
  const median = [...measured].sort((a, b) => a - b)[Math.floor(measured.length / 2)]!
  console.log(`${root}: median ${median.toFixed(2)} µs/change  [${xs.map((x) => x.toFixed(2)).join(", ")}]`)
}

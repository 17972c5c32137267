/**
 * Micro-benchmark: CPU per change of the pipeline alone (queue, batcher, frontier, publisher and the
 * Effect runtime under them), between in-memory ends: a session handing out reads of about 110
 * changes (PER_READ: as many as that) in transactions of 1 to 5 (B, changes, C), each read's events made when it is taken (as
 * a decoder makes them: the measured CPU includes making them), its bodies views of one buffer as
 * the wal2json decoder makes them, and a Kinesis client accepting every record one macrotask later
 * (or CLIENT_DELAY_MS later: with 20, a backlog builds up in the queue as against a 20 ms endpoint).
 * Checkouts given as arguments run interleaved in one process, several rounds (the first warms up);
 * each drain reports its CPU time per change and the garbage collections during it (count, and
 * their time per change), and with ALLOC=1 the bytes it allocated per change:
 *
 *   CHANGES=200000 ROUNDS=7 npx node --expose-gc bench/PipelineMicro.ts /path/to/base /path/to/this
 */
import { Session } from "node:inspector/promises"
import { PerformanceObserver } from "node:perf_hooks"
import * as Effect from "effect/Effect"
import type { ChangeEvent } from "../src/domain/ChangeEvent.ts"
import type * as KinesisClientModule from "../src/kinesis/KinesisClient.ts"
import type * as PipelineModule from "../src/pipeline/Pipeline.ts"
import type { ReplicationSession } from "../src/replication/ReplicationSession.ts"
import { kinesisConfig, pipelineConfig } from "../test/pipeline/fixtures.ts"

const roots = process.argv.slice(2)
const changes = Number(process.env.CHANGES ?? 200_000)
const rounds = Number(process.env.ROUNDS ?? 7)
const perRead = Number(process.env.PER_READ ?? 110)
const bodyBytes = 552
/** The client's answer comes this many ms later (CLIENT_DELAY_MS; default 0: one macrotask later). */
const clientDelayMs = Number(process.env.CLIENT_DELAY_MS ?? 0)
/**
 * ALLOC=1: each drain runs under V8's sampling heap profiler, which estimates the bytes allocated,
 * in all and by code in src/pipeline/ (a builtin such as Array push or Map set counts for the
 * function that called it). The profiler costs CPU: compare the CPU figures of runs without it.
 */
const allocations = process.env.ALLOC === "1"

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

/** Garbage collections (count, ms) seen by the observer since the last reset: the drain's own, as it runs alone. */
const gcs = { count: 0, ms: 0 }
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcs.count++
    gcs.ms += entry.duration
  }
}).observe({ entryTypes: ["gc"] })

interface Measured {
  /** CPU time per change, µs. */
  readonly us: number
  /** Garbage collections during the drain. */
  readonly gcCount: number
  /** Their time per change, µs (as the observer reports their durations). */
  readonly gcUs: number
  /** With ALLOC=1: bytes allocated per change, in all and by src/pipeline/ code (sampled estimates). */
  readonly allocated?: { readonly total: number; readonly pipeline: number } | undefined
}

interface SamplingNode {
  readonly callFrame: { readonly url: string }
  readonly selfSize: number
  readonly children: ReadonlyArray<SamplingNode>
}

/** The sampled bytes of a heap profile: all, and those whose nearest caller with a source is in src/pipeline/. */
const sampledBytes = (node: SamplingNode, owner = ""): { total: number; pipeline: number } => {
  const url = node.callFrame.url
  const here = url === "" || url.startsWith("node:") ? owner : url
  const sums = { total: node.selfSize, pipeline: here.includes("/src/pipeline/") ? node.selfSize : 0 }
  for (const child of node.children) {
    const below = sampledBytes(child, here)
    sums.total += below.total
    sums.pipeline += below.pipeline
  }
  return sums
}

const profiler = allocations ? new Session() : undefined
profiler?.connect()
await profiler?.post("HeapProfiler.enable")

/** Drains the backlog through one checkout's pipeline; returns its CPU and GC time per change. */
const runOnce = async (root: string): Promise<Measured> => {
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
  // the forced collection's entry arrives later: let it, then count from here
  await new Promise((resolve) => setImmediate(resolve))
  gcs.count = 0
  gcs.ms = 0
  await profiler?.post("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true
  })
  const before = process.cpuUsage()
  await Effect.runPromise(program)
  const used = process.cpuUsage(before)
  const sampled = await profiler?.post("HeapProfiler.stopSampling")
  await new Promise((resolve) => setImmediate(resolve))
  const bytes = sampled === undefined ? undefined : sampledBytes(sampled.profile.head as SamplingNode)
  return {
    us: (used.user + used.system) / changes,
    gcCount: gcs.count,
    gcUs: (gcs.ms * 1000) / changes,
    allocated: bytes === undefined ? undefined : { total: bytes.total / changes, pipeline: bytes.pipeline / changes }
  }
}

const results = new Map<string, Array<Measured>>(roots.map((root) => [root, []]))
for (let r = 0; r < rounds; r++) {
  for (const root of r % 2 === 0 ? roots : [...roots].reverse()) results.get(root)!.push(await runOnce(root))
}
const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
for (const [root, xs] of results) {
  const measured = xs.length > 1 ? xs.slice(1) : xs
  console.log(
    `${root}: median ${median(measured.map((x) => x.us)).toFixed(2)} µs/change, ` +
      `GC ${median(measured.map((x) => x.gcCount))} collections, ${median(measured.map((x) => x.gcUs)).toFixed(2)} µs/change` +
      (allocations
        ? `, allocated ${median(measured.map((x) => x.allocated!.total)).toFixed(0)} B/change` +
          ` (src/pipeline ${median(measured.map((x) => x.allocated!.pipeline)).toFixed(0)})`
        : "") +
      `  [${xs.map((x) => x.us.toFixed(2)).join(", ")}]`
  )
}

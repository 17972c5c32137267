import { assert, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import type { KinesisConfig, PipelineConfig } from "../../src/config/ServiceConfig.ts"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as KinesisMemory from "../../src/kinesis/KinesisMemory.ts"
import * as ChangeQueue from "../../src/pipeline/ChangeQueue.ts"
import * as Frontier from "../../src/pipeline/Frontier.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import * as Publisher from "../../src/pipeline/Publisher.ts"
import { boundary, change, decode, kinesisConfig, pipelineConfig } from "./fixtures.ts"

interface Rig {
  readonly queue: ChangeQueue.ChangeQueue<ChangeEvent>
  readonly frontier: Frontier.Frontier
  readonly kinesis: KinesisMemory.KinesisMemory["Service"]
  readonly publisher: Publisher.Publisher
}

const rig = (options: {
  readonly kinesis?: Partial<KinesisConfig>
  readonly pipeline?: Partial<PipelineConfig>
  readonly memory?: KinesisMemory.KinesisMemoryOptions
  readonly maxRecordBytes?: number
} = {}): Rig => {
  const pipeline = pipelineConfig(options.pipeline)
  const kinesis = kinesisConfig(options.kinesis)
  const queue = ChangeQueue.make<ChangeEvent>({
    maxMessages: pipeline.queueMaxMessages,
    maxBytes: pipeline.queueMaxBytes,
    sizeOf: Publisher.eventBytes
  })
  const frontier = Frontier.make(0n)
  const memory = KinesisMemory.make(options.memory)
  const publisher = Publisher.make(queue, frontier, memory.client, {
    kinesis,
    pipeline,
    maxRecordBytes: options.maxRecordBytes ?? 1024 * 1024
  })
  return { queue, frontier, kinesis: memory, publisher }
}

/** What the reader does: register everything, queue the publishable changes. */
const read = (r: Rig, events: ReadonlyArray<ChangeEvent>) =>
  Effect.suspend(() => {
    r.frontier.register(events)
    return r.queue.offerAll(events.filter((e) => e.action !== "B" && e.action !== "C"))
  })

/** Lets other fibers run until `condition` holds (no clock involved). */
const settle = (condition: () => boolean, message = "condition not reached") =>
  Effect.gen(function*() {
    for (let i = 0; i < 5_000 && !condition(); i++) yield* Effect.yieldNow
    assert.isTrue(condition(), message)
  })

/** A counter's current value for the given attributes. */
const counter = (metric: typeof Metrics.putRecordsRetries, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.count)

const idle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** A transaction of changes on the given primary keys. */
const transaction = (pks: ReadonlyArray<number>, bodyBytes?: number): Array<ChangeEvent> => [
  boundary("B"),
  ...pks.map((pk) => change(pk, bodyBytes === undefined ? {} : { bodyBytes })),
  boundary("C")
]

describe("Publisher batching", () => {
  it.effect("never exceeds BATCH_MAX_RECORDS and carries each change once", () =>
    Effect.gen(function*() {
      const r = rig({ pipeline: { batchMaxRecords: 100 }, kinesis: { ordering: "relaxed" } })
      const events = transaction(Array.from({ length: 250 }, (_, i) => i))
      yield* read(r, events)
      r.queue.end()
      yield* r.publisher.run
      const sizes = r.kinesis.requests().map((req) => req.records.length)
      assert.deepStrictEqual(sizes, [100, 100, 50])
      assert.strictEqual(r.kinesis.accepted().length, 250)
      assert.strictEqual(r.frontier.current(), events[events.length - 1]!.ackLsn)
      assert.strictEqual(r.queue.heldBytes(), 0)
    }))

  it.effect("never exceeds BATCH_MAX_BYTES, partition keys included", () =>
    Effect.gen(function*() {
      const r = rig({ pipeline: { batchMaxBytes: 4_096 } })
      yield* read(r, transaction(Array.from({ length: 40 }, (_, i) => i), 1_000))
      r.queue.end()
      yield* r.publisher.run
      for (const request of r.kinesis.requests()) {
        const bytes = request.records.reduce((n, rec) => n + rec.body.byteLength + Buffer.byteLength(rec.partitionKey), 0)
        expect(bytes).toBeLessThanOrEqual(4_096)
        expect(request.records.length).toBe(4) // 4 × ~1018 fits, 5 does not
      }
      assert.strictEqual(r.kinesis.accepted().length, 40)
    }))

  it.effect("sends the record body bytes exactly as decoded", () =>
    Effect.gen(function*() {
      const r = rig()
      const events = transaction([1, 2, 3])
      yield* read(r, events)
      r.queue.end()
      yield* r.publisher.run
      const bodies = r.kinesis.accepted().map((a) => a.data)
      assert.deepStrictEqual(bodies, events.slice(1, 4).map((e) => e.body))
      assert.deepStrictEqual(r.kinesis.accepted().map((a) => a.partitionKey), ["public.orders:[1]", "public.orders:[2]", "public.orders:[3]"])
    }))

  it.effect("drops a change over the per-record limit (data + key) and still moves the frontier", () =>
    Effect.gen(function*() {
      const r = rig({ maxRecordBytes: 2_048 })
      const events = transaction([1, 2, 3])
      const big = change(9, { bodyBytes: 2_040 }) // 2040 + "public.orders:[9]" > 2048
      const all = [...events.slice(0, 2), big, ...events.slice(2)]
      const before = yield* counter(Metrics.changesDropped, { reason: "oversized" })
      yield* read(r, all)
      r.queue.end()
      yield* r.publisher.run
      assert.strictEqual((yield* counter(Metrics.changesDropped, { reason: "oversized" })) - before, 1)
      assert.deepStrictEqual(r.kinesis.accepted().map((a) => decode(a.data).pk), [1, 2, 3])
      assert.strictEqual(r.frontier.current(), all[all.length - 1]!.ackLsn)
      assert.strictEqual(r.queue.heldCount(), 0)
    }))

  it.effect("always drops a change that was not readable JSON (counted), even under OVERSIZED_RECORD_POLICY=fail", () =>
    Effect.gen(function*() {
      const r = rig({ kinesis: { oversizedRecordPolicy: "fail" } })
      const events = transaction([1, 2, 3])
      const unreadable: ChangeEvent = { ...change(9), body: new Uint8Array(0), pk: undefined, unreadableBytes: 40 }
      const all = [...events.slice(0, 2), unreadable, ...events.slice(2)]
      const before = yield* counter(Metrics.changesDropped, { reason: "unreadable" })
      const oversizedBefore = yield* counter(Metrics.changesDropped, { reason: "oversized" })
      yield* read(r, all)
      r.queue.end()
      yield* r.publisher.run
      assert.strictEqual((yield* counter(Metrics.changesDropped, { reason: "unreadable" })) - before, 1)
      assert.strictEqual((yield* counter(Metrics.changesDropped, { reason: "oversized" })) - oversizedBefore, 0)
      assert.deepStrictEqual(r.kinesis.accepted().map((a) => decode(a.data).pk), [1, 2, 3])
      assert.strictEqual(r.frontier.current(), all[all.length - 1]!.ackLsn)
    }))

  it.effect("fails with DecodeError Oversized under OVERSIZED_RECORD_POLICY=fail, and the frontier stays before it", () =>
    Effect.gen(function*() {
      const r = rig({ maxRecordBytes: 2_048, kinesis: { oversizedRecordPolicy: "fail" } })
      const first = transaction([1])
      const second = transaction([2])
      const big = change(9, { bodyBytes: 3_000 })
      yield* read(r, [...first, second[0]!, big, ...second.slice(1)])
      r.queue.end()
      const error = yield* Effect.flip(r.publisher.run)
      assert.strictEqual(error._tag, "DecodeError")
      assert.strictEqual(error.reason, "Oversized")
      assert.isFalse(error.retriable)
      assert.isTrue(r.frontier.current() < second[2]!.ackLsn)
    }))
})

describe("Publisher linger", () => {
  it.effect("a lone change goes out at once when nothing is in flight; later ones linger while a request is in flight", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const r = rig({ pipeline: { batchMaxWaitMs: 20 } })
      r.kinesis.setBehaviour((req) =>
        req.index === 0 ? Deferred.await(gate).pipe(Effect.as(KinesisMemory.accept)) : Effect.succeed(KinesisMemory.accept)
      )
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      yield* read(r, transaction([1]))
      yield* settle(() => r.kinesis.requests().length === 1, "the lone change was not sent at once")
      // request 0 is in flight: new changes wait for the linger (or a full batch)
      yield* read(r, transaction([2, 3, 4]))
      yield* idle
      assert.strictEqual(r.kinesis.requests().length, 1)
      yield* TestClock.adjust("19 millis")
      yield* idle
      assert.strictEqual(r.kinesis.requests().length, 1, "sent before the linger passed")
      yield* TestClock.adjust("1 millis")
      yield* settle(() => r.kinesis.requests().length === 2, "not sent when the linger passed")
      assert.strictEqual(r.kinesis.requests()[1]!.records.length, 3)
      yield* Deferred.succeed(gate, undefined)
      r.queue.end()
      yield* Fiber.join(run)
      assert.strictEqual(r.kinesis.accepted().length, 4)
    }))

  it.effect("a full batch goes out without waiting for the linger", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const r = rig({ pipeline: { batchMaxWaitMs: 1_000, batchMaxRecords: 5 } })
      r.kinesis.setBehaviour((req) =>
        req.index === 0 ? Deferred.await(gate).pipe(Effect.as(KinesisMemory.accept)) : Effect.succeed(KinesisMemory.accept)
      )
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      yield* read(r, transaction([1]))
      yield* settle(() => r.kinesis.requests().length === 1)
      yield* read(r, transaction([2, 3, 4, 5, 6, 7]))
      yield* settle(() => r.kinesis.requests().length === 2, "a full batch waited")
      assert.strictEqual(r.kinesis.requests()[1]!.records.length, 5)
      yield* Deferred.succeed(gate, undefined)
      r.queue.end()
      yield* Fiber.join(run)
      assert.strictEqual(r.kinesis.accepted().length, 7)
    }))
  it.effect("each linger ends at its own deadline: after a timer fired, after a full batch took the oldest, and with the deadline moved later", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const r = rig({ pipeline: { batchMaxWaitMs: 20, batchMaxRecords: 3 } })
      // request 0 stays in flight throughout, so later changes linger
      r.kinesis.setBehaviour((req) =>
        req.index === 0 ? Deferred.await(gate).pipe(Effect.as(KinesisMemory.accept)) : Effect.succeed(KinesisMemory.accept)
      )
      const sent = () => r.kinesis.requests().length
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      yield* read(r, transaction([1]))
      yield* settle(() => sent() === 1)
      // t=0: A lingers until 20; t=10: B joins it; at 20 both go
      yield* read(r, transaction([2]))
      yield* idle
      yield* TestClock.adjust("10 millis")
      yield* read(r, transaction([3]))
      yield* TestClock.adjust("9 millis")
      yield* idle
      assert.strictEqual(sent(), 1, "sent before the linger passed")
      yield* TestClock.adjust("1 millis")
      yield* settle(() => sent() === 2, "not sent at the first deadline")
      assert.strictEqual(r.kinesis.requests()[1]!.records.length, 2)
      // t=25: C lingers until 45 (a timer of its own, the first one having fired)
      yield* TestClock.adjust("5 millis")
      yield* read(r, transaction([4]))
      yield* TestClock.adjust("19 millis")
      yield* idle
      assert.strictEqual(sent(), 2, "sent before the second deadline")
      yield* TestClock.adjust("1 millis")
      yield* settle(() => sent() === 3, "not sent at the second deadline")
      // t=45: D lingers until 65; t=50: E and F fill a batch with it, which goes at once;
      // t=55: G lingers until 75, past the timer kept for 65
      yield* read(r, transaction([5]))
      yield* idle
      yield* TestClock.adjust("5 millis")
      yield* read(r, transaction([6, 7]))
      yield* settle(() => sent() === 4, "a full batch waited")
      assert.strictEqual(r.kinesis.requests()[3]!.records.length, 3)
      yield* TestClock.adjust("5 millis")
      yield* read(r, transaction([8]))
      yield* TestClock.adjust("10 millis")
      yield* idle
      assert.strictEqual(sent(), 4, "sent at the earlier deadline of a change already sent")
      yield* TestClock.adjust("9 millis")
      yield* idle
      assert.strictEqual(sent(), 4, "sent before its deadline")
      yield* TestClock.adjust("1 millis")
      yield* settle(() => sent() === 5, "not sent at its deadline")
      assert.strictEqual(r.kinesis.requests()[4]!.records.length, 1)
      yield* Deferred.succeed(gate, undefined)
      r.queue.end()
      yield* Fiber.join(run)
      assert.strictEqual(r.kinesis.accepted().length, 8)
    }))
})

describe("Publisher retries and failures", () => {
  it.effect("retries retriable request failures without limit, then delivers", () =>
    Effect.gen(function*() {
      const r = rig({ kinesis: { retryBaseMs: 10, retryMaxMs: 100 } })
      r.kinesis.setBehaviour((req) =>
        Effect.succeed(req.index < 50 ? KinesisMemory.fail("ProvisionedThroughputExceededException") : KinesisMemory.accept)
      )
      const events = transaction([1, 2])
      yield* read(r, events)
      r.queue.end()
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(run)
      assert.strictEqual(r.kinesis.requests().length, 51)
      assert.strictEqual(r.kinesis.accepted().length, 2)
      assert.strictEqual(r.frontier.current(), events[3]!.ackLsn)
    }))

  it.effect("retries only the failed records of a partially failed request", () =>
    Effect.gen(function*() {
      const r = rig({ kinesis: { retryBaseMs: 10, retryMaxMs: 100 } })
      r.kinesis.setBehaviour((req) =>
        Effect.succeed(
          req.index === 0 ? KinesisMemory.partial([undefined, "InternalFailure", undefined]) : KinesisMemory.accept
        )
      )
      const before = yield* counter(Metrics.putRecordsRetries, { code: "InternalFailure" })
      const publishedBefore = (yield* Metric.value(Metrics.changesPublished)).count
      const batchesBefore = (yield* Metric.value(Metrics.batchesPublished)).count
      yield* read(r, transaction([1, 2, 3]))
      r.queue.end()
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(run)
      assert.strictEqual((yield* counter(Metrics.putRecordsRetries, { code: "InternalFailure" })) - before, 1)
      // one stream: the unlabelled series count every accepted change, and each request's response
      assert.strictEqual((yield* Metric.value(Metrics.changesPublished)).count - publishedBefore, 3)
      assert.strictEqual((yield* Metric.value(Metrics.batchesPublished)).count - batchesBefore, 2)
      assert.deepStrictEqual(r.kinesis.requests().map((req) => req.records.length), [3, 1])
      assert.deepStrictEqual(r.kinesis.accepted().map((a) => decode(a.data).pk), [1, 3, 2])
    }))

  it.effect("stops when a record fails with a KMS key that cannot be used, even on the last request of a drain", () =>
    Effect.gen(function*() {
      const r = rig({ kinesis: { retryBaseMs: 10, retryMaxMs: 100 } })
      r.kinesis.setBehaviour(() =>
        Effect.succeed(KinesisMemory.partial([undefined, "KMSAccessDeniedException", "ProvisionedThroughputExceededException"]))
      )
      yield* read(r, transaction([1, 2, 3]))
      r.queue.end()
      const error = yield* Effect.flip(r.publisher.run)
      assert.strictEqual(error._tag, "KinesisError")
      assert.strictEqual(error._tag === "KinesisError" ? error.reason : "", "KmsUnusable")
      assert.include(error.message, "2 of 3 records failed")
      // not retried: one request only, its accepted record kept
      assert.strictEqual(r.kinesis.requests().length, 1)
      assert.deepStrictEqual(r.kinesis.accepted().map((a) => decode(a.data).pk), [1])
      assert.strictEqual(r.frontier.current(), 0n)
    }))

  it.effect("stops at once on a fatal request error and does not move the frontier", () =>
    Effect.gen(function*() {
      const r = rig()
      r.kinesis.setBehaviour(() => Effect.succeed(KinesisMemory.fail("AccessDeniedException")))
      yield* read(r, transaction([1, 2]))
      const error = yield* Effect.flip(r.publisher.run)
      assert.strictEqual(error._tag, "KinesisError")
      assert.strictEqual(error._tag === "KinesisError" ? error.code : "", "AccessDeniedException")
      assert.strictEqual(r.kinesis.requests().length, 1)
      assert.strictEqual(r.frontier.current(), 0n)
    }))
})

describe("Publisher memory bound", () => {
  it.effect("with a stalled Kinesis the queue holds at most QUEUE_MAX_BYTES and the reader suspends", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const r = rig({ pipeline: { queueMaxBytes: 10_000, batchMaxWaitMs: 5 } })
      let maxHeld = 0
      r.kinesis.setBehaviour(() =>
        Effect.sync(() => {
          maxHeld = Math.max(maxHeld, r.queue.heldBytes())
        }).pipe(Effect.andThen(Deferred.await(gate)), Effect.as(KinesisMemory.accept))
      )
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      const reads = Array.from({ length: 40 }, (_, t) => transaction(Array.from({ length: 5 }, (_, i) => t * 5 + i), 500))
      const reader = yield* Effect.forEach(reads, (events) => read(r, events), { discard: true }).pipe(Effect.forkChild)
      yield* settle(() => r.queue.heldBytes() > 9_500)
      yield* TestClock.adjust("1 second") // lingering batches go out too; Kinesis still stalls
      yield* idle
      assert.isUndefined(reader.pollUnsafe(), "the reader did not suspend")
      assert.isTrue(r.queue.heldBytes() <= 10_000, `held ${r.queue.heldBytes()} bytes`)
      assert.strictEqual(r.kinesis.accepted().length, 0)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(reader)
      r.queue.end()
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(run)
      assert.strictEqual(r.kinesis.accepted().length, 200)
      assert.isTrue(maxHeld <= 10_000, `held ${maxHeld} bytes at a request`)
      assert.strictEqual(r.queue.heldBytes(), 0)
    }))
})

/** A small deterministic PRNG for the fake's fault script. */
const prng = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Scenario {
  readonly keys: ReadonlyArray<number>
  readonly txSizes: ReadonlyArray<number>
  readonly maxInflight: number
  readonly batchMaxRecords: number
  readonly batchMaxWaitMs: number
  readonly queueMaxMessages: number
  readonly recordFailureRate: number
  readonly requestFailureRate: number
  readonly seed: number
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  keys: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 150 }),
  txSizes: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 20 }),
  maxInflight: fc.integer({ min: 1, max: 8 }),
  batchMaxRecords: fc.integer({ min: 1, max: 20 }),
  batchMaxWaitMs: fc.integer({ min: 0, max: 3 }),
  queueMaxMessages: fc.integer({ min: 1, max: 200 }),
  recordFailureRate: fc.double({ min: 0, max: 0.5, noNaN: true }),
  requestFailureRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
  seed: fc.integer()
})

/** Runs a scenario on the real clock: reader and publisher concurrently, with latency and faults. */
const runScenario = (s: Scenario, ordering: "per_key" | "relaxed") =>
  Effect.gen(function*() {
    const r = rig({
      kinesis: { ordering, maxInflight: s.maxInflight, retryBaseMs: 1, retryMaxMs: 3 },
      pipeline: { batchMaxRecords: s.batchMaxRecords, batchMaxWaitMs: s.batchMaxWaitMs, queueMaxMessages: s.queueMaxMessages }
    })
    const random = prng(s.seed)
    let duplicateKeyRequests = 0
    r.kinesis.setBehaviour((req) => {
      const keys = new Set(req.records.map((rec) => rec.partitionKey))
      if (keys.size !== req.records.length) duplicateKeyRequests++
      const latency = Math.floor(random() * 3)
      const outcome = random() < s.requestFailureRate
        ? KinesisMemory.fail("ServiceUnavailable")
        : KinesisMemory.partial(req.records.map(() =>
          random() < s.recordFailureRate ? (random() < 0.5 ? "ProvisionedThroughputExceededException" : "InternalFailure") : undefined
        ))
      return Effect.sleep(`${latency} millis`).pipe(Effect.as(outcome))
    })
    // transactions over the random keys, read in chunks of one transaction
    const reads: Array<Array<ChangeEvent>> = []
    let seq = 0
    for (let i = 0, t = 0; i < s.keys.length; t++) {
      const size = s.txSizes[t % s.txSizes.length]!
      reads.push(transaction([]).slice(0, 1).concat(
        s.keys.slice(i, i + size).map((k) => change(k, { seq: seq++ })),
        [boundary("C")]
      ))
      i += size
    }
    const run = yield* r.publisher.run.pipe(Effect.forkChild)
    yield* Effect.forEach(reads, (events) => read(r, events), { discard: true })
    r.queue.end()
    yield* Fiber.join(run)
    const lastCommit = reads[reads.length - 1]![reads[reads.length - 1]!.length - 1]!
    return { r, duplicateKeyRequests, lastCommit, expected: reads.flat().filter((e) => e.action !== "B" && e.action !== "C") }
  })

describe("Publisher ordering (property, random workloads and faults)", () => {
  it("per_key: every key's changes land in order, each exactly once; one record per key per request", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, (s) =>
        Effect.runPromise(Effect.gen(function*() {
          const { r, duplicateKeyRequests, lastCommit, expected } = yield* runScenario(s, "per_key")
          const byKey = (items: ReadonlyArray<{ readonly pk: unknown; readonly seq: number }>) => {
            const map = new Map<string, Array<number>>()
            for (const item of items) map.set(String(item.pk), [...(map.get(String(item.pk)) ?? []), item.seq])
            return map
          }
          const landed = byKey(r.kinesis.accepted().map((a) => decode(a.data)))
          const wanted = byKey(expected.map((e) => decode(e.body)))
          expect(landed).toEqual(wanted)
          expect(duplicateKeyRequests).toBe(0)
          expect(r.kinesis.maxInflightSeen()).toBeLessThanOrEqual(s.maxInflight)
          expect(r.frontier.current()).toBe(lastCommit.ackLsn)
          expect(r.queue.heldCount()).toBe(0)
        }))
      ),
      { numRuns: 40 }
    )
  })

  it("relaxed: every change lands exactly once", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, (s) =>
        Effect.runPromise(Effect.gen(function*() {
          const { r, lastCommit, expected } = yield* runScenario(s, "relaxed")
          const landed = r.kinesis.accepted().map((a) => decode(a.data).seq).sort((a, b) => a - b)
          expect(landed).toEqual(expected.map((e) => decode(e.body).seq))
          expect(r.frontier.current()).toBe(lastCommit.ackLsn)
        }))
      ),
      { numRuns: 20 }
    )
  })

  it("sends requests for different keys concurrently, up to KINESIS_MAX_INFLIGHT", async () => {
    await Effect.runPromise(Effect.gen(function*() {
      const r = rig({ kinesis: { maxInflight: 3 }, pipeline: { batchMaxRecords: 2, batchMaxWaitMs: 0 } })
      r.kinesis.setBehaviour(() => Effect.sleep("5 millis").pipe(Effect.as(KinesisMemory.accept)))
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      yield* read(r, transaction(Array.from({ length: 30 }, (_, i) => i)))
      r.queue.end()
      yield* Fiber.join(run)
      expect(r.kinesis.maxInflightSeen()).toBe(3)
      expect(r.kinesis.accepted().length).toBe(30)
    }))
  })
})

describe("Publisher intake", () => {
  it.effect("with one stream, changes wait in the queue while two full batches per request slot are ready; all delivered in per-key order", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      // one slot, batches of 2: at most 2 × 1 × 2 = 4 ready beside the request in flight
      const r = rig({ kinesis: { maxInflight: 1 }, pipeline: { batchMaxRecords: 2 } })
      r.kinesis.setBehaviour(() => Deferred.await(gate).pipe(Effect.as(KinesisMemory.accept)))
      const run = yield* r.publisher.run.pipe(Effect.forkChild)
      // 40 changes on 7 keys, so keys repeat and wait behind their own records
      yield* read(r, transaction(Array.from({ length: 40 }, (_, i) => i % 7)))
      yield* idle
      assert.strictEqual(r.kinesis.requests().length, 1)
      assert.strictEqual(r.queue.heldCount(), 40, "everything is held until acknowledged")
      assert.isAtLeast(r.queue.buffered(), 40 - 2 - 4, "the rest waits in the queue")
      yield* Deferred.succeed(gate, undefined)
      r.queue.end()
      yield* Fiber.join(run)
      const accepted = r.kinesis.accepted()
      assert.strictEqual(accepted.length, 40)
      const lastSeq = new Map<string, number>()
      for (const record of accepted) {
        const { seq } = decode(record.data)
        assert.isAbove(seq, lastSeq.get(record.partitionKey) ?? -1, `order of ${record.partitionKey}`)
        lastSeq.set(record.partitionKey, seq)
      }
      assert.strictEqual(r.frontier.outstanding(), 0)
      assert.strictEqual(r.queue.heldCount(), 0)
    }))
})

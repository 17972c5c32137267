import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric } from "effect"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import type { Lsn } from "../../src/domain/Lsn.ts"
import { PgError } from "../../src/Errors.ts"
import * as KinesisMemory from "../../src/kinesis/KinesisMemory.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import type { ReplicationSession } from "../../src/replication/ReplicationSession.ts"
import { boundary, change, decode, kinesisConfig, pipelineConfig, runPipeline } from "./fixtures.ts"

/** A session that returns the scripted reads, then waits for ever; it records acknowledgements. */
const fakeSession = (reads: ReadonlyArray<ReadonlyArray<ChangeEvent>>) => {
  let next = 0
  const acks: Array<Lsn> = []
  let statusSent = 0
  const session: ReplicationSession = {
    slot: "test_slot",
    startLsn: 0n,
    take: Effect.suspend(() => (next < reads.length ? Effect.succeed(reads[next++]!) : Effect.never)),
    acknowledge: (lsn) => Effect.sync(() => void acks.push(lsn)),
    flushed: Effect.sync(() => acks[acks.length - 1] ?? 0n),
    serverWalEnd: Effect.succeed(0n),
    sendStatusNow: Effect.sync(() => void statusSent++)
  }
  return { session, acks, taken: () => next, statusSent: () => statusSent }
}

/** Polls `condition` on the real clock until it holds or the deadline passes. */
const eventually = (condition: () => boolean, timeoutMs = 5_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error("condition not reached in time"))
      yield* Effect.sleep("2 millis")
    }
  })

/** One transaction's read: B, a change per key (an insert unless an action is given), C. */
const tx = (changes: ReadonlyArray<number | readonly [number, "I" | "U" | "D"]>) => {
  const commit = boundary("C")
  return [
    boundary("B"),
    ...changes.map((c) => (typeof c === "number" ? change(c) : change(c[0], { action: c[1] }))),
    { ...commit, ackLsn: commit.lsn + 8n }
  ]
}

/** Runs the pipeline in a fiber until `stop` is called, which waits for it to return. */
const startPipeline = (
  session: ReplicationSession,
  client: KinesisMemory.KinesisMemory["Service"]["client"],
  pipeline = pipelineConfig()
) =>
  Effect.gen(function*() {
    const stopped = yield* Deferred.make<void>()
    const run = yield* runPipeline(session, client, { kinesis: kinesisConfig(), pipeline, stop: Deferred.await(stopped) }).pipe(
      Effect.forkChild
    )
    return { stop: Deferred.succeed(stopped, undefined).pipe(Effect.andThen(Fiber.join(run))) }
  })

describe("Pipeline.run", () => {
  it.live("counts each change received once, by action, over several reads (cdc_changes_received_total)", () =>
    Effect.gen(function*() {
      const reads = [tx([[1, "I"], [2, "I"], [3, "U"]]), tx([[4, "D"]]), tx([[5, "I"], [6, "U"]]), tx([])]
      const fake = fakeSession(reads)
      const memory = KinesisMemory.make()
      const lastAck = reads[3]![1]!.ackLsn
      const pipeline = yield* startPipeline(fake.session, memory.client)
      yield* eventually(() => fake.acks.includes(lastAck))
      yield* pipeline.stop
      const received = (action: string) =>
        Effect.map(Metric.value(Metric.withAttributes(Metrics.changesReceived, { action })), (state) => state.count)
      expect(yield* received("I")).toBe(3)
      expect(yield* received("U")).toBe(2)
      expect(yield* received("D")).toBe(1)
      expect(yield* received("T")).toBe(0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.live("publishes every change, acknowledges the last commit, and stops gracefully", () =>
    Effect.gen(function*() {
      const reads = [tx([1, 2]), tx([3]), tx([])]
      const fake = fakeSession(reads)
      const memory = KinesisMemory.make()
      const lastAck = reads[2]![1]!.ackLsn
      const pipeline = yield* startPipeline(fake.session, memory.client)
      yield* eventually(() => fake.acks.includes(lastAck))
      expect(memory.accepted().map((a) => decode(a.data).pk)).toEqual([1, 2, 3])
      // acknowledgements never go backwards
      expect([...fake.acks].sort((a, b) => (a < b ? -1 : 1))).toEqual(fake.acks)
      yield* pipeline.stop
      expect(fake.statusSent()).toBe(1)
    }))

  it.live("on stop, lets in-flight requests finish and acknowledges them before returning", () =>
    Effect.gen(function*() {
      const reads = [tx([1, 2, 3])]
      const fake = fakeSession(reads)
      const memory = KinesisMemory.make({ behaviour: () => Effect.sleep("200 millis").pipe(Effect.as(KinesisMemory.accept)) })
      const pipeline = yield* startPipeline(fake.session, memory.client)
      yield* eventually(() => memory.inflight() > 0)
      yield* pipeline.stop
      expect(memory.accepted()).toHaveLength(3)
      expect(fake.acks[fake.acks.length - 1]).toBe(reads[0]![4]!.ackLsn)
      expect(fake.statusSent()).toBe(1)
    }))

  it.live("a fatal Kinesis error fails the pipeline and the slot is not acknowledged past unpublished changes", () =>
    Effect.gen(function*() {
      const reads = [tx([1]), tx([2])]
      const fake = fakeSession(reads)
      const memory = KinesisMemory.make({
        behaviour: (req) =>
          Effect.succeed(req.index === 0 ? KinesisMemory.accept : KinesisMemory.fail("KMSAccessDeniedException"))
      })
      const error = yield* Effect.flip(runPipeline(fake.session, memory.client, {
        kinesis: kinesisConfig(),
        pipeline: pipelineConfig()
      }))
      expect(error._tag).toBe("KinesisError")
      const second = reads[1]![2]!.ackLsn
      expect(fake.acks.every((lsn) => lsn < second)).toBe(true)
    }))

  it.live("a missing stream fails at startup (DescribeStreamSummary)", () =>
    Effect.gen(function*() {
      const fake = fakeSession([tx([1])])
      const memory = KinesisMemory.make({ missing: true })
      const error = yield* Effect.flip(runPipeline(fake.session, memory.client, {
        kinesis: kinesisConfig(),
        pipeline: pipelineConfig()
      }))
      expect(error._tag === "KinesisError" ? error.code : error._tag).toBe("ResourceNotFoundException")
      expect(fake.taken()).toBe(0)
    }))

  it.live("a missing stream fails at startup even when KINESIS_MAX_RECORD_BYTES is set", () =>
    Effect.gen(function*() {
      const fake = fakeSession([tx([1])])
      const memory = KinesisMemory.make({ missing: true })
      const error = yield* Effect.flip(runPipeline(fake.session, memory.client, {
        kinesis: kinesisConfig({ maxRecordBytes: 4096 }),
        pipeline: pipelineConfig()
      }))
      expect(error._tag === "KinesisError" ? error.code : error._tag).toBe("ResourceNotFoundException")
      expect(fake.taken()).toBe(0)
    }))

  it.live("back-pressure: with Kinesis stalled, the reader stops taking once the queue is full", () =>
    Effect.gen(function*() {
      const reads = Array.from({ length: 100 }, (_, i) => tx([i * 2, i * 2 + 1]))
      const fake = fakeSession(reads)
      const gate = yield* Deferred.make<void>()
      const memory = KinesisMemory.make({ behaviour: () => Deferred.await(gate).pipe(Effect.as(KinesisMemory.accept)) })
      const pipeline = yield* startPipeline(fake.session, memory.client, pipelineConfig({ queueMaxMessages: 10 }))
      yield* eventually(() => fake.taken() >= 5)
      yield* Effect.sleep("50 millis")
      // 10 changes fit: 5 reads of 2, plus the read whose offer is suspended
      expect(fake.taken()).toBeLessThanOrEqual(6)
      yield* Deferred.succeed(gate, undefined)
      yield* eventually(() => memory.accepted().length === 200)
      yield* pipeline.stop
      expect(fake.acks[fake.acks.length - 1]).toBe(reads[99]![3]!.ackLsn)
    }))

  it.live("a reader error fails the pipeline and interrupts the requests in flight", () =>
    Effect.gen(function*() {
      const fake = fakeSession([tx([1])])
      let interrupted = false
      const memory = KinesisMemory.make({
        behaviour: () => Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => void (interrupted = true))))
      })
      const failing: ReplicationSession = {
        ...fake.session,
        take: Effect.suspend(() =>
          fake.taken() === 0
            ? fake.session.take
            : Effect.sleep("20 millis").pipe(Effect.andThen(Effect.fail(new PgError({ reason: "Connection", message: "connection lost" }))))
        )
      }
      const error = yield* Effect.flip(runPipeline(failing, memory.client, { kinesis: kinesisConfig(), pipeline: pipelineConfig() }))
      expect(error).toMatchObject({ _tag: "PgError", reason: "Connection" })
      expect(interrupted).toBe(true)
      expect(memory.inflight()).toBe(0)
    }))
})

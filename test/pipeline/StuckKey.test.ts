/**
 * One partition key failing for a long time while other keys flow (a hot shard throttled for
 * minutes), through the whole pipeline with the in-memory Kinesis: the frontier's bookkeeping stays
 * within the queue's bound, the reader stops reading when that bound is reached, nothing is lost or
 * reordered, and everything flows again after recovery.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric } from "effect"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import type { Lsn } from "../../src/domain/Lsn.ts"
import * as KinesisMemory from "../../src/kinesis/KinesisMemory.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import type { ReplicationSession } from "../../src/replication/ReplicationSession.ts"
import { boundary, change, decode, kinesisConfig, pipelineConfig, runPipeline } from "./fixtures.ts"

const STUCK = 0

/** A transaction on the given keys. */
const tx = (pks: ReadonlyArray<number>): Array<ChangeEvent> => {
  const commit = boundary("C")
  return [boundary("B"), ...pks.map((pk) => change(pk)), { ...commit, ackLsn: commit.lsn + 8n }]
}

/** A session serving `total` transactions, one per take (built on demand), then waiting for ever. */
const generatedSession = (total: number, keysOf: (i: number) => ReadonlyArray<number>) => {
  let taken = 0
  const produced: Array<ChangeEvent> = []
  const acks: Array<Lsn> = []
  let lastCommit: Lsn = 0n
  const session: ReplicationSession = {
    slot: "test_slot",
    startLsn: 0n,
    take: Effect.suspend(() => {
      if (taken >= total) return Effect.never
      const events = tx(keysOf(taken++))
      produced.push(...events.filter((e) => e.action !== "B" && e.action !== "C"))
      lastCommit = events[events.length - 1]!.ackLsn
      return Effect.succeed(events)
    }),
    acknowledge: (lsn) => Effect.sync(() => void acks.push(lsn)),
    flushed: Effect.sync(() => acks[acks.length - 1] ?? 0n),
    serverWalEnd: Effect.succeed(0n),
    sendStatusNow: Effect.void
  }
  return { session, produced, acks, taken: () => taken, lastCommit: () => lastCommit }
}

/** Fails every record of the stuck key with a throttling error while `stuck()` holds. */
const throttleStuckKey = (stuck: () => boolean): KinesisMemory.Behaviour => (request) =>
  Effect.succeed(
    stuck()
      ? KinesisMemory.partial(request.records.map((r) =>
        decode(r.body).pk === STUCK ? "ProvisionedThroughputExceededException" : undefined
      ))
      : KinesisMemory.accept
  )

const eventually = (condition: () => boolean, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error("condition not reached in time"))
      yield* Effect.sleep("5 millis")
    }
  })

/** Waits until `count()` has not changed for `quietMs`. */
const settled = (count: () => number, quietMs: number) =>
  Effect.gen(function*() {
    let last = -1
    let since = Date.now()
    while (Date.now() - since < quietMs) {
      if (count() !== last) {
        last = count()
        since = Date.now()
      }
      yield* Effect.sleep("10 millis")
    }
  })

/** Every produced change accepted exactly once, each key's changes in read order. */
const expectEverythingOnceInOrder = (produced: ReadonlyArray<ChangeEvent>, accepted: ReadonlyArray<KinesisMemory.AcceptedRecord>) => {
  const seqs = accepted.map((a) => decode(a.data))
  expect(seqs.map((s) => s.seq).sort((a, b) => a - b)).toEqual(
    produced.map((e) => decode(e.body).seq).sort((a, b) => a - b)
  )
  const lastSeqOfKey = new Map<unknown, number>()
  for (const { pk, seq } of seqs) {
    expect(seq).toBeGreaterThan(lastSeqOfKey.get(pk) ?? -1)
    lastSeqOfKey.set(pk, seq)
  }
}

/** Runs the pipeline in its own metric registry, sampling cdc_frontier_pending every few ms. */
const runWithSampling = (
  fake: ReturnType<typeof generatedSession>,
  memory: KinesisMemory.KinesisMemory["Service"],
  queueMaxMessages: number
) =>
  Effect.gen(function*() {
    const stop = yield* Deferred.make<void>()
    let maxPending = 0
    const run = yield* runPipeline(fake.session, memory.client, {
      kinesis: kinesisConfig({ retryBaseMs: 1, retryMaxMs: 5 }),
      pipeline: pipelineConfig({ queueMaxMessages }),
      stop: Deferred.await(stop)
    }).pipe(Effect.forkChild)
    const sampler = yield* Effect.forever(
      Metric.value(Metrics.frontierPending).pipe(
        Effect.tap((state) => Effect.sync(() => void (maxPending = Math.max(maxPending, state.value)))),
        Effect.andThen(Effect.sleep("1 millis"))
      )
    ).pipe(Effect.forkChild)
    return {
      maxPending: () => maxPending,
      stop: Effect.gen(function*() {
        yield* Deferred.succeed(stop, undefined)
        yield* Fiber.join(run)
        yield* Fiber.interrupt(sampler)
      })
    }
  })

describe("one key failing for a long time under load on other keys", () => {
  it.live("the reader stops at the bound while the stuck key's changes fill the queue, and everything flows after recovery", () =>
    Effect.gen(function*() {
      const queueMaxMessages = 40
      // every 4th transaction also writes the stuck key; 50 other keys
      const fake = generatedSession(2_000, (i) => (i % 4 === 0 ? [STUCK, 1 + (i % 50)] : [1 + (i % 50)]))
      let stuck = true
      const memory = KinesisMemory.make({ behaviour: throttleStuckKey(() => stuck) })
      const running = yield* runWithSampling(fake, memory, queueMaxMessages)

      yield* settled(fake.taken, 300)
      const takenWhileStuck = fake.taken()
      // stopped reading: about queueMaxMessages stuck changes, one per 4 transactions
      expect(takenWhileStuck).toBeLessThan(4 * queueMaxMessages + 8)
      expect(takenWhileStuck).toBeGreaterThan(2 * queueMaxMessages)
      // the other keys flowed meanwhile; the frontier stayed before the first stuck change
      expect(memory.accepted().length).toBeGreaterThan(queueMaxMessages)
      expect(memory.accepted().every((a) => decode(a.data).pk !== STUCK)).toBe(true)
      expect(fake.acks.every((lsn) => lsn < fake.produced[0]!.lsn)).toBe(true)
      // the bookkeeping never went past the queue's bound plus one read (2 changes)
      expect(running.maxPending()).toBeGreaterThan(0)
      expect(running.maxPending()).toBeLessThanOrEqual(queueMaxMessages + 2)

      stuck = false
      yield* eventually(() => fake.taken() === 2_000 && fake.acks.includes(fake.lastCommit()))
      yield* running.stop
      expectEverythingOnceInOrder(fake.produced, memory.accepted())
      expect(running.maxPending()).toBeLessThanOrEqual(queueMaxMessages + 2)
      expect(yield* Metric.value(Metrics.frontierPending)).toEqual({ value: 0 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.live("one stuck change holds back neither the reader nor other keys while 6 000 changes flow past it, and the frontier jumps after recovery", () =>
    Effect.gen(function*() {
      const queueMaxMessages = 40
      const total = 2_000
      // the stuck key is written once, first; 300 other keys keep flowing
      const fake = generatedSession(total, (i) => (i === 0 ? [STUCK] : [1 + (i % 100), 101 + (i % 100), 201 + (i % 100)]))
      let stuck = true
      const memory = KinesisMemory.make({ behaviour: throttleStuckKey(() => stuck) })
      const running = yield* runWithSampling(fake, memory, queueMaxMessages)

      // the reader is never held back: every transaction is read and every other change published
      yield* eventually(() => fake.taken() === total && memory.accepted().length === fake.produced.length - 1, 30_000)
      expect(fake.acks.every((lsn) => lsn < fake.produced[0]!.lsn)).toBe(true)
      expect(running.maxPending()).toBeLessThanOrEqual(queueMaxMessages + 3)

      stuck = false
      yield* eventually(() => fake.acks.includes(fake.lastCommit()))
      yield* running.stop
      expectEverythingOnceInOrder(fake.produced, memory.accepted())
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})

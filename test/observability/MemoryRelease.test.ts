/**
 * The idle memory release's trigger, on the TestClock: one collection per busy → idle transition
 * after heavy work (the resident set grown by the threshold), none while busy (changes published, or
 * held in the queue or the frontier), none while idle after it, none after light work.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Metric, Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryRelease from "../../src/observability/MemoryRelease.ts"
import * as Metrics from "../../src/observability/Metrics.ts"

const MiB = 1024 * 1024
const settings: MemoryRelease.Settings = { idleMs: 30_000, growthBytes: 16 * MiB }

/** A process whose reading the test sets, whose collection brings RSS down to `rssAfterRelease`. */
const fakeProcess = () => {
  const now = { rssBytes: 100 * MiB, published: 0, held: 0 }
  const released: Array<number> = []
  let rssAfterRelease = 105 * MiB
  const read = Effect.sync(() => ({ ...now }))
  const collect = Effect.sync(() => {
    released.push(now.rssBytes)
    now.rssBytes = rssAfterRelease
    return rssAfterRelease
  })
  return { now, released, read, collect, setRssAfterRelease: (bytes: number) => (rssAfterRelease = bytes) }
}

/** Runs the step every 5 s, as the probe server does, in a fiber of the test. */
const start = (p: ReturnType<typeof fakeProcess>, options: { readonly exposeGc: boolean } = { exposeGc: true }) =>
  Effect.gen(function*() {
    const step = yield* MemoryRelease.makeWith(settings, p.read, options.exposeGc ? p.collect : undefined)
    const fiber = yield* Effect.forkChild(Effect.repeat(step, Schedule.spaced("5 seconds")))
    yield* Effect.yieldNow // the first reading, before any work
    return fiber
  })

/** `seconds` of work: a change published every 5 s, RSS at `rssBytes`. */
const busyFor = (p: ReturnType<typeof fakeProcess>, seconds: number, rssBytes: number) =>
  Effect.gen(function*() {
    p.now.rssBytes = rssBytes
    for (let s = 0; s < seconds; s += 5) {
      p.now.published += 1
      yield* TestClock.adjust("5 seconds")
    }
  })

describe("MemoryRelease", () => {
  it.effect("after heavy work, one collection once idle for 30 s, and none while idle after it", () =>
    Effect.gen(function*() {
      const p = fakeProcess()
      const fiber = yield* start(p)
      yield* busyFor(p, 60, 160 * MiB)
      assert.deepStrictEqual(p.released, [])
      // idle from the first reading without a new change: released 30 s later, not sooner
      yield* TestClock.adjust("25 seconds")
      assert.deepStrictEqual(p.released, [])
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(p.released, [160 * MiB])
      // an hour idle, RSS creeping up by more than the threshold: still only the one
      p.now.rssBytes = 130 * MiB
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(p.released, [160 * MiB])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a second burst gets its own collection, measured from where the first one left RSS", () =>
    Effect.gen(function*() {
      const p = fakeProcess()
      p.setRssAfterRelease(120 * MiB)
      const fiber = yield* start(p)
      yield* busyFor(p, 30, 160 * MiB)
      yield* TestClock.adjust("40 seconds")
      assert.deepStrictEqual(p.released, [160 * MiB])
      // 10 MiB above the 120 MiB the release left: light work, no collection
      yield* busyFor(p, 30, 130 * MiB)
      yield* TestClock.adjust("60 seconds")
      assert.deepStrictEqual(p.released, [160 * MiB])
      // 20 MiB above it: heavy enough
      yield* busyFor(p, 30, 140 * MiB)
      yield* TestClock.adjust("60 seconds")
      assert.deepStrictEqual(p.released, [160 * MiB, 140 * MiB])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("changes held in the queue or by the frontier (a stuck key, nothing published) are work, not idleness", () =>
    Effect.gen(function*() {
      const p = fakeProcess()
      const fiber = yield* start(p)
      yield* busyFor(p, 10, 180 * MiB)
      p.now.held = 500
      yield* TestClock.adjust("5 minutes")
      assert.deepStrictEqual(p.released, [])
      p.now.held = 0
      yield* TestClock.adjust("40 seconds")
      assert.deepStrictEqual(p.released, [180 * MiB])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("light work (RSS grown less than the threshold) and a process without --expose-gc: no collection", () =>
    Effect.gen(function*() {
      const light = fakeProcess()
      const lightFiber = yield* start(light)
      yield* busyFor(light, 60, 115 * MiB)
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(light.released, [])
      yield* Fiber.interrupt(lightFiber)

      const noGc = fakeProcess()
      let reads = 0
      const counted = { ...noGc, read: Effect.tap(noGc.read, () => Effect.sync(() => reads++)) }
      const noGcFiber = yield* start(counted, { exposeGc: false })
      yield* busyFor(noGc, 60, 200 * MiB)
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(noGc.released, [])
      assert.strictEqual(reads, 0)
      yield* Fiber.interrupt(noGcFiber)
    }))

  it.effect("the process's reading: changes published summed over every stream's series, held = queue depth + frontier pending", () =>
    Effect.gen(function*() {
      const before = yield* MemoryRelease.readProcess
      yield* Metric.update(Metrics.changesPublished, 3)
      yield* Metric.update(Metric.withAttributes(Metrics.changesPublished, { stream: "orders" }), 4)
      yield* Metric.update(Metric.withAttributes(Metrics.changesPublished, { stream: "users" }), 5)
      yield* Metric.update(Metrics.queueDepth, 2)
      yield* Metric.update(Metrics.frontierPending, 6)
      const after = yield* MemoryRelease.readProcess
      assert.strictEqual(after.published - before.published, 12)
      assert.strictEqual(after.held, 8)
      assert.isAbove(after.rssBytes, 0)
    }))
})

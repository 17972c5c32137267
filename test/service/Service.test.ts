/**
 * The service's orchestration in process, on virtual time: restart with backoff (its cap, and its
 * reset after a healthy period of streaming), the graceful stop on interruption, a standby's stop,
 * leadership lost and regained while streaming, and leadership lost during the drain. Runs on the
 * in-memory slot and stream with the real pipeline.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import { InvalidConfig } from "../../src/config/EnvVar.ts"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import { PgError } from "../../src/Errors.ts"
import * as FatalReport from "../../src/FatalReport.ts"
import * as KinesisMemory from "../../src/kinesis/KinesisMemory.ts"
import { Leadership } from "../../src/leader/Leadership.ts"
import { LeadershipMemory } from "../../src/leader/LeadershipMemory.ts"
import { Health } from "../../src/observability/Health.ts"
import { ReplicationMemory } from "../../src/replication/ReplicationMemory.ts"
import * as Service from "../../src/Service.ts"
import { boundary, change, decode } from "../pipeline/fixtures.ts"
import { type ConfigOverrides, memoryLayers, serviceConfig } from "./fixtures.ts"

const dropped = () => new PgError({ reason: "Connection", message: "connection dropped (test)" })

const tx = (pks: ReadonlyArray<number>): ReadonlyArray<ChangeEvent> => {
  const commit = boundary("C")
  return [boundary("B"), ...pks.map((pk) => change(pk)), { ...commit, ackLsn: commit.lsn + 8n }]
}

/** Advances virtual time in small steps until `condition` holds (at most `limitMs`). */
const advanceUntil = (condition: () => boolean, limitMs = 120_000, stepMs = 10) =>
  Effect.gen(function*() {
    for (let waited = 0; !condition(); waited += stepMs) {
      if (waited > limitMs) return yield* Effect.die(new Error(`condition not reached within ${limitMs} ms of virtual time`))
      yield* TestClock.adjust(stepMs)
    }
  })

/** Lets forked fibers run without moving the clock. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

interface Rig {
  /** The hand-driven election, unless the test gave its own leadership. */
  readonly election: LeadershipMemory["Service"] | undefined
  readonly slot: ReplicationMemory["Service"]
  readonly stream: KinesisMemory.KinesisMemory["Service"]
  readonly health: Health["Service"]
  readonly fiber: Fiber.Fiber<void, unknown>
}

/** Starts `Service.run` on the in-memory layers; `prepare` scripts the slot before the service starts. */
const start = (options: {
  readonly config?: ConfigOverrides
  readonly leadership?: Leadership["Service"]
  readonly kinesis?: KinesisMemory.KinesisMemoryOptions
  readonly prepare?: (slot: ReplicationMemory["Service"]) => void
}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(memoryLayers({
      config: serviceConfig(options.config),
      ...(options.leadership === undefined ? {} : { leadership: Layer.succeed(Leadership, options.leadership) }),
      ...(options.kinesis === undefined ? {} : { kinesis: options.kinesis })
    }))
    const slot = Context.get(context, ReplicationMemory)
    options.prepare?.(slot)
    const fiber = yield* Effect.forkChild(Service.run.pipe(Effect.provide(context)))
    yield* settle
    return {
      election: Option.getOrUndefined(Context.getOption(context, LeadershipMemory)),
      slot,
      stream: Context.get(context, KinesisMemory.KinesisMemory),
      health: Context.get(context, Health),
      fiber
    } satisfies Rig
  })

/** The gaps between consecutive opens, in ms. */
const gaps = (opens: ReadonlyArray<number>) => opens.slice(1).map((at, i) => at - opens[i]!)

/** Interrupts the service as a signal would, without waiting; returns the fiber's exit once it ends. */
const signal = (rig: Rig) => Effect.forkChild(Fiber.interrupt(rig.fiber))

/** Signals, lets the fibers run without moving the clock, and checks that the service has ended. */
const stopsAtOnce = (rig: Rig) =>
  Effect.gen(function*() {
    yield* signal(rig)
    yield* settle
    expect(rig.fiber.pollUnsafe()).toBeDefined()
  })

const published = (rig: Rig) => rig.stream.accepted().map((record) => decode(record.data).pk)

describe("Service restart", () => {
  it.effect("restarts after a retriable error with a growing, jittered backoff that never exceeds its cap", () =>
    Effect.gen(function*() {
      const rig = yield* start({
        config: { reconnectBaseMs: 1_000, reconnectMaxMs: 5_000 },
        prepare: (slot) => {
          for (let i = 0; i < 8; i++) slot.failOpen(dropped())
        }
      })
      yield* advanceUntil(() => rig.slot.opens().length === 9)
      const delays = gaps(rig.slot.opens())
      expect(delays).toHaveLength(8)
      delays.forEach((delay, n) => {
        const nominal = 1_000 * 2 ** n
        expect(delay).toBeGreaterThanOrEqual(Math.min(nominal * 0.8, 5_000) - 10)
        // the cap holds with the jitter included (10 ms: the test's clock step)
        expect(delay).toBeLessThanOrEqual(Math.min(nominal * 1.2, 5_000) + 10)
      })
      expect(delays.slice(-4).every((delay) => delay <= 5_010 && delay >= 4_990)).toBe(true)
      // the ninth open succeeded: streaming
      expect(rig.slot.isOpen()).toBe(true)
      expect((yield* rig.health.snapshot).state).toBe("streaming")
      yield* Fiber.interrupt(rig.fiber)
    }))

  it.effect("a session that streamed for PG_RECONNECT_MAX_MS starts the backoff afresh; a short one does not", () =>
    Effect.gen(function*() {
      const rig = yield* start({
        config: { reconnectBaseMs: 1_000, reconnectMaxMs: 20_000 },
        prepare: (slot) => {
          slot.failOpen(dropped())
          slot.failOpen(dropped())
          slot.failOpen(dropped())
        }
      })
      // three failed opens (~1 s, ~2 s, ~4 s), then a session
      yield* advanceUntil(() => rig.slot.opens().length === 4 && rig.slot.isOpen())
      // a short session: the backoff goes on growing (~8 s)
      yield* TestClock.adjust(1_000)
      rig.slot.failSession(dropped())
      yield* advanceUntil(() => rig.slot.opens().length === 5 && rig.slot.isOpen())
      const afterShort = gaps(rig.slot.opens())[3]!
      expect(afterShort - 1_000).toBeGreaterThanOrEqual(8_000 * 0.8 - 10)
      // a healthy session (20 s, PG_RECONNECT_MAX_MS): the next delay is back at the base (~1 s)
      yield* TestClock.adjust(20_000)
      rig.slot.failSession(dropped())
      yield* advanceUntil(() => rig.slot.opens().length === 6 && rig.slot.isOpen())
      const afterHealthy = gaps(rig.slot.opens())[4]! - 20_000
      expect(afterHealthy).toBeGreaterThanOrEqual(800 - 10)
      expect(afterHealthy).toBeLessThanOrEqual(1_200 + 10)
      yield* Fiber.interrupt(rig.fiber)
    }))

  it.effect("a fatal error stops the service: it fails, health is fatal, no restart", () =>
    Effect.gen(function*() {
      const rig = yield* start({ prepare: (slot) => slot.failOpen(new PgError({ reason: "Authentication", message: "password authentication failed" })) })
      const exit = yield* Fiber.await(rig.fiber)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) expect(Option.getOrThrow(Cause.findErrorOption(exit.cause))).toMatchObject({ _tag: "PgError", reason: "Authentication" })
      expect(rig.slot.opens()).toHaveLength(1)
      expect((yield* rig.health.snapshot).state).toBe("fatal")
    }))
})

describe("Service stop", () => {
  it.effect("interrupted while streaming: in-flight PutRecords finish, the final frontier is confirmed, then it ends", () =>
    Effect.gen(function*() {
      const first = tx([1, 2])
      const second = tx([3, 4, 5])
      const rig = yield* start({
        kinesis: { behaviour: () => Effect.sleep("2 seconds").pipe(Effect.as(KinesisMemory.accept)) },
        prepare: (slot) => slot.append(first)
      })
      yield* advanceUntil(() => rig.slot.confirmed() === first[first.length - 1]!.ackLsn)
      rig.slot.append(second)
      yield* advanceUntil(() => rig.stream.inflight() > 0)
      const stopping = yield* signal(rig)
      yield* advanceUntil(() => rig.fiber.pollUnsafe() !== undefined, 5_000)
      yield* Fiber.join(stopping)
      const exit = rig.fiber.pollUnsafe()!
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
      expect(published(rig)).toEqual([1, 2, 3, 4, 5])
      expect(rig.slot.confirmed()).toBe(second[second.length - 1]!.ackLsn)
      expect(rig.slot.statusSent()).toBe(1)
      expect(rig.slot.isOpen()).toBe(false)
    }))

  it.effect("a stuck drain ends at SHUTDOWN_TIMEOUT_MS with what was confirmed", () =>
    Effect.gen(function*() {
      const first = tx([1])
      let calls = 0
      const rig = yield* start({
        config: { shutdownTimeoutMs: 3_000 },
        kinesis: { behaviour: () => (calls++ === 0 ? Effect.succeed(KinesisMemory.accept) : Effect.never) },
        prepare: (slot) => slot.append(first)
      })
      yield* advanceUntil(() => rig.slot.confirmed() === first[first.length - 1]!.ackLsn)
      rig.slot.append(tx([2]))
      yield* advanceUntil(() => rig.stream.inflight() > 0)
      const stopping = yield* signal(rig)
      yield* TestClock.adjust(2_900)
      expect(rig.fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(200)
      yield* settle
      yield* Fiber.join(stopping)
      expect(rig.fiber.pollUnsafe()).toBeDefined()
      expect(rig.slot.confirmed()).toBe(first[first.length - 1]!.ackLsn)
    }))

  it.effect("a standby stops at once", () =>
    Effect.gen(function*() {
      const standby = Leadership.of({ isLeader: Effect.succeed(false), runWhileLeader: () => Effect.never })
      const rig = yield* start({ leadership: standby })
      yield* stopsAtOnce(rig)
      expect(rig.slot.opens()).toHaveLength(0)
    }))

  it.effect("interrupted while waiting to restart: stops at once, without waiting out the backoff", () =>
    Effect.gen(function*() {
      const rig = yield* start({
        config: { reconnectBaseMs: 10_000, reconnectMaxMs: 10_000 },
        prepare: (slot) => slot.failOpen(dropped())
      })
      expect(rig.slot.opens()).toHaveLength(1)
      yield* stopsAtOnce(rig)
      expect(rig.slot.opens()).toHaveLength(1)
    }))
})

/** A leader signalled while Kinesis never answers: a second into its drain, still stopping. */
const drainingForever = Effect.gen(function*() {
  const rig = yield* start({
    kinesis: { behaviour: () => Effect.never },
    prepare: (slot) => slot.append(tx([1]))
  })
  yield* advanceUntil(() => rig.stream.inflight() > 0)
  yield* signal(rig)
  yield* TestClock.adjust(1_000)
  expect(rig.fiber.pollUnsafe()).toBeUndefined()
  return rig
})

describe("Service stop, bounded", () => {
  it.effect("leadership lost during the drain: the stop ends at once, without campaigning again", () =>
    Effect.gen(function*() {
      const rig = yield* drainingForever
      yield* rig.election!.revoke("lost during the drain", { regain: false })
      yield* TestClock.adjust(200)
      yield* settle
      expect(rig.fiber.pollUnsafe()).toBeDefined()
      expect(yield* rig.election!.rounds).toBe(1)
      // nothing was acknowledged past what Kinesis accepted (nothing)
      expect(rig.slot.confirmed()).toBe(0n)
    }))

  it.effect("leadership lost and regained at once during the drain: the new round does not stream again, the stop ends", () =>
    Effect.gen(function*() {
      const rig = yield* drainingForever
      yield* rig.election!.revoke("lost and won again during the drain")
      yield* settle
      expect(rig.fiber.pollUnsafe()).toBeDefined()
      expect(yield* rig.election!.rounds).toBe(2)
      expect(rig.slot.opens()).toHaveLength(1)
    }))

  it.effect("whatever hangs after the drain (here: releasing the lock), the stop ends at SHUTDOWN_TIMEOUT_MS plus the grace period", () =>
    Effect.gen(function*() {
      const stuckRelease = Leadership.of({
        isLeader: Effect.succeed(true),
        runWhileLeader: (work) => work.pipe(Effect.ensuring(Effect.never))
      })
      const rig = yield* start({
        config: { shutdownTimeoutMs: 3_000 },
        leadership: stuckRelease,
        prepare: (slot) => slot.append(tx([1]))
      })
      yield* advanceUntil(() => rig.stream.accepted().length === 1)
      yield* signal(rig)
      yield* settle
      // the drain itself is over at once (nothing in flight): only the release hangs
      expect(rig.slot.statusSent()).toBe(1)
      yield* TestClock.adjust(3_000 + Service.SHUTDOWN_GRACE_MS - 100)
      expect(rig.fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(200)
      yield* settle
      expect(rig.fiber.pollUnsafe()).toBeDefined()
    }))
})

describe("Service exit codes (FatalReport.teardown)", () => {
  const exitCodeOf = (exit: Exit.Exit<unknown, unknown>) => {
    let code: number | undefined
    FatalReport.teardown(exit, (c) => void (code = c))
    return code
  }

  it.effect("a graceful stop exits 0; a fatal error during the drain exits 1; a fatal error while streaming exits 1", () =>
    Effect.gen(function*() {
      const graceful = yield* start({ prepare: (slot) => slot.append(tx([1])) })
      yield* advanceUntil(() => graceful.stream.accepted().length === 1)
      yield* signal(graceful)
      yield* advanceUntil(() => graceful.fiber.pollUnsafe() !== undefined, 1_000)
      expect(exitCodeOf(graceful.fiber.pollUnsafe()!)).toBe(0)

      const gate = yield* Deferred.make<void>()
      const failing = yield* start({
        kinesis: { behaviour: () => Deferred.await(gate).pipe(Effect.as(KinesisMemory.fail("AccessDeniedException"))) },
        prepare: (slot) => slot.append(tx([1]))
      })
      yield* advanceUntil(() => failing.stream.inflight() > 0)
      yield* signal(failing)
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      yield* advanceUntil(() => failing.fiber.pollUnsafe() !== undefined, 1_000)
      const exit = failing.fiber.pollUnsafe()!
      expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause)).toBe(true)
      expect(exitCodeOf(exit)).toBe(1)

      const fatal = yield* start({ prepare: (slot) => slot.failOpen(new PgError({ reason: "Authentication", message: "password authentication failed" })) })
      expect(exitCodeOf(yield* Fiber.await(fatal.fiber))).toBe(1)
    }))

  it("an unusable configuration exits 2", () => {
    const invalid = new InvalidConfig({ problems: [{ variable: "PGHOST", reason: "is required but not set" }] })
    expect(exitCodeOf(Exit.fail(invalid))).toBe(2)
  })
})

describe("Service leadership", () => {
  it.effect("leadership lost while streaming closes the session; regained, it streams again from the confirmed position", () =>
    Effect.gen(function*() {
      const first = tx([1, 2])
      const rig = yield* start({
        prepare: (slot) => slot.append(first)
      })
      yield* advanceUntil(() => rig.slot.confirmed() === first[first.length - 1]!.ackLsn)
      yield* rig.election!.revoke("lock lost (test)", { regain: false })
      yield* settle
      expect(rig.slot.isOpen()).toBe(false)
      expect((yield* rig.health.snapshot).state).toBe("standby")
      const second = tx([3])
      rig.slot.append(second)
      yield* TestClock.adjust(5_000)
      expect(published(rig)).toEqual([1, 2])
      yield* rig.election!.grant
      yield* advanceUntil(() => rig.slot.confirmed() === second[second.length - 1]!.ackLsn)
      expect(published(rig)).toEqual([1, 2, 3])
      expect(rig.slot.opens()).toHaveLength(2)
      expect(yield* rig.election!.rounds).toBe(2)
      yield* Fiber.interrupt(rig.fiber)
    }))
})

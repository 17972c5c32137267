import { it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect } from "vitest"
import type { PgConfig } from "../../src/config/ServiceConfig.ts"
import * as ServiceConfig from "../../src/config/ServiceConfig.ts"
import * as LockKey from "../../src/leader/LockKey.ts"
import * as Leadership from "../../src/leader/Leadership.ts"
import * as LeadershipMemory from "../../src/leader/LeadershipMemory.ts"
import * as Health from "../../src/observability/Health.ts"
import { type PgCluster, pgConfigOf, startPostgres } from "../../support/PostgresHarness.ts"

let cluster: PgCluster
beforeAll(async () => {
  cluster = await startPostgres()
})
afterAll(async () => {
  await cluster?.stop()
})

const pgConfig = (overrides: Partial<PgConfig> = {}): PgConfig =>
  pgConfigOf(cluster, { connectTimeoutMs: 5_000, applicationName: "leader-test", ...overrides })

const POLL_MS = 200
const WATCHDOG_MS = 200

/** Builds one instance: its own Health and Leadership, as a separate process would have. */
const instance = (lockKey: bigint, overrides: Partial<PgConfig> = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Leadership.layer({ pg: pgConfig(overrides), lockKey, pollIntervalMs: POLL_MS, watchdogIntervalMs: WATCHDOG_MS })
        .pipe(Layer.provideMerge(Health.layer()))
    )
    return { leadership: Context.get(context, Leadership.Leadership), health: Context.get(context, Health.Health) }
  })

/** Polls until `condition` holds, failing after `timeoutMs`; returns the elapsed time. */
const waitFor = (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) =>
  Effect.promise(async () => {
    const start = Date.now()
    while (!(await condition())) {
      if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return Date.now() - start
  })

const holderPid = async (key: bigint): Promise<number | undefined> => {
  const tag = LockKey.toLockTag(key)
  const out = await cluster.psql(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = ${tag.classid} AND objid = ${tag.objid} AND objsubid = 1`
  )
  return out === "" ? undefined : Number(out)
}

/** Work that records when it runs and when it is interrupted. */
const trackedWork = () => {
  const state = { running: false, starts: 0, interruptedAt: 0 }
  const work = Effect.sync(() => {
    state.running = true
    state.starts += 1
  }).pipe(
    Effect.andThen(Effect.never),
    Effect.onInterrupt(() =>
      Effect.sync(() => {
        state.running = false
        state.interruptedAt = Date.now()
      })
    )
  )
  return { state, work }
}

describe("lock key", () => {
  it("is derived deterministically from the database and slot, and LEADER_LOCK_KEY overrides it", () => {
    const a = LockKey.derive("orders", "etl_slot")
    expect(LockKey.derive("orders", "etl_slot")).toBe(a)
    expect(LockKey.derive("orders", "other_slot")).not.toBe(a)
    expect(LockKey.derive("billing", "etl_slot")).not.toBe(a)
    expect(a >= -(2n ** 63n) && a < 2n ** 63n).toBe(true)
    expect(LockKey.resolve({ override: undefined, database: "orders", slot: "etl_slot" })).toBe(a)
    expect(LockKey.resolve({ override: 42n, database: "orders", slot: "etl_slot" })).toBe(42n)
  })

  it("splits into pg_locks' classid (high 32 bits) and objid (low 32 bits)", () => {
    expect(LockKey.toLockTag(0x0000000100000002n)).toEqual({ classid: 1, objid: 2, objsubid: 1 })
    expect(LockKey.toLockTag(-1n)).toEqual({ classid: 0xffffffff, objid: 0xffffffff, objsubid: 1 })
  })

  it.live("matches what PostgreSQL shows in pg_locks for the same key", () =>
    Effect.promise(async () => {
      const key = LockKey.derive("postgres", "etl_slot_wal2json")
      const tag = LockKey.toLockTag(key)
      const rows = await cluster.psql(
        `SELECT pg_advisory_lock(${key}); SELECT classid || ',' || objid || ',' || objsubid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`
      )
      expect(rows.split("\n").pop()).toBe(`${tag.classid},${tag.objid},1`)
    }))
})

describe("Leadership (advisory lock)", () => {
  it.live("elects exactly one; a killed lock session interrupts the leader, the standby takes over; closing releases", () =>
    Effect.gen(function*() {
      const key = 7_000_001n
      const a = yield* instance(key, { applicationName: "leader-a" })
      const b = yield* instance(key, { applicationName: "leader-b" })
      const workA = trackedWork()
      const workB = trackedWork()
      const fiberA = yield* Effect.forkChild(a.leadership.runWhileLeader(workA.work))
      yield* waitFor("A to lead", () => workA.state.running)
      const fiberB = yield* Effect.forkChild(b.leadership.runWhileLeader(workB.work))
      yield* waitFor("B to stand by", async () => (yield_(b.health)).state === "standby")

      // exactly one leads, and it is the one whose session holds the lock
      yield* Effect.sleep(POLL_MS * 3)
      expect(workA.state.running).toBe(true)
      expect(workB.state.running).toBe(false)
      expect(yield* a.leadership.isLeader).toBe(true)
      expect(yield* b.leadership.isLeader).toBe(false)
      const pidA = yield* Effect.promise(() => holderPid(key))
      expect(pidA).toBeDefined()
      expect(yield* Effect.promise(() => cluster.psql(`SELECT application_name FROM pg_stat_activity WHERE pid = ${pidA}`)))
        .toBe("leader-a/leader")
      expect(yield_(b.health).ready).toBe(true)

      // kill A's lock session: A's work stops within a watchdog interval (+ margin), B takes over
      const killedAt = Date.now()
      yield* Effect.promise(() => cluster.psql(`SELECT pg_terminate_backend(${pidA})`))
      yield* waitFor("A's work to be interrupted", () => !workA.state.running, WATCHDOG_MS * 2 + 1_000)
      expect(workA.state.interruptedAt - killedAt).toBeLessThan(WATCHDOG_MS * 2 + 1_000)
      yield* waitFor("B to lead", () => workB.state.running, POLL_MS + 1_000)
      expect(yield* b.leadership.isLeader).toBe(true)
      expect(yield* a.leadership.isLeader).toBe(false)
      const pidB = yield* Effect.promise(() => holderPid(key))
      expect(pidB).toBeDefined()
      expect(pidB).not.toBe(pidA)

      // A did not exit: it campaigns again and stands by
      expect(fiberA.pollUnsafe()).toBeUndefined()
      yield* waitFor("A to stand by again", () => yield_(a.health).state === "standby")
      expect(workA.state.running).toBe(false)

      // closing B's scope (its fiber) releases the lock; A acquires
      yield* Fiber.interrupt(fiberB)
      yield* waitFor("A to lead again", () => workA.state.running, POLL_MS + 2_000)
      expect(workA.state.starts).toBe(2)
      expect(yield* Effect.promise(() => holderPid(key))).not.toBe(pidB)
      yield* Fiber.interrupt(fiberA)
      yield* waitFor("the lock to be released", async () => (await holderPid(key)) === undefined, 5_000)
    }), 60_000)

  it.live("returns the work's value and releases the lock; propagates the work's failure", () =>
    Effect.gen(function*() {
      const key = 7_000_002n
      const a = yield* instance(key)
      expect(yield* a.leadership.runWhileLeader(Effect.succeed("done"))).toBe("done")
      yield* waitFor("the lock to be released", async () => (await holderPid(key)) === undefined, 5_000)
      const failure = yield* Effect.flip(a.leadership.runWhileLeader(Effect.fail("boom" as const)))
      expect(failure).toBe("boom")
    }))

  it.live("a wrong password is fatal, not retried for ever", () =>
    Effect.gen(function*() {
      const a = yield* instance(7_000_003n, { password: Redacted.make("wrong-password") })
      const error = yield* Effect.flip(a.leadership.runWhileLeader(Effect.never))
      expect(error).toMatchObject({ _tag: "PgError", reason: "Authentication" })
      expect(String(error.message)).not.toContain("wrong-password")
    }))

  it.live("a retriable connection failure is retried until the database is reachable", () =>
    Effect.gen(function*() {
      // nothing listens on port 1: connection refused, retried every poll interval
      const a = yield* instance(7_000_004n, { port: 1 })
      const fiber = yield* Effect.forkChild(a.leadership.runWhileLeader(Effect.succeed(1)))
      yield* waitFor("the failure to be recorded", () => yield_(a.health).lastError?.tag === "PgError")
      yield* Effect.sleep(POLL_MS * 2)
      expect(fiber.pollUnsafe()).toBeUndefined()
      expect(yield_(a.health).state).toBe("connecting")
      yield* Fiber.interrupt(fiber)
    }))

  it.live("sslmode=prefer falls back to plaintext when the server has no TLS", () =>
    Effect.gen(function*() {
      const a = yield* instance(7_000_005n, { sslMode: "prefer" })
      expect(yield* a.leadership.runWhileLeader(Effect.succeed("ok"))).toBe("ok")
    }))

  it.live("sslmode=require fails clearly (fatal) when the server has no TLS", () =>
    Effect.gen(function*() {
      const a = yield* instance(7_000_006n, { sslMode: "require" })
      const error = yield* Effect.flip(a.leadership.runWhileLeader(Effect.succeed("never")))
      expect(error).toMatchObject({ _tag: "PgError", reason: "Tls" })
    }))

  it.live("LEADER_ELECTION=false runs the work directly", () =>
    Effect.gen(function*() {
      const config = {
        leader: { enabled: false, lockKey: undefined, pollIntervalMs: 10, watchdogIntervalMs: 10 },
        pg: pgConfig({ port: 1 })
      }
      const leadership = yield* Effect.service(Leadership.Leadership).pipe(
        Effect.provide(Leadership.layerConfig.pipe(
          Layer.provide(Health.layer()),
          Layer.provide(ServiceConfig.layer(config as unknown as ServiceConfig.ServiceConfig["Service"]))
        ))
      )
      expect(yield* leadership.runWhileLeader(Effect.succeed(5))).toBe(5)
    }))
})

/** Reads a Health snapshot synchronously (tests only). */
function yield_(health: Health.Health["Service"]) {
  return Effect.runSync(health.snapshot)
}

describe("LeadershipMemory (for other modules' tests)", () => {
  it.live("leads at once; revoke interrupts the work and starts it again", () =>
    Effect.gen(function*() {
      const scripted = yield* LeadershipMemory.make.pipe(Effect.provide(Health.layer()))
      const tracked = trackedWork()
      const fiber = yield* Effect.forkChild(scripted.leadership.runWhileLeader(tracked.work))
      yield* waitFor("work to start", () => tracked.state.running)
      expect(yield* scripted.leadership.isLeader).toBe(true)
      yield* scripted.revoke("test")
      yield* waitFor("work to restart", () => tracked.state.starts === 2 && tracked.state.running)
      expect(tracked.state.interruptedAt).toBeGreaterThan(0)
      expect(yield* scripted.rounds).toBe(2)
      yield* Fiber.interrupt(fiber)
      expect(yield* scripted.leadership.isLeader).toBe(false)
    }))
})

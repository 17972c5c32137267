/**
 * Leader election: at most one instance streams a slot. The leader holds a session-level
 * PostgreSQL advisory lock on a session of its own (not a pooled one), so the lock lives exactly as
 * long as that session: closing it, the backend dying or the network dropping it all release the
 * lock. Standbys retry `pg_try_advisory_lock` every LEADER_POLL_INTERVAL_MS.
 *
 * While leading, a watchdog checks every LEADER_WATCHDOG_INTERVAL_MS that the session answers and
 * that pg_locks still shows the lock as ours; on a miss the leader's work is interrupted at once,
 * the session is closed, and the instance waits one poll interval (giving a standby the first
 * chance) and campaigns again. The process never exits for a lost leadership.
 *
 * `LeadershipMemory` implements the same service by hand, for tests.
 */
import type * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { ServiceConfig } from "../config/ServiceConfig.ts"
import { LeadershipLost, type PgError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import { Health } from "../observability/Health.ts"
import * as Metrics from "../observability/Metrics.ts"
import * as LockKey from "./LockKey.ts"
import * as PgSession from "../postgres/PgSession.ts"

export interface LeadershipOptions {
  readonly pg: PgConfig
  readonly lockKey: bigint
  readonly pollIntervalMs: number
  readonly watchdogIntervalMs: number
}

export class Leadership extends Context.Service<Leadership, {
  /**
   * Runs `work` whenever this instance leads: campaigns until the lock is ours, runs `work` under
   * the watchdog, and on a lost lock interrupts `work` and campaigns again. Returns what `work`
   * returns (the lock is then released); fails with what `work` fails with, or with a fatal
   * session error (authentication, TLS, a missing database).
   */
  readonly runWhileLeader: <A, E, R>(work: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PgError, R>
  /** Whether this instance holds the lock right now. */
  readonly isLeader: Effect.Effect<boolean>
}>()("cdc-logical-replication/Leadership") {}

/** Election through the advisory lock, with explicit options. */
export const layer = (options: LeadershipOptions): Layer.Layer<Leadership, never, Health> =>
  Layer.effect(Leadership, make(options))

/** From the {@link ServiceConfig}: the advisory lock, or always leader when LEADER_ELECTION=false. */
export const layerConfig: Layer.Layer<Leadership, never, ServiceConfig | Health> = Layer.effect(
  Leadership,
  Effect.gen(function*() {
    const config = yield* ServiceConfig
    if (!config.leader.enabled) return yield* makeAlwaysLeader
    return yield* make({
      pg: config.pg,
      lockKey: LockKey.resolve({ override: config.leader.lockKey, database: config.pg.database, slot: config.replication.slot }),
      pollIntervalMs: config.leader.pollIntervalMs,
      watchdogIntervalMs: config.leader.watchdogIntervalMs
    })
  })
)

/** The `cdc_leader` gauge. */
export const setLeaderGauge = (leading: boolean) => Metric.update(Metrics.leader, leading ? 1 : 0)

/** No election (LEADER_ELECTION=false): the instance leads for as long as the work runs. */
const makeAlwaysLeader: Effect.Effect<Leadership["Service"], never, Health> = Effect.gen(function*() {
  const health = yield* Health
  let leading = false
  return Leadership.of({
    isLeader: Effect.sync(() => leading),
    runWhileLeader: Effect.fn("Leadership.runWhileLeader")(
      function*<A, E, R>(work: Effect.Effect<A, E, R>) {
        leading = true
        yield* setLeaderGauge(true)
        yield* health.setState("connecting")
        return yield* work
      },
      Effect.ensuring(Effect.suspend(() => {
        leading = false
        return setLeaderGauge(false)
      }))
    )
  })
})

/** How one round of leading ended, when it did not end with `work`'s own failure. */
type Round<A> =
  | { readonly _tag: "Done"; readonly value: A }
  | { readonly _tag: "Lost"; readonly error: LeadershipLost }
  | { readonly _tag: "SessionFailed"; readonly error: PgError }

const lost = (reason: string): Round<never> => ({ _tag: "Lost", error: new LeadershipLost({ message: reason }) })

const LOCK_SQL = "SELECT pg_try_advisory_lock($1::bigint) AS locked"
const HELD_SQL = "SELECT count(*)::int AS held FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() " +
  "AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1"

/** The advisory-lock election. */
export const make = (options: LeadershipOptions): Effect.Effect<Leadership["Service"], never, Health> =>
  Effect.gen(function*() {
    const health = yield* Health
    const keyText = options.lockKey.toString()
    const tag = LockKey.toLockTag(options.lockKey)
    const lockFields = { lockKey: keyText }
    let leading = false

    const setLeading = (on: boolean) =>
      Effect.suspend(() => {
        leading = on
        return setLeaderGauge(on)
      })

    const tryLock = (conn: PgConnection.PgConnection): Effect.Effect<boolean, PgError> =>
      conn.query(LOCK_SQL, [keyText], false).pipe(
        Effect.map((result) => result.rows[0]?.locked === true),
        Effect.mapError(ErrorPolicy.fromSqlError)
      )

    /** Polls on one session until the lock is ours. */
    const campaign = (conn: PgConnection.PgConnection): Effect.Effect<void, PgError> =>
      Effect.gen(function*() {
        while (!(yield* tryLock(conn))) yield* Effect.sleep(options.pollIntervalMs)
      })

    /** One check: the session answers in time and pg_locks still shows the lock as ours. */
    const checkHeld = (conn: PgConnection.PgConnection, sessionScope: Scope.Scope): Effect.Effect<Round<never> | undefined> =>
      // the query runs in the session's scope so that a hung socket cannot hold up the verdict
      Effect.forkIn(conn.query(HELD_SQL, [String(tag.classid), String(tag.objid)], false), sessionScope).pipe(
        Effect.flatMap((fiber) =>
          Fiber.join(fiber).pipe(
            Effect.map((result): Round<never> | undefined =>
              Number(result.rows[0]?.held ?? 0) > 0 ? undefined : lost("the advisory lock is no longer held by this session")),
            Effect.catch((error) =>
              Effect.succeed(lost(`the lock session failed: ${ErrorPolicy.fromSqlError(error).message}`))),
            Effect.timeoutOrElse({
              duration: options.watchdogIntervalMs,
              orElse: () => Effect.succeed(lost(`the lock session did not answer within ${options.watchdogIntervalMs} ms`))
            })
          )
        )
      )

    /** Completes (with Lost) only when the lock or its session is gone. */
    const watchdog = (conn: PgConnection.PgConnection, sessionScope: Scope.Scope): Effect.Effect<Round<never>> =>
      Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(options.watchdogIntervalMs)
          const verdict = yield* checkHeld(conn, sessionScope)
          if (verdict !== undefined) return verdict
        }
      })

    /** Connects and polls until the lock is ours; the session lives in the caller's scope. */
    const acquire: Effect.Effect<PgConnection.PgConnection, PgError, Scope.Scope> = Effect.gen(function*() {
      const conn = yield* PgSession.connect(options.pg, {
        applicationName: `${options.pg.applicationName}/leader`,
        keepAliveMs: options.watchdogIntervalMs
      })
      yield* health.setState("standby")
      yield* Effect.logInfo("leader_campaign").pipe(Effect.annotateLogs({ ...lockFields, pid: conn.processId }))
      yield* campaign(conn)
      return conn
    })

    /** Connect, campaign, lead until the work ends or the lock is lost; the session closes on the way out. */
    const leadOnce = <A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<Round<A>, E, R> =>
      Effect.scoped(Effect.gen(function*() {
        const sessionScope = yield* Effect.scope
        const session = yield* Effect.result(acquire)
        if (Result.isFailure(session)) return { _tag: "SessionFailed", error: session.failure } satisfies Round<A>
        const conn = session.success
        yield* setLeading(true)
        yield* health.setState("connecting")
        yield* Effect.logInfo("leader_elected").pipe(Effect.annotateLogs({ ...lockFields, pid: conn.processId }))
        return yield* Effect.raceFirst(
          Effect.map(work, (value): Round<A> => ({ _tag: "Done", value })),
          watchdog(conn, sessionScope)
        )
      })).pipe(Effect.ensuring(setLeading(false)))

    const runWhileLeader = Effect.fn("Leadership.runWhileLeader")(function*<A, E, R>(work: Effect.Effect<A, E, R>) {
      while (true) {
        yield* health.setState("connecting")
        const round = yield* leadOnce(work)
        switch (round._tag) {
          case "Done":
            return round.value
          case "Lost":
            yield* Effect.logWarning("leadership_lost").pipe(Effect.annotateLogs({ ...lockFields, reason: round.error.message }))
            yield* health.recordError({ tag: round.error._tag, message: round.error.message })
            yield* health.setState("standby")
            break
          case "SessionFailed":
            if (!round.error.retriable) return yield* round.error
            yield* Effect.logWarning("leader_session_failed").pipe(
              Effect.annotateLogs({ ...lockFields, error: round.error._tag, reason: round.error.message })
            )
            yield* health.recordError({ tag: round.error._tag, message: round.error.message })
            break
        }
        yield* Effect.sleep(options.pollIntervalMs)
      }
    })

    return Leadership.of({ isLeader: Effect.sync(() => leading), runWhileLeader })
  })

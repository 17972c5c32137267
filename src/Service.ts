/**
 * The streaming service: under leadership, open a replication session and run the pipeline on it;
 * on a retriable error (connection lost, slot busy, server restart) start again from the
 * acknowledged position after the service's {@link Backoff} (PG_RECONNECT_BASE_MS to
 * PG_RECONNECT_MAX_MS, started afresh once a session has streamed for PG_RECONNECT_MAX_MS); on a
 * fatal error stop with one `fatal_error` log line.
 *
 * Everything it uses comes from the context: the configuration, health, leadership, the
 * replication source, the pipeline and, when present, backfills. `layer` runs the service for as long as the layer is built
 * (main.ts launches it). Interrupting it (SIGTERM/SIGINT through the runtime) stops it gracefully:
 * a standby, or a leader between sessions, stops at once; a streaming leader stops reading, lets
 * in-flight PutRecords finish (bounded by SHUTDOWN_TIMEOUT_MS), confirms the final frontier and
 * releases the lock. Whatever happens meanwhile (leadership lost, a connection dropped), the stop
 * ends within SHUTDOWN_TIMEOUT_MS plus {@link SHUTDOWN_GRACE_MS}.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { Backfill } from "./backfill/Backfill.ts"
import * as Backoff from "./Backoff.ts"
import { ServiceConfig } from "./config/ServiceConfig.ts"
import type { ServiceError } from "./Errors.ts"
import { reportFatal } from "./FatalReport.ts"
import { KinesisClient } from "./kinesis/KinesisClient.ts"
import { Leadership } from "./leader/Leadership.ts"
import { Health } from "./observability/Health.ts"
import * as Metrics from "./observability/Metrics.ts"
import { Pipeline } from "./pipeline/Pipeline.ts"
import * as StreamRoutes from "./kinesis/StreamRoutes.ts"
import { ReplicationSource } from "./replication/ReplicationSource.ts"

/** Time allowed beyond SHUTDOWN_TIMEOUT_MS for the last acknowledgement, closing sessions and releasing the lock. */
export const SHUTDOWN_GRACE_MS = 5_000

/** How often a stopping instance checks whether it still leads (it stops at once when it does not). */
const LEADING_CHECK_MS = 100

/** Everything the service takes from the context. */
export type Requirements = ServiceConfig | Health | Leadership | KinesisClient | ReplicationSource | Pipeline

/** The service failed while it stopped (already reported): the process must not exit 0. */
export class FailedWhileStopping extends Data.TaggedError("FailedWhileStopping")<{ readonly message: string }> {}

/**
 * Streams until `stopped` completes (then drains gracefully and returns) or a fatal error.
 * Retriable errors restart the session after the backoff.
 */
const stream = (stopped: Effect.Effect<void>, isStopping: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const config = yield* ServiceConfig
    const health = yield* Health
    const kinesis = yield* KinesisClient
    const source = yield* ReplicationSource
    const pipeline = yield* Pipeline
    const restartBackoff = Backoff.schedule({
      baseMs: config.replication.reconnectBaseMs,
      maxMs: config.replication.reconnectMaxMs
    })
    // true while the pipeline runs: a stop then drains it gracefully
    let pipelineRunning = false
    // when the current session started streaming, for the backoff's reset
    let streamingSinceMs: number | undefined

    const once = Effect.scoped(Effect.gen(function*() {
      streamingSinceMs = undefined
      yield* health.setState("connecting")
      // every stream is checked (its record limit read) before the service calls itself ready
      const destinations = yield* StreamRoutes.resolve(config.kinesis, kinesis)
      const maxRecordBytes = destinations.maxRecordBytes
      // backfills, when the service has them: a splicer in the reader, a worker beside the pipeline
      const backfill = yield* Effect.serviceOption(Backfill)
      const backfillSession = Option.isSome(backfill) ? yield* backfill.value.session : undefined
      // a change over the record limit is dropped as it arrives, never held whole
      const session = yield* source.open({ maxMessageBytes: maxRecordBytes, intercept: backfillSession?.intercept })
      yield* health.setState("streaming")
      streamingSinceMs = yield* Clock.currentTimeMillis
      yield* Effect.logInfo("streaming").pipe(Effect.annotateLogs({
        slot: session.slot,
        plugin: config.replication.plugin,
        recordFormat: config.format.recordFormat,
        streams: destinations.all.map((destination) => destination.stream.name).join(",")
      }))
      // ticks every STATUS_TICK_MS; declared slower so a GC pause or a busy event loop is not "wedged"
      const heartbeat = yield* health.heartbeat("pipeline", 5_000)
      pipelineRunning = true
      const beside = backfillSession?.worker({ slotCreated: session.slotCreated === true })
      yield* pipeline.run(session, { maxRecordBytes, destinations, stop: stopped, onTick: heartbeat.tick, beside }).pipe(
        Effect.ensuring(Effect.sync(() => {
          pipelineRunning = false
        }))
      )
    }))

    const restarting: Effect.Effect<void, ServiceError> = Effect.gen(function*() {
      let backoff = yield* Schedule.toStep(restartBackoff)
      while (true) {
        // a round that starts while stopping (leadership regained during the drain) has nothing to do
        if (yield* isStopping) return
        const exit = yield* Effect.exit(once)
        if (Exit.isSuccess(exit)) return
        const failure = Cause.findErrorOption(exit.cause)
        if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause)
        const error = failure.value
        if (yield* isStopping) {
          // a retriable error while stopping (e.g. the connection dropped during the drain) loses
          // nothing: the slot keeps the last confirmed position, so the stop is still a clean one
          if (!error.retriable) return yield* Effect.fail(error)
          return yield* Effect.logWarning("stopped_while_failing").pipe(
            Effect.annotateLogs({ error: error._tag, ...("reason" in error ? { kind: error.reason } : {}), reason: error.message })
          )
        }
        if (!error.retriable) return yield* Effect.fail(error)
        const now = yield* Clock.currentTimeMillis
        if (streamingSinceMs !== undefined && now - streamingSinceMs >= config.replication.reconnectMaxMs) {
          // the session streamed for a healthy while: this failure starts a fresh backoff
          backoff = yield* Schedule.toStep(restartBackoff)
        }
        yield* health.setState("connecting")
        yield* health.recordError({ tag: error._tag, message: error.message })
        yield* Metric.update(Metrics.reconnects, 1)
        // the backoff never ends by itself (were it to, the longest delay)
        const delay = yield* backoff(now, error).pipe(
          Effect.map(([, duration]) => duration),
          Effect.orElseSucceed(() => Duration.millis(config.replication.reconnectMaxMs))
        )
        yield* Effect.logWarning("pipeline_restart").pipe(Effect.annotateLogs({
          error: error._tag,
          ...("reason" in error ? { kind: error.reason } : {}),
          reason: error.message,
          delayMs: Duration.toMillis(delay)
        }))
        yield* Effect.sleep(delay)
      }
    })
    // a stop while no pipeline runs (connecting, or waiting to restart) has nothing to drain: stop
    // at once instead of waiting out the backoff and failing the next attempt
    const idleStop = stopped.pipe(Effect.flatMap(() => pipelineRunning ? Effect.never : Effect.void))
    yield* Effect.raceFirst(restarting, idleStop)
  })

/** Runs under leadership until `stop` completes and the stop is done, or a fatal error. */
const serve = (stop: Deferred.Deferred<void>): Effect.Effect<void, ServiceError, Requirements> =>
  Effect.gen(function*() {
    const leadership = yield* Leadership
    const health = yield* Health
    const stopped = Deferred.await(stop)
    const leading = leadership.runWhileLeader(stream(stopped, Deferred.isDone(stop)))
    // once stopping, an instance that does not lead (a standby, or a leader that lost the lock
    // during the drain) has nothing to drain and must not campaign again: it stops at once
    const notLeading: Effect.Effect<void> = Effect.flatMap(
      leadership.isLeader,
      (leader) => leader ? Effect.sleep(Duration.millis(LEADING_CHECK_MS)).pipe(Effect.andThen(notLeading)) : Effect.void
    )
    yield* Effect.raceFirst(leading, stopped.pipe(Effect.andThen(notLeading))).pipe(
      // a fatal error also makes the state "fatal" (terminal): /readyz and /healthz answer 503
      Effect.tapError((error) => health.recordError({ tag: error._tag, message: error.message }, { fatal: true })),
      Effect.tapCause(reportFatal)
    )
  })

/** Asks `serving` to stop and waits for it, at most SHUTDOWN_TIMEOUT_MS plus the grace period. */
const stopGracefully = (
  stop: Deferred.Deferred<void>,
  serving: Fiber.Fiber<void, ServiceError>,
  timeoutMs: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* Effect.logInfo("shutdown_requested")
    yield* Deferred.succeed(stop, undefined)
    const exit = yield* Fiber.await(serving).pipe(Effect.timeoutOption(Duration.millis(timeoutMs + SHUTDOWN_GRACE_MS)))
    if (Option.isNone(exit)) {
      yield* Effect.logWarning("shutdown_timeout").pipe(Effect.annotateLogs({
        timeoutMs: timeoutMs + SHUTDOWN_GRACE_MS,
        note: "changes not acknowledged are sent again after restart"
      }))
      // interrupting may wait on a hung socket: do not wait for it
      yield* Effect.forkDetach(Fiber.interrupt(serving))
      return
    }
    if (Exit.isFailure(exit.value) && !Cause.hasInterruptsOnly(exit.value.cause)) {
      // already reported as fatal_error; the process must exit non-zero
      return yield* Effect.die(new FailedWhileStopping({ message: "the service failed while stopping" }))
    }
    yield* Effect.logInfo("shutdown_complete")
  })

/**
 * Runs the service. It never ends by itself: it fails with a fatal error, or, when interrupted,
 * stops gracefully first.
 */
export const run: Effect.Effect<void, ServiceError, Requirements> = Effect.gen(function*() {
  const config = yield* ServiceConfig
  const stop = yield* Deferred.make<void>()
  // not a child: interrupting `run` must not interrupt the service, only ask it to stop
  const serving = yield* Effect.forkDetach(serve(stop))
  yield* Fiber.join(serving).pipe(
    Effect.onInterrupt(() => stopGracefully(stop, serving, config.pipeline.shutdownTimeoutMs))
  )
})

/** The running service, for `Layer.launch`: built for as long as the service runs. */
export const layer: Layer.Layer<never, ServiceError, Requirements> = Layer.effectDiscard(run)

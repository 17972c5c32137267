/**
 * The streaming service: under leadership, open the replication session and run the pipeline; on a
 * retriable error (connection lost, slot busy, server restart) start again from the acknowledged
 * position with capped, jittered exponential backoff; on a fatal error stop with one clear log line.
 *
 * `main.ts` only calls `run`; the layers it needs (logging, health, probes, leadership, Kinesis)
 * are wired here, once.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import { ServiceConfig, type ServiceConfigShape } from "./config/ServiceConfig.ts"
import type { ServiceError } from "./Errors.ts"
import { reportFatal } from "./FatalReport.ts"
import { KinesisClient } from "./kinesis/KinesisClient.ts"
import * as KinesisSdk from "./kinesis/KinesisSdk.ts"
import { Leadership } from "./leader/Leadership.ts"
import { Health } from "./observability/Health.ts"
import { ProbeServer } from "./observability/HttpServer.ts"
import * as Logging from "./observability/Logging.ts"
import * as Metrics from "./observability/Metrics.ts"
import * as Pipeline from "./pipeline/Pipeline.ts"
import * as Publisher from "./pipeline/Publisher.ts"
import type { Decoder } from "./replication/Decoder.ts"
import * as PgOutputDecoder from "./replication/PgOutputDecoder.ts"
import * as Publication from "./replication/Publication.ts"
import * as ReplicationReader from "./replication/ReplicationReader.ts"
import * as Wal2JsonDecoder from "./replication/Wal2JsonDecoder.ts"

/** The decoder for the configured plugin, built on the replication connection. */
export const decoderFor = (config: ServiceConfigShape): ReplicationReader.DecoderFactory => (query) => {
  const { replication } = config
  if (replication.plugin === "wal2json") {
    return Effect.succeed<Decoder>(Wal2JsonDecoder.make({
      addTables: replication.wal2jsonAddTables,
      filterTables: replication.wal2jsonFilterTables
    }))
  }
  return Effect.gen(function*() {
    const created = yield* Publication.ensure(query, replication.publication)
    if (created) {
      yield* Effect.logWarning("publication_created").pipe(
        Effect.annotateLogs({ publication: replication.publication, statement: Publication.createStatement(replication.publication) })
      )
    }
    const keys = yield* Publication.primaryKeys(query)
    return PgOutputDecoder.make({ publication: replication.publication, primaryKey: Publication.primaryKeyOf(keys) })
  })
}

/** Backoff between pipeline restarts: exponential from PG_RECONNECT_BASE_MS, jittered, capped. */
const restartSchedule = (config: ServiceConfigShape) =>
  Schedule.exponential(Duration.millis(config.replication.reconnectBaseMs), 2).pipe(
    Schedule.modifyDelay(({ duration }) =>
      Effect.succeed(Duration.min(duration, Duration.millis(config.replication.reconnectMaxMs)))),
    Schedule.jittered
  )

/**
 * Streams until `stop` completes (graceful: in-flight PutRecords finish, the final frontier is
 * confirmed) or a fatal error. Retriable errors restart the pipeline.
 */
export const stream = (config: ServiceConfigShape, stop: Effect.Effect<void>, isStopping: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const health = yield* Health
    const kinesis = yield* KinesisClient
    // true while Pipeline.run runs: a stop then drains it gracefully
    let pipelineRunning = false
    const once = Effect.scoped(Effect.gen(function*() {
      yield* health.setState("connecting")
      // the stream is checked (its record limit read) before the service calls itself ready
      const maxRecordBytes = yield* Publisher.resolveMaxRecordBytes(config.kinesis, kinesis)
      const session = yield* ReplicationReader.open({
        pg: config.pg,
        replication: config.replication,
        decoder: decoderFor(config),
        // a change over the record limit is dropped as it arrives, never held whole
        maxMessageBytes: maxRecordBytes
      })
      yield* health.setState("streaming")
      yield* Effect.logInfo("streaming").pipe(Effect.annotateLogs({ slot: session.slot, plugin: config.replication.plugin }))
      // ticks every STATUS_TICK_MS; declared slower so a GC pause or a busy event loop is not "wedged"
      const heartbeat = yield* health.heartbeat("pipeline", 5_000)
      yield* Effect.suspend(() => {
        pipelineRunning = true
        return Pipeline.run(session, kinesis, {
          kinesis: config.kinesis,
          pipeline: config.pipeline,
          maxRecordBytes,
          stop,
          onTick: heartbeat.tick
        })
      }).pipe(Effect.ensuring(Effect.sync(() => {
        pipelineRunning = false
      })))
    }))
    const restartable = (error: ServiceError) => Effect.map(isStopping, (stopping) => error.retriable && !stopping)
    const restarting = once.pipe(
      Effect.tapError((error) =>
        Effect.gen(function*() {
          if (!(yield* restartable(error))) return
          yield* health.setState("connecting")
          yield* health.recordError({ tag: error._tag, message: error.message })
          yield* Metric.update(Metrics.reconnects, 1)
          yield* Effect.logWarning("pipeline_restart").pipe(
            Effect.annotateLogs({ error: error._tag, reason: error.message })
          )
        })
      ),
      Effect.retry(restartSchedule(config).pipe(
        Schedule.setInputType<ServiceError>(),
        Schedule.while(({ input }) => restartable(input))
      )),
      // a retriable error while stopping (e.g. the connection dropped during the drain) loses
      // nothing: the slot keeps the last confirmed position, so the stop is still a clean one
      Effect.catch((error) =>
        Effect.flatMap(isStopping, (stopping) =>
          stopping && error.retriable
            ? Effect.logWarning("stopped_while_failing").pipe(
              Effect.annotateLogs({ error: error._tag, reason: error.message })
            )
            : Effect.fail(error))
      )
    )
    // a stop while no pipeline runs (connecting, or waiting to restart) has nothing to drain: stop
    // at once instead of waiting out the backoff and failing the next attempt
    const idleStop = stop.pipe(Effect.flatMap(() => pipelineRunning ? Effect.never : Effect.void))
    yield* Effect.raceFirst(restarting, idleStop)
  })

/** Every layer the service runs with, from one configuration. */
export const layer = (config: ServiceConfigShape) => {
  const configLayer = ServiceConfig.layerValue(config)
  const health = Health.layer
  return Layer.mergeAll(
    ProbeServer.layerConfig,
    Leadership.layerConfig,
    KinesisSdk.layer
  ).pipe(
    Layer.provideMerge(health),
    Layer.provideMerge(Logging.layerConfig),
    Layer.provideMerge(configLayer)
  )
}

/**
 * Runs the service until SIGTERM/SIGINT (`shutdown` completes) or a fatal error. A standby stops at
 * once; the leader stops reading, lets in-flight requests finish, confirms the frontier, releases
 * the lock.
 */
export const run = (config: ServiceConfigShape, shutdown: Deferred.Deferred<void>): Effect.Effect<void, ServiceError | Error> =>
  Effect.gen(function*() {
    const leadership = yield* Leadership
    const health = yield* Health
    const stop = Deferred.await(shutdown)
    const isStopping = Deferred.isDone(shutdown)
    const leading = leadership.runWhileLeader(stream(config, stop, isStopping))
    // a standby has nothing to drain: when the signal comes while not leading, stop at once
    const standbyStop = stop.pipe(
      Effect.andThen(leadership.isLeader),
      Effect.flatMap((leader) => leader ? Effect.never : Effect.void)
    )
    yield* Effect.raceFirst(leading, standbyStop).pipe(
      // a fatal error also makes the state "fatal" (terminal): /readyz and /healthz answer 503
      Effect.tapError((error) => health.recordError({ tag: error._tag, message: error.message }, { fatal: true })),
      Effect.tapCause(reportFatal)
    )
    yield* Effect.logInfo("shutdown_complete")
  }).pipe(Effect.provide(layer(config)))

/**
 * The streaming pipeline's core run loop for one replication session: its fibers in one scope.
 *
 * - reader: `session.take` → `frontier.register` (every event, B/C included, in WAL order) →
 *   `queue.offerAll` (the publishable ones; suspends while the queue is full, so the socket is not
 *   read and back-pressure reaches PostgreSQL);
 * - publisher: batches → PutRecords → `frontier.complete` ({@link Publisher});
 * - status: every STATUS_TICK_MS, `session.acknowledge(frontier.current)` when it moved;
 * - and, when the caller gives one, a fiber `beside` them on the frontier (the backfill worker).
 *
 * The pipeline is a service: it takes the {@link KinesisClient} and its configuration from the
 * context, and runs one session at a time (`run`).
 *
 * Any failure (a fatal Kinesis error, a reader error) tears every fiber down and fails `run`; the
 * slot keeps the last acknowledged position, which never passes an unpublished change. When
 * `stop` completes, the pipeline stops gracefully: it stops reading, lets the publisher finish what
 * was read (bounded by SHUTDOWN_TIMEOUT_MS), then acknowledges the final frontier and sends a
 * status update at once.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type { KinesisConfig, PipelineConfig } from "../config/ServiceConfig.ts"
import { ServiceConfig } from "../config/ServiceConfig.ts"
import { type Action, type ChangeEvent, isPublishable } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import type { ServiceError } from "../Errors.ts"
import { KinesisClient } from "../kinesis/KinesisClient.ts"
import * as Metrics from "../observability/Metrics.ts"
import type { ReplicationSession } from "../replication/ReplicationSession.ts"
import * as ChangeQueue from "./ChangeQueue.ts"
import * as Frontier from "./Frontier.ts"
import * as StreamRoutes from "../kinesis/StreamRoutes.ts"
import * as Publisher from "./Publisher.ts"

/** How often the status fiber looks at the frontier. */
export const STATUS_TICK_MS = 100

/** What the pipeline is configured with. */
export interface PipelineOptions {
  readonly kinesis: KinesisConfig
  readonly pipeline: PipelineConfig
}

/** How one session is run. */
export interface RunOptions {
  /** Completes when the service should stop gracefully (SIGTERM, leadership handed over). */
  readonly stop?: Effect.Effect<void> | undefined
  /** The per-record limit when the caller already checked the stream; otherwise read at start. */
  readonly maxRecordBytes?: number | undefined
  /** The streams (KINESIS_STREAM_ROUTES) when the caller already checked them; otherwise checked at start. */
  readonly destinations?: StreamRoutes.Destinations | undefined
  /** Run on every status tick: a liveness heartbeat for /healthz. */
  readonly onTick?: Effect.Effect<void> | undefined
  /**
   * Runs beside the session's fibers, given the frontier (the confirmed position the pipeline would
   * report): the backfill's worker. It never ends by itself; it is interrupted when `run` ends.
   */
  readonly beside?: ((frontier: () => Lsn.Lsn) => Effect.Effect<never>) | undefined
}

/** cdc_changes_received_total for each action it counts, in the order of `Metrics.receivedActions`. */
const receivedCounters = Metrics.receivedActions.map(Metrics.changesReceivedFor)
const receivedIndex: Partial<Record<Action, number>> = Object.fromEntries(
  Metrics.receivedActions.map((action, index) => [action, index])
)

/**
 * One pass over a read: the events to publish (B and C only drive acknowledgement), in an array
 * allocated once at the read's size, and the count of changes per action into `received` (indexed
 * as `receivedCounters`; transaction records are not changes; rows a backfill read are counted by
 * cdc_backfill_rows_total).
 */
const sortRead = (events: ReadonlyArray<ChangeEvent>, received: Array<number>): Array<ChangeEvent> => {
  const publishable = new Array<ChangeEvent>(events.length)
  let count = 0
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!
    if (!isPublishable(event)) continue
    publishable[count++] = event
    const index = receivedIndex[event.action]
    if (index !== undefined) received[index]!++
  }
  // shrinking trims the array in place
  publishable.length = count
  return publishable
}

export class Pipeline extends Context.Service<Pipeline, {
  /**
   * Streams the session's changes to Kinesis until a failure (fails) or `stop` (succeeds after the
   * graceful drain).
   */
  readonly run: (session: ReplicationSession, options?: RunOptions) => Effect.Effect<void, ServiceError>
}>()("cdc-logical-replication/Pipeline") {}

/** The pipeline over the {@link KinesisClient} in the context. */
export const make = (config: PipelineOptions): Effect.Effect<Pipeline["Service"], never, KinesisClient> =>
  Effect.map(Effect.service(KinesisClient), (client) =>
    Pipeline.of({
      run: Effect.fn("Pipeline.run")(function*(session: ReplicationSession, options: RunOptions = {}) {
        return yield* runSession(session, client, config, options)
      })
    }))

/** The pipeline for explicit options. */
export const layer = (config: PipelineOptions): Layer.Layer<Pipeline, never, KinesisClient> =>
  Layer.effect(Pipeline, make(config))

/** The pipeline configured from the {@link ServiceConfig}. */
export const layerConfig: Layer.Layer<Pipeline, never, KinesisClient | ServiceConfig> = Layer.effect(
  Pipeline,
  Effect.flatMap(Effect.service(ServiceConfig), (config) => make({ kinesis: config.kinesis, pipeline: config.pipeline }))
)

const runSession = (
  session: ReplicationSession,
  client: KinesisClient["Service"],
  config: PipelineOptions,
  options: RunOptions
): Effect.Effect<void, ServiceError> =>
  Effect.scoped(Effect.gen(function*() {
    const { kinesis, pipeline } = config
    const destinations = options.destinations ?? (
      options.maxRecordBytes !== undefined && (kinesis.routes ?? []).length === 0
        ? StreamRoutes.single({ name: kinesis.streamName, arn: kinesis.streamArn }, client, options.maxRecordBytes)
        : yield* StreamRoutes.resolve(kinesis, client)
    )
    const maxRecordBytes = options.maxRecordBytes ?? destinations.maxRecordBytes
    const queue = ChangeQueue.make<ChangeEvent>({
      maxMessages: pipeline.queueMaxMessages,
      maxBytes: pipeline.queueMaxBytes,
      sizeOf: Publisher.eventBytes,
      bufferOf: Publisher.eventBuffer
    })
    const frontier = Frontier.make(session.startLsn)
    const publisher = Publisher.make(queue, frontier, client, { kinesis, pipeline, maxRecordBytes, destinations })

    // metrics are updated in place, in the context the session runs in (its metric registry)
    const context = yield* Effect.context<never>()
    // the per-action counts of the read being sorted (reset as they are reported)
    const received = receivedCounters.map(() => 0)
    // per read: one flatMap (no generator)
    const reader: Effect.Effect<never, ServiceError> = Effect.forever(
      Effect.flatMap(session.take, (events) => {
        if (events.length === 0) return Effect.void
        frontier.register(events)
        const publishable = sortRead(events, received)
        for (let i = 0; i < received.length; i++) {
          if (received[i]! > 0) {
            receivedCounters[i]!.updateUnsafe(received[i]!, context)
            received[i] = 0
          }
        }
        return queue.offerAll(publishable)
      })
    )

    let acknowledged = session.startLsn
    const acknowledge = Effect.suspend(() => {
      const current = frontier.current()
      if (current <= acknowledged) return Effect.void
      acknowledged = current
      return session.acknowledge(current).pipe(
        Effect.andThen(Metric.update(Metrics.frontierLsn, Number(current)))
      )
    })
    /** Lag: server WAL end minus flushed (bytes); now minus the newest published commit (seconds, 0 when caught up). */
    const lag = Effect.gen(function*() {
      const walEnd = yield* session.serverWalEnd
      const flushed = yield* session.flushed
      const newest = publisher.newestCommitMs()
      const seconds = frontier.outstanding() === 0 || newest === 0 ? 0 : Math.max(0, (Date.now() - newest) / 1000)
      yield* Metric.update(Metrics.replicationLagBytes, walEnd > flushed ? Number(walEnd - flushed) : 0)
      yield* Metric.update(Metrics.replicationLagSeconds, seconds)
    })
    const status: Effect.Effect<never> = Effect.forever(
      Effect.sleep(Duration.millis(STATUS_TICK_MS)).pipe(
        Effect.andThen(acknowledge),
        Effect.andThen(lag),
        Effect.andThen(options.onTick ?? Effect.void)
      )
    )

    // scoped: however `run` ends, the publisher and its requests are interrupted and awaited
    const publishing = yield* Effect.forkScoped(publisher.run)
    const beside = options.beside === undefined ? Effect.never : options.beside(frontier.current)
    const streaming = Effect.all([reader, status, Fiber.join(publishing), beside], { concurrency: "unbounded", discard: true })
    yield* Effect.raceFirst(streaming, options.stop ?? Effect.never)

    // graceful stop: reading and status updates are interrupted; drain what was read
    queue.end()
    const drained = yield* Fiber.join(publishing).pipe(
      Effect.timeoutOption(Duration.millis(pipeline.shutdownTimeoutMs))
    )
    if (Option.isNone(drained)) {
      yield* Fiber.interrupt(publishing)
      yield* Effect.logWarning("shutdown_drain_timeout").pipe(Effect.annotateLogs({
        timeoutMs: pipeline.shutdownTimeoutMs,
        note: "changes not acknowledged by SHUTDOWN_TIMEOUT_MS are sent again after restart"
      }))
    }
    yield* acknowledge
    yield* session.sendStatusNow
    yield* Effect.logInfo("pipeline_stopped").pipe(Effect.annotateLogs({ confirmedLsn: Lsn.format(frontier.current()) }))
  }))

/**
 * The publisher: takes changes from the {@link ChangeQueue}, checks them against the per-record
 * limit, batches them ({@link BatchScheduler}) and sends up to KINESIS_MAX_INFLIGHT PutRecords at
 * once, retrying failed requests and failed records with the {@link RetryPolicy} until Kinesis
 * accepts them. Each accepted or dropped change is completed in the {@link Frontier} and released
 * from the queue. A fatal error (a fatal {@link KinesisError}, or an `Oversized` {@link DecodeError}
 * with OVERSIZED_RECORD_POLICY=fail) fails `run`; in-flight requests are interrupted.
 *
 * Batches go out when full, when the oldest ready record has lingered BATCH_MAX_WAIT_MS, or at
 * once when nothing is in flight (a lone change never waits), or at once while draining.
 * All work is per batch: one fiber and one retry loop per request, metrics per request.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import type { KinesisConfig, PipelineConfig } from "../config/ServiceConfig.ts"
import { type ChangeEvent, qualifiedTable } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import { DecodeError, type KinesisError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import type { KinesisClient } from "../kinesis/KinesisClient.ts"
import * as Metrics from "../observability/Metrics.ts"
import * as BatchScheduler from "./BatchScheduler.ts"
import type { ChangeQueue } from "./ChangeQueue.ts"
import type { Frontier } from "./Frontier.ts"
import * as PartitionKey from "./PartitionKey.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import * as StreamRoutes from "../kinesis/StreamRoutes.ts"
import * as Signal from "./Signal.ts"

export type PublisherError = KinesisError | DecodeError

export interface PublisherOptions {
  readonly kinesis: KinesisConfig
  readonly pipeline: PipelineConfig
  /** The per-record limit in bytes (data plus partition key): see {@link resolveMaxRecordBytes}. */
  readonly maxRecordBytes: number
  /**
   * The streams records go to (KINESIS_STREAM_ROUTES), each with its client and limit; without
   * it, every record goes to `client`'s stream under `maxRecordBytes`.
   */
  readonly destinations?: StreamRoutes.Destinations | undefined
}

export interface Publisher {
  /**
   * Publishes until the queue is ended and everything taken from it is done (then succeeds), or
   * until a fatal error (then fails). Interrupting it interrupts the requests in flight.
   */
  readonly run: Effect.Effect<void, PublisherError>
  /** The commit time (epoch ms) of the newest change Kinesis accepted or that was dropped; 0 before any. */
  readonly newestCommitMs: () => number
}

const MiB = 1024 * 1024

/**
 * What a change holds in memory beside its body's buffer, from decoding to acknowledgement: the
 * event, its keys and the bookkeeping (measured about 360 bytes for a one-column key with an
 * outgoing record per change and a ring of done flags as the frontier, ~395 with a list entry per
 * change instead of the ring; rounded up. The record and the entry have since become 40 bytes of
 * the event's own fields, so this now counts high. Each key character is held twice, in the key and
 * in the partition key).
 */
const EVENT_OVERHEAD_BYTES = 416

/** The bytes a change holds on its own in the queue. */
export const eventBytes = (event: ChangeEvent): number => EVENT_OVERHEAD_BYTES + 2 * (event.pk?.length ?? 0)

/**
 * The buffer a change's body is a view of (one buffer per decoded read, shared by the
 * changes of that read): the queue counts it whole while any of them is held.
 */
export const eventBuffer = (event: ChangeEvent): ArrayBufferLike => event.body.buffer

/**
 * Checks the stream (DescribeStreamSummary: a missing stream or no permission is fatal here, at
 * start, not at the first PutRecords) and returns the per-record limit: KINESIS_MAX_RECORD_BYTES
 * when set, else the stream's own (1 MiB when it reports none).
 */
export const resolveMaxRecordBytes = (
  kinesis: KinesisConfig,
  client: KinesisClient["Service"]
): Effect.Effect<number, KinesisError> =>
  Effect.map(client.describeLimits, (limits) =>
    kinesis.maxRecordBytes ?? (limits.maxRecordBytes > 0 ? limits.maxRecordBytes : MiB))

const droppedOversized = Metrics.changesDroppedFor("oversized")
const droppedUnreadable = Metrics.changesDroppedFor("unreadable")

/** One stream's share of the publisher: where its records go, how they wait, how they are counted. */
interface Lane extends StreamRoutes.Destination {
  readonly scheduler: BatchScheduler.BatchScheduler
  /** Added to the `code` label of the retries counter. */
  readonly retryLabels: Readonly<Record<string, string>>
  readonly metrics: {
    readonly batchesPublished: typeof Metrics.batchesPublished
    readonly changesPublished: typeof Metrics.changesPublished
    readonly recordsPerBatch: typeof Metrics.recordsPerBatch
    readonly bytesPerBatch: typeof Metrics.bytesPerBatch
    readonly putRecordsDurationSeconds: typeof Metrics.putRecordsDurationSeconds
  }
}

/** A lane; its metrics carry a `stream` label when there are several streams (KINESIS_STREAM_ROUTES). */
const makeLane = (destination: StreamRoutes.Destination, ordering: KinesisConfig["ordering"], labelled: boolean): Lane => {
  const stream = labelled ? { stream: destination.stream.name } : {}
  // without a label, the metrics themselves (a labelled metric extends the context on each update)
  const label = <A extends Metric.Metric<number, unknown>>(metric: A): A => labelled ? Metric.withAttributes(metric, stream) as A : metric
  return {
    ...destination,
    scheduler: BatchScheduler.make(ordering),
    retryLabels: stream,
    metrics: {
      batchesPublished: label(Metrics.batchesPublished),
      changesPublished: label(Metrics.changesPublished),
      recordsPerBatch: label(Metrics.recordsPerBatch),
      bytesPerBatch: label(Metrics.bytesPerBatch),
      putRecordsDurationSeconds: label(Metrics.putRecordsDurationSeconds)
    }
  }
}

const nonAscii = /[^\x00-\x7f]/

/** A partition key's length in UTF-8 bytes (its length, for the usual ASCII key). */
const keyBytes = (key: string): number => nonAscii.test(key) ? Buffer.byteLength(key, "utf8") : key.length

export const make = (
  queue: ChangeQueue<ChangeEvent>,
  frontier: Frontier,
  client: KinesisClient["Service"],
  options: PublisherOptions
): Publisher => {
  const { kinesis, pipeline } = options
  const limits: BatchScheduler.BatchLimits = { maxRecords: pipeline.batchMaxRecords, maxBytes: pipeline.batchMaxBytes }
  const keyOf = PartitionKey.make(kinesis)
  const retrySchedule = RetryPolicy.schedule({ baseMs: kinesis.retryBaseMs, maxMs: kinesis.retryMaxMs })

  const destinations: StreamRoutes.Destinations = options.destinations ??
    StreamRoutes.single({ name: kinesis.streamName, arn: kinesis.streamArn }, client, options.maxRecordBytes)

  let newestCommitMs = 0

  const run: Effect.Effect<void, PublisherError> = Effect.scoped(Effect.gen(function*() {
    // one lane per stream: its own batches, per-key order, record limit and metric labels
    const lanes: ReadonlyArray<Lane> = destinations.all.map((destination) =>
      makeLane(destination, kinesis.ordering, destinations.all.length > 1)
    )
    let nextLane = 0
    const readyLimit = 2 * kinesis.maxInflight * limits.maxRecords
    const requests = yield* FiberSet.make<void, never>()
    // metrics are updated in place, in the context `run` started in (its metric registry)
    const context = yield* Effect.context<never>()
    const updateMetrics = (updates: ReadonlyArray<readonly [Metric.Metric<number, unknown>, number]>): void => {
      for (const [metric, value] of updates) metric.updateUnsafe(value, context)
    }
    const completed = Signal.make()
    // the clock read directly on every round (the run's own: a test's TestClock in tests)
    const clock = yield* Clock.Clock
    const startedAt = clock.currentTimeMillisUnsafe()
    let inflight = 0
    let fatal: PublisherError | undefined

    /** Accepted or dropped: done for the frontier, out of the queue's bounds. */
    const finish = (events: ReadonlyArray<ChangeEvent>) => {
      let newest = newestCommitMs
      for (let i = 0; i < events.length; i++) {
        const commitTimeMs = events[i]!.commitTimeMs
        if (commitTimeMs !== undefined && commitTimeMs > newest) newest = commitTimeMs
      }
      newestCommitMs = newest
      frontier.complete(events)
      queue.release(events)
    }

    /**
     * Prepares what was taken from the queue; drops or rejects oversized changes. Returns the work
     * left (logging the drops, or the failure), if any.
     */
    const ingest = (events: ReadonlyArray<ChangeEvent>, now: number): Effect.Effect<void, DecodeError> | undefined => {
      if (events.length === 0) return undefined
      let dropped: Array<readonly [BatchScheduler.Outgoing, number]> | undefined
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        const partitionKey = keyOf(event)
        const lane = lanes.length === 1 ? 0 : destinations.indexOf(event)
        const limit = lanes[lane]!.maxRecordBytes
        // a change over the limit when read was never held: its size is all that is left of it
        const bytes = event.oversizedBytes ?? event.unreadableBytes ?? event.body.byteLength + keyBytes(partitionKey)
        // the event is its own outgoing record: its slots, set here, are all the publisher adds
        event.partitionKey = partitionKey
        event.recordBytes = bytes
        event.arrivedAt = now
        const record = event as BatchScheduler.Outgoing
        if (event.unreadableBytes !== undefined) (dropped ??= []).push([record, limit])
        else if (event.oversizedBytes === undefined && bytes <= limit) lanes[lane]!.scheduler.add(record)
        else if (kinesis.oversizedRecordPolicy === "fail") {
          return Effect.fail(
            DecodeError.oversized({
              lsn: event.lsn,
              table: event.action === "M" ? "(logical message)" : qualifiedTable(event),
              bytes,
              limit
            })
          )
        } else (dropped ??= []).push([record, limit])
      }
      if (dropped === undefined) return undefined
      const droppedRecords = dropped
      finish(droppedRecords.map(([record]) => record))
      const unreadable = droppedRecords.filter(([record]) => record.unreadableBytes !== undefined).length
      return Effect.forEach(droppedRecords, ([record, limit]) =>
        Effect.logWarning("change_dropped").pipe(
          Effect.annotateLogs({
            ...(record.unreadableBytes !== undefined
              ? { reason: "unreadable", policy: "always dropped: not JSON, even repaired" }
              : { reason: "oversized", policy: "OVERSIZED_RECORD_POLICY=drop" }),
            schema: record.schema,
            table: record.table,
            // a change dropped as it was read has no key left (its columns were not kept)
            ...(record.oversizedBytes === undefined && record.unreadableBytes === undefined
              ? { partitionKey: record.partitionKey }
              : {}),
            lsn: Lsn.format(record.lsn),
            bytes: record.recordBytes,
            limit
          })
        ), { discard: true }).pipe(
          Effect.andThen(Metric.update(droppedOversized, droppedRecords.length - unreadable)),
          Effect.andThen(unreadable > 0 ? Metric.update(droppedUnreadable, unreadable) : Effect.void)
        )
    }

    /** One request and its retries, until every record is accepted or a fatal error. */
    const send = (lane: Lane, batch: ReadonlyArray<BatchScheduler.Outgoing>): Effect.Effect<void, KinesisError> => {
      let remaining = batch
      const attempt = Effect.suspend(() => {
        const records = remaining
        let bytes = 0
        for (let i = 0; i < records.length; i++) bytes += records[i]!.recordBytes
        return lane.client.putRecords(records).pipe(
          Effect.timed,
          Effect.tapError((error) =>
            error.retriable
              ? Effect.logWarning("put_records_retry").pipe(
                Effect.annotateLogs({ error: error._tag, kind: error.reason, code: error.code, reason: error.message }),
                Effect.andThen(Metric.update(
                  Metric.withAttributes(Metrics.putRecordsRetries, { ...lane.retryLabels, code: error.code }),
                  1
                ))
              )
              : Effect.void
          ),
          Effect.flatMap(([duration, results]) => {
            if (results.length !== records.length) {
              return Effect.fail(ErrorPolicy.fromAws({
                name: "InvalidResponse",
                message: `${results.length} results for ${records.length} records`
              }))
            }
            let failures = 0
            for (let i = 0; i < results.length; i++) if (results[i]!._tag !== "Ok") failures++
            // usually every record is accepted: the request's own list is the accepted one
            let accepted: ReadonlyArray<BatchScheduler.Outgoing> = records
            const failed: Array<BatchScheduler.Outgoing> = []
            const failureCodes = new Map<string, number>()
            if (failures > 0) {
              const ok: Array<BatchScheduler.Outgoing> = []
              for (let i = 0; i < results.length; i++) {
                const result = results[i]!
                if (result._tag === "Ok") ok.push(records[i]!)
                else {
                  failed.push(records[i]!)
                  failureCodes.set(result.errorCode, (failureCodes.get(result.errorCode) ?? 0) + 1)
                }
              }
              accepted = ok
            }
            lane.scheduler.done(accepted)
            finish(accepted)
            completed.notify()
            remaining = failed
            updateMetrics([
              [lane.metrics.batchesPublished, 1],
              [lane.metrics.changesPublished, accepted.length],
              [lane.metrics.recordsPerBatch, records.length],
              [lane.metrics.bytesPerBatch, bytes],
              [lane.metrics.putRecordsDurationSeconds, Duration.toMillis(duration) / 1000],
              ...Array.from(failureCodes, ([code, count]) =>
                [Metric.withAttributes(Metrics.putRecordsRetries, { ...lane.retryLabels, code }), count] as const)
            ])
            if (failed.length === 0) return Effect.void
            // one error for the request: the first fatal record failure (KMS key unusable, …) if any
            const errors = [...failureCodes.keys()].map((code) => ErrorPolicy.fromRecordFailure(code, failed.length, records.length))
            const error = errors.find((e) => !e.retriable) ?? errors[0]!
            return Effect.fail(error)
          })
        )
      })
      return attempt.pipe(Effect.retry(retrySchedule))
    }

    const launch = (lane: Lane, batch: ReadonlyArray<BatchScheduler.Outgoing>) => {
      inflight++
      return FiberSet.run(
        requests,
        send(lane, batch).pipe(
          Effect.catch((error) =>
            Effect.sync(() => {
              fatal ??= error
            })
          ),
          Effect.ensuring(Effect.sync(() => {
            inflight--
            completed.notify()
          }))
        )
      )
    }

    // The linger's timer: one fiber per deadline, kept while that deadline stands (not one per
    // wait), which notifies `lingerPassed` when it fires. A later deadline keeps the timer (an early
    // wake-up only runs the loop once more); an earlier one replaces it.
    const lingerPassed = Signal.make()
    let timer: { readonly until: number; readonly fiber: Fiber.Fiber<void> } | undefined

    while (true) {
      const seen = completed.version()
      // read before polling: what arrives after the poll moves it
      const seenArrivals = queue.arrivals.version()
      const seenLinger = lingerPassed.version()
      if (fatal !== undefined) return yield* Effect.fail(fatal)
      // ms since the run started: a small integer, which a change's slot holds without a boxed number
      const now = clock.currentTimeMillisUnsafe() - startedAt
      // With one stream, changes stay in the queue while two full batches per request slot are
      // ready: the scheduler's per-key bookkeeping stays small (and in cache) however long the
      // backlog, and nothing waits that could go out. (With several streams everything is taken,
      // so a slow stream's backlog never holds back another's changes.)
      const room = lanes.length === 1 ? readyLimit - lanes[0]!.scheduler.readyCount() : Infinity
      const dropping = ingest(queue.poll(room), now)
      if (dropping !== undefined) yield* dropping
      const draining = queue.isEnded()
      let lingerUntil: number | undefined
      // the streams take turns, starting with a different one each round
      let launched = true
      while (launched && inflight < kinesis.maxInflight) {
        launched = false
        for (let k = 0; k < lanes.length && inflight < kinesis.maxInflight; k++) {
          const lane = lanes[(nextLane + k) % lanes.length]!
          const { scheduler } = lane
          if (scheduler.readyCount() === 0) continue
          const oldest = scheduler.oldestReady()!
          const due = draining || inflight === 0 || scheduler.hasFullBatch(limits) || now - oldest >= pipeline.batchMaxWaitMs
          if (!due) {
            const until = oldest + pipeline.batchMaxWaitMs
            lingerUntil = lingerUntil === undefined ? until : Math.min(lingerUntil, until)
            continue
          }
          yield* launch(lane, scheduler.next(limits))
          launched = true
        }
      }
      nextLane = (nextLane + 1) % lanes.length
      Metrics.queueDepth.updateUnsafe(queue.heldCount(), context)
      Metrics.queueBytes.updateUnsafe(queue.heldBytes(), context)
      Metrics.frontierPending.updateUnsafe(frontier.outstanding(), context)
      // a request may have finished (and failed) within its launch: check before calling the drain done
      const failedMeanwhile = fatal as PublisherError | undefined
      if (failedMeanwhile !== undefined) return yield* Effect.fail(failedMeanwhile)
      if (draining && queue.buffered() === 0 && lanes.every((lane) => lane.scheduler.waiting() === 0) && inflight === 0) return
      if (lingerUntil !== undefined && (timer === undefined || timer.until > lingerUntil)) {
        if (timer !== undefined) yield* Fiber.interrupt(timer.fiber)
        const until = lingerUntil
        const fiber = yield* Effect.forkScoped(
          Effect.sleep(Duration.millis(Math.max(0, until - now))).pipe(
            Effect.andThen(Effect.sync(() => {
              if (timer?.until === until) timer = undefined
              lingerPassed.notify()
            }))
          )
        )
        timer = { until, fiber }
      }
      // one suspension for every signal
      yield* Signal.waitAny(
        draining
          ? [[completed, seen]]
          : [[completed, seen], [queue.arrivals, seenArrivals], [lingerPassed, seenLinger]]
      )
    }
  }))

  return { run, newestCommitMs: () => newestCommitMs }
}

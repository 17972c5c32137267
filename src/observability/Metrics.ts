/**
 * Every metric the service exports, declared once. Names follow Prometheus conventions: units in
 * the name, `_total` for counters. Updated per batch, never per change, on the hot path.
 * {@link registerAll} makes every one of them (and every known label value of the labelled
 * counters) appear from the first scrape, counters at 0, so `rate()` and absence alerts work on a
 * fresh standby.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

const changesReceivedOptions = { description: "Changes decoded from the replication slot", incremental: true } as const

/** Changes decoded from the slot (I/U/D/T/M), by action. */
export const changesReceived = Metric.counter("cdc_changes_received_total", changesReceivedOptions)

/** Changes Kinesis accepted. */
export const changesPublished = Metric.counter("cdc_changes_published_total", {
  description: "Changes accepted by Kinesis",
  incremental: true
})

/** Changes deliberately not published, by `reason` (e.g. oversized). */
export const changesDropped = Metric.counter("cdc_changes_dropped_total", {
  description: "Changes dropped instead of published, by reason",
  incremental: true
})

/** PutRecords requests that completed (whatever their per-record outcome). */
export const batchesPublished = Metric.counter("cdc_batches_total", {
  description: "PutRecords requests completed",
  incremental: true
})

/** Records per PutRecords request. */
export const recordsPerBatch = Metric.histogram("cdc_batch_records", {
  description: "Records per PutRecords request",
  boundaries: [1, 2, 5, 10, 25, 50, 100, 200, 300, 400, 500]
})

/** Bytes per PutRecords request. */
export const bytesPerBatch = Metric.histogram("cdc_batch_bytes", {
  description: "Bytes per PutRecords request",
  boundaries: Metric.exponentialBoundaries({ start: 1024, factor: 4, count: 8 })
})

/** PutRecords duration. */
export const putRecordsDurationSeconds = Metric.histogram("cdc_put_records_duration_seconds", {
  description: "PutRecords request duration in seconds",
  boundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
})

/** Retries, by `code` (a request error code or a per-record ErrorCode). */
export const putRecordsRetries = Metric.counter("cdc_put_records_retries_total", {
  description: "PutRecords retries (request failures and failed records), by error code",
  incremental: true
})

export const queueDepth = Metric.gauge("cdc_queue_depth", { description: "Changes in the queue" })
export const queueBytes = Metric.gauge("cdc_queue_bytes", {
  description: "Bytes held by changes between decoding and acknowledgement (the buffers their bodies share counted whole)"
})

/** The frontier's bookkeeping: changes read and not yet published or dropped (bounded by the queue plus one read). */
export const frontierPending = Metric.gauge("cdc_frontier_pending", {
  description: "Changes the frontier tracks: read and not yet published or dropped"
})

/** The flush LSN as a number (precise to 2^53; fine for lag arithmetic and dashboards). */
export const frontierLsn = Metric.gauge("cdc_frontier_lsn", { description: "Highest LSN below which every change is published or dropped" })

export const replicationLagBytes = Metric.gauge("cdc_replication_lag_bytes", {
  description: "Server WAL end minus the flushed position, in bytes"
})

export const replicationLagSeconds = Metric.gauge("cdc_replication_lag_seconds", {
  description: "Now minus the commit time of the newest published change, in seconds"
})

/** 1 when this instance leads, 0 otherwise. */
export const leader = Metric.gauge("cdc_leader", { description: "1 when this instance holds the leader lock" })

export const reconnects = Metric.counter("cdc_reconnects_total", {
  description: "Pipeline restarts after a retriable error (connection lost, slot busy, ...)",
  incremental: true
})

/** Rows a backfill published (R records Kinesis accepted), by `table`; exported at 0 unlabelled from the start. */
export const backfillRows = Metric.counter("cdc_backfill_rows_total", {
  description: "Rows published by backfills (acknowledged chunks), by table",
  incremental: true
})

/** The slot's backfill requests by `state` (queued, running, done, cancelled, failed), as the leader last read them. */
export const backfillTables = Metric.gauge("cdc_backfill_tables", {
  description: "Backfill requests of the slot, by state"
})

/** Every state {@link backfillTables} reports. */
export const backfillStates = ["queued", "running", "done", "cancelled", "failed"] as const

/** The actions counted by {@link changesReceived} (B/C are transaction boundaries, not changes). */
export const receivedActions = ["I", "U", "D", "T", "M"] as const

/**
 * {@link changesReceived} for one action, as a counter of its own carrying the attribute: the same
 * series, whose key it computes once. (A `withAttributes` view shares the one counter, which keeps
 * the key of the last attributes it saw: views of several actions updated in turn, as for every
 * read, make it build its key again, a JSON text, on each update.)
 */
export const changesReceivedFor = (action: (typeof receivedActions)[number]) =>
  Metric.counter("cdc_changes_received_total", { ...changesReceivedOptions, attributes: { action } })

/** Every reason {@link changesDropped} counts: a new reason goes here (and in README's Metrics table). */
export const dropReasons = ["oversized", "unreadable"] as const
export type DropReason = (typeof dropReasons)[number]

/** {@link changesDropped} for one reason (registered at 0 from the start, see {@link registerAll}). */
export const changesDroppedFor = (reason: DropReason) => Metric.withAttributes(changesDropped, { reason })

/**
 * The per-record error codes Kinesis documents for PutRecords; {@link putRecordsRetries} also counts
 * request error codes, which form no closed set and appear on their first retry.
 */
export const recordErrorCodes = ["ProvisionedThroughputExceededException", "InternalFailure"] as const

/**
 * The process's memory by `kind`, as Node reports it (process.memoryUsage): `rss` resident set,
 * `heap_used`/`heap_total` V8's heap, `external` memory outside the heap that JS objects own
 * (buffers included), `array_buffers` the ArrayBuffers' part of it. Sampled every few seconds.
 */
export const memoryBytes = Metric.gauge("cdc_memory_bytes", {
  description: "Process memory by kind (rss, heap_used, heap_total, external, array_buffers), from process.memoryUsage()"
})

/** Every kind {@link memoryBytes} reports. */
export const memoryKinds = ["rss", "heap_used", "heap_total", "external", "array_buffers"] as const

/** Sets {@link memoryBytes} from process.memoryUsage(). */
export const sampleMemory: Effect.Effect<void> = Effect.suspend(() => {
  const usage = process.memoryUsage()
  const values = [usage.rss, usage.heapUsed, usage.heapTotal, usage.external, usage.arrayBuffers]
  return Effect.forEach(memoryKinds, (kind, i) => Metric.update(Metric.withAttributes(memoryBytes, { kind }), values[i]!), {
    discard: true
  })
})

/** Every metric, each labelled counter once per known label value. */
const all: ReadonlyArray<Metric.Metric<never, unknown>> = [
  ...receivedActions.map((action) => Metric.withAttributes(changesReceived, { action })),
  changesPublished,
  ...dropReasons.map((reason) => Metric.withAttributes(changesDropped, { reason })),
  batchesPublished,
  recordsPerBatch,
  bytesPerBatch,
  putRecordsDurationSeconds,
  ...recordErrorCodes.map((code) => Metric.withAttributes(putRecordsRetries, { code })),
  queueDepth,
  queueBytes,
  frontierPending,
  frontierLsn,
  replicationLagBytes,
  replicationLagSeconds,
  leader,
  reconnects,
  backfillRows,
  ...backfillStates.map((state) => Metric.withAttributes(backfillTables, { state })),
  ...memoryKinds.map((kind) => Metric.withAttributes(memoryBytes, { kind }))
]

/** Registers every metric in the current registry without updating it: counters and gauges read 0, histograms are empty. */
export const registerAll: Effect.Effect<void> = Effect.forEach(all, Metric.value, { discard: true })

/**
 * The leader's backfill worker, run beside the pipeline for as long as a replication session
 * streams. It takes the oldest running request (resuming it after its cursor) or else the oldest
 * queued one, and reads its table chunk by chunk:
 *
 *   low watermark → SELECT the chunk by key → high watermark → (the {@link Splicer} publishes the
 *   rows at the high watermark) → wait until the frontier is past it → store the cursor.
 *
 * So one chunk at a time is in flight, the cursor only moves over acknowledged rows, and a leader
 * that dies mid-chunk leaves the cursor at the last acknowledged chunk for the next leader. Chunk
 * sizes ({@link ChunkSize}) adapt to the rows' size and stay small while live changes stream, as
 * those committed after a chunk wait behind it; the table's shape for the next chunk is read while
 * a chunk is acknowledged. Requests are polled every {@link POLL_MS}. A table that is dropped,
 * loses its key or keeps failing ends its request as `failed` with the reason; `--cancel` is seen
 * before the next chunk (by the cursor's update). Failures of the worker's own session are logged and retried: they never
 * stop the stream.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type { ServiceConfig } from "../config/ServiceConfig.ts"
import * as Lsn from "../domain/Lsn.ts"
import type { PgError } from "../Errors.ts"
import * as Metrics from "../observability/Metrics.ts"
import * as PgSession from "../postgres/PgSession.ts"
import * as ChunkReader from "./ChunkReader.ts"
import * as ChunkSize from "./ChunkSize.ts"
import * as InitialTables from "./InitialTables.ts"
import * as Query from "./Query.ts"
import * as Requests from "./Requests.ts"
import type { Outcome, Splicer } from "./Splicer.ts"
import * as Store from "./Store.ts"
import * as TableShape from "./TableShape.ts"
import * as Watermark from "./Watermark.ts"

/** How often an idle leader looks for requests. */
export const POLL_MS = 1_000
/** Reads of one chunk in a row that may come back unusable (truncated, unkeyable) before the request fails. */
const MAX_RETRIES = 10
/** How often the frontier is looked at while a chunk is being acknowledged. */
const FRONTIER_POLL_MS = 5
/** After a failure of the worker's session. */
const RESTART_MS = 5_000

export interface WorkerOptions {
  readonly config: Pick<ServiceConfig["Service"], "pg" | "replication" | "backfill" | "pipeline">
  readonly splicer: Splicer
  /** The pipeline's frontier (the confirmed position it would report). */
  readonly frontier: () => Lsn.Lsn
  /** Whether this session created the slot (INITIAL_BACKFILL then requests every streamed table). */
  readonly slotCreated: boolean
}

/** How a request ended in this run. */
type Ending =
  | { readonly _tag: "Done" }
  | { readonly _tag: "Cancelled" }
  | { readonly _tag: "Failed"; readonly reason: string }

const nonce = (): string => Math.random().toString(36).slice(2, 10)

/** Runs the worker; never fails (its own failures are logged and retried), never ends. */
export const run = (options: WorkerOptions): Effect.Effect<never> => {
  const { config, splicer } = options
  const slot = config.replication.slot
  const limits: ChunkSize.Limits = {
    maxRows: config.backfill.chunkRows,
    maxBytes: ChunkSize.maxBytesFor(config.pipeline.queueMaxBytes)
  }
  let liveReadsSeen = splicer.liveReads()
  let lastLiveMs: number | undefined = undefined
  /** Whether live changes streamed lately (looked at between chunks). */
  const liveRecently = (): boolean => {
    const now = Date.now()
    const reads = splicer.liveReads()
    if (reads !== liveReadsSeen) {
      liveReadsSeen = reads
      lastLiveMs = now
    }
    return ChunkSize.liveRecently(lastLiveMs, now)
  }
  const session = nonce()
  let chunkSeq = 0
  let initialDone = !(config.backfill.initial && options.slotCreated)

  const updateGauge = (query: Query.Query) =>
    Effect.flatMap(Store.counts(query, slot), (counts) =>
      Effect.forEach(Metrics.backfillStates, (state) =>
        Metric.update(Metric.withAttributes(Metrics.backfillTables, { state }), counts.get(state) ?? 0), { discard: true }))

  /** Waits until the frontier is past `lsn`. */
  const acknowledged = (lsn: Lsn.Lsn): Effect.Effect<void> =>
    Effect.suspend(() => options.frontier() > lsn ? Effect.void : Effect.sleep(FRONTIER_POLL_MS).pipe(Effect.andThen(acknowledged(lsn))))

  /** Reads one chunk between watermarks; the splicer publishes it at the high one (returns once it has). */
  const chunk = (
    query: Query.Query,
    shape: TableShape.TableShape,
    cursor: ReadonlyArray<string | null> | undefined,
    limit: number
  ): Effect.Effect<{ readonly outcome: Outcome; readonly read: ChunkReader.Chunk }, PgError> => {
    const id = `${session}-${chunkSeq++}`
    let resume: ((outcome: Outcome) => void) | undefined
    let early: Outcome | undefined
    splicer.expect({
      chunk: id,
      schema: shape.schema,
      table: shape.table,
      pageKeyColumns: shape.pageKey.map((i) => shape.columns[i]!.name),
      onHigh: (outcome) => {
        if (resume !== undefined) resume(outcome)
        else early = outcome
      }
    })
    return Effect.gen(function*() {
      yield* Watermark.emit(query, { slot, chunk: id, mark: "low" })
      const read = yield* ChunkReader.read(query, shape, cursor, limit)
      splicer.rows(id, read.rows)
      yield* Watermark.emit(query, { slot, chunk: id, mark: "high" })
      const outcome = yield* Effect.callback<Outcome>((done) => {
        if (early !== undefined) return done(Effect.succeed(early))
        resume = (value) => done(Effect.succeed(value))
      })
      return { outcome, read }
    }).pipe(Effect.ensuring(Effect.sync(() => splicer.forget(id))))
  }

  /** Works on one request until it ends. */
  const backfill = (query: Query.Query, request: Store.Request): Effect.Effect<Ending, PgError> =>
    Effect.gen(function*() {
      const table = TableShape.qualified(request.schema, request.table)
      if (!(yield* Store.start(query, request.id))) return { _tag: "Cancelled" } as const
      let shape = yield* TableShape.read(query, request.schema, request.table).pipe(Effect.result)
      if (shape._tag === "Failure") {
        const error = shape.failure
        if (error._tag === "PgError") return yield* error
        return { _tag: "Failed", reason: error.message } as const
      }
      const keyNames = (s: TableShape.TableShape) => s.pageKey.map((i) => s.columns[i]!.name).join(",")
      const pageKey = keyNames(shape.success)
      yield* Effect.logInfo(request.cursor === undefined ? "backfill_started" : "backfill_resumed").pipe(Effect.annotateLogs({
        table, request: request.id, key: pageKey, estimatedRows: shape.success.estimatedRows, rowsDone: request.rowsDone
      }))
      let cursor = request.cursor
      let rowsDone = request.rowsDone
      let limit = ChunkSize.first(limits, yield* ChunkReader.sampleRowBytes(query, shape.success))
      let retries = 0
      const readShape = TableShape.read(query, request.schema, request.table).pipe(Effect.result)
      // Store.start has just seen the request running; then each Store.advance does
      let stateKnown = true
      while (true) {
        if (!stateKnown && (yield* Store.stateOf(query, request.id)) !== "running") return { _tag: "Cancelled" } as const
        stateKnown = false
        if (shape._tag === "Failure") {
          const error = shape.failure
          if (error._tag === "PgError") return yield* error
          return {
            _tag: "Failed",
            reason: error._tag === "TableMissing" ? `${error.message} (dropped during its backfill)` : `${error.message} (altered during its backfill)`
          } as const
        }
        if (keyNames(shape.success) !== pageKey) {
          return {
            _tag: "Failed",
            reason: `the key of ${table} changed during its backfill (was ${pageKey}, now ${keyNames(shape.success)}): request it again`
          } as const
        }
        const attempt = yield* chunk(query, shape.success, cursor, limit).pipe(Effect.result)
        if (attempt._tag === "Failure") {
          const error = attempt.failure
          if (error.reason !== "Statement") return yield* error
          // the table went away (or changed) between reading its shape and reading the chunk
          if (++retries > MAX_RETRIES) return { _tag: "Failed", reason: `reading ${table}: ${error.message}` } as const
          shape = yield* readShape
          continue
        }
        const { outcome, read } = attempt.success
        // the table's shape for the next chunk (a column added or changed since is read as it is then),
        // read while this chunk is being acknowledged
        const [, nextShape] = yield* Effect.all([acknowledged(outcome.commitLsn), readShape], { concurrency: 2 })
        shape = nextShape
        if (outcome._tag === "Retry") {
          yield* Effect.logDebug("backfill_chunk_again").pipe(Effect.annotateLogs({ table, reason: outcome.reason }))
          if (++retries > MAX_RETRIES) return { _tag: "Failed", reason: `${outcome.reason}, ${MAX_RETRIES} times in a row` } as const
          continue
        }
        retries = 0
        const last = read.rows[read.rows.length - 1]
        if (last !== undefined) {
          cursor = last.cursor
          if (!(yield* Store.advance(query, request.id, cursor, outcome.published))) return { _tag: "Cancelled" } as const
          stateKnown = true
          rowsDone += outcome.published
          yield* Metric.update(Metric.withAttributes(Metrics.backfillRows, { table }), outcome.published)
        }
        yield* Effect.logDebug("backfill_chunk").pipe(Effect.annotateLogs({
          table, rows: read.rows.length, published: outcome.published, skipped: outcome.skipped, rowsDone,
          commitLsn: Lsn.format(outcome.commitLsn)
        }))
        if (read.rows.length < limit) return { _tag: "Done" } as const
        limit = ChunkSize.next(limits, liveRecently(), read.rows.length, read.bytes)
      }
    }).pipe(Effect.annotateLogs({ request: request.id }))

  const ended = (query: Query.Query, request: Store.Request, ending: Ending) =>
    Effect.gen(function*() {
      const table = TableShape.qualified(request.schema, request.table)
      switch (ending._tag) {
        case "Done":
          yield* Store.finish(query, request.id, "done")
          return yield* Effect.logInfo("backfill_finished").pipe(Effect.annotateLogs({ table, request: request.id }))
        case "Cancelled":
          return yield* Effect.logInfo("backfill_cancelled").pipe(Effect.annotateLogs({ table, request: request.id }))
        case "Failed":
          yield* Store.finish(query, request.id, "failed", ending.reason)
          return yield* Effect.logWarning("backfill_failed").pipe(Effect.annotateLogs({ table, request: request.id, reason: ending.reason }))
      }
    })

  /** One connection's life: polls and works until its session fails. */
  const serve: Effect.Effect<never, PgError> = Effect.scoped(Effect.gen(function*() {
    const connection = yield* PgSession.connect(config.pg, { applicationName: `${config.pg.applicationName}/backfill` })
    const query = Query.ofConnection(connection)
    if (yield* Requests.isReadOnly(query)) {
      yield* Effect.logWarning("backfill_unavailable").pipe(Effect.annotateLogs({ reason: Requests.readOnlyMessage }))
      return yield* Effect.never
    }
    if (!initialDone) {
      const tables = yield* InitialTables.list(query, config.replication)
      const outcomes = yield* Requests.request(query, slot, tables)
      initialDone = true
      yield* Effect.logInfo("initial_backfill_requested").pipe(Effect.annotateLogs({
        tables: outcomes.filter((o) => o._tag === "Queued").map((o) => o.table).join(","),
        refused: outcomes.flatMap((o) => (o._tag === "Refused" ? [`${o.table}: ${o.reason}`] : [])).join("; ")
      }))
    }
    while (true) {
      if (!(yield* Store.exists(query))) {
        yield* Effect.sleep(POLL_MS)
        continue
      }
      yield* updateGauge(query)
      const request = yield* Store.next(query, slot)
      if (request === undefined) {
        yield* Effect.sleep(POLL_MS)
        continue
      }
      const ending = yield* backfill(query, request)
      yield* ended(query, request, ending)
      yield* updateGauge(query)
    }
  }))

  return serve.pipe(
    Effect.catch((error) =>
      Effect.logWarning("backfill_error").pipe(
        Effect.annotateLogs({ error: error._tag, reason: error.message, note: "retried; the stream is not affected" }),
        Effect.andThen(Effect.sleep(RESTART_MS))
      )),
    Effect.forever
  )
}

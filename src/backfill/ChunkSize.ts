/**
 * How many rows the backfill's next chunk reads. A chunk is published at its high watermark as one
 * burst through the same queue and requests as live changes, so a live change committed just after
 * it waits until the whole chunk is acknowledged: while live changes stream, chunks stay small
 * (`BACKFILL_CHUNK_ROWS`, default {@link DEFAULT_ROWS}); with none decoded for {@link IDLE_MS},
 * nobody waits behind a burst and chunks grow to {@link IDLE_ROWS} (never below the setting), where
 * the per-chunk round trips cost least. Either way a chunk holds about `maxBytes` of rows at most
 * (sized by the previous chunk's rows), and the first one {@link FIRST_ROWS}, fewer when the widest
 * sampled row is wide.
 */

/**
 * `BACKFILL_CHUNK_ROWS` when unset (ServiceConfig's default; Debezium's incremental snapshots read
 * 1,024): on the benchmark's machine a chunk of 500 rows is acknowledged in about half the time of
 * one of 1,000 (a median 5 against 10 ms, quiet), for about 20% fewer rows/s (README, Backfills).
 */
export const DEFAULT_ROWS = 500
/** Rows per chunk at most while the stream is idle. */
export const IDLE_ROWS = 5_000
/** Rows of the first chunk at most, before a chunk's bytes are known. */
export const FIRST_ROWS = 500
/** Bytes per chunk at most (also never more than a quarter of QUEUE_MAX_BYTES). */
export const MAX_BYTES = 8 * 1024 * 1024
/** No live change decoded for this long: the stream is idle. */
export const IDLE_MS = 2_000

export interface Limits {
  /** `BACKFILL_CHUNK_ROWS`: rows per chunk at most while live changes stream. */
  readonly maxRows: number
  /** Bytes per chunk at most. */
  readonly maxBytes: number
}

/** The bytes per chunk for a queue of `queueMaxBytes`. */
export const maxBytesFor = (queueMaxBytes: number): number => Math.min(MAX_BYTES, Math.floor(queueMaxBytes / 4))

/** Rows per chunk at most, by whether live changes streamed lately. */
export const rowCap = (limits: Limits, liveRecently: boolean): number =>
  liveRecently ? limits.maxRows : Math.max(limits.maxRows, IDLE_ROWS)

/** Whether a live change was decoded within {@link IDLE_MS} of `nowMs`. */
export const liveRecently = (lastLiveMs: number | undefined, nowMs: number): boolean =>
  lastLiveMs !== undefined && nowMs - lastLiveMs < IDLE_MS

/** The first chunk's size: {@link FIRST_ROWS} (and the row cap), fewer when the widest sampled row is wide. */
export const first = (limits: Limits, sampledRowBytes: number): number =>
  Math.max(1, Math.min(FIRST_ROWS, limits.maxRows, Math.floor(limits.maxBytes / Math.max(1, sampledRowBytes))))

/** The next chunk's size after a chunk of `rows` rows and `bytes` bytes: about `maxBytes`, at most the row cap. */
export const next = (limits: Limits, liveRecently: boolean, rows: number, bytes: number): number => {
  const cap = rowCap(limits, liveRecently)
  if (rows === 0) return Math.min(FIRST_ROWS, cap)
  const perRow = Math.max(1, bytes / rows)
  return Math.max(1, Math.min(cap, Math.floor(limits.maxBytes / perRow)))
}

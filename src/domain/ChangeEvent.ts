/**
 * A change decoded from the replication stream, as it travels from the reader to Kinesis.
 *
 * Both decoders (wal2json, pgoutput) produce this shape. `body` is the change's JSON as wal2json
 * format-version 2 produced it (or as the pgoutput decoder rendered it in that same shape) with the
 * record's place in commit order, `"commit_lsn"` and `"commit_idx"`, added at its start: it becomes
 * the Kinesis record's data unchanged.
 *
 * The event is also what travels through the pipeline, with no wrapper object per change: its
 * last fields ({@link pipelineSlots}) are the pipeline's, set as the change is registered and
 * published. Decoders create events with those fields present and unset, so that setting them
 * changes no object's shape (adding a field to an object V8 made without it allocates).
 */
import * as Lsn from "./Lsn.ts"

/**
 * I insert, U update, D delete, T truncate, M logical message, R a row read by a backfill (shaped
 * like an insert); B and C are transaction boundaries (begin, commit), which drive acknowledgement
 * and are not published. BEGIN and COMMIT are the published transaction records
 * (PUBLISH_TRANSACTION_RECORDS; their bodies say "B" and "C").
 */
export type Action = "I" | "U" | "D" | "T" | "M" | "R" | "B" | "C" | "BEGIN" | "COMMIT"

export interface ChangeEvent {
  /** Position of this message in the WAL (the XLogData start). */
  readonly lsn: Lsn.Lsn
  /**
   * For a commit (C): the end LSN of the transaction, the position to confirm once every change of
   * the transaction is handled. For every other action: equal to `lsn`.
   */
  readonly ackLsn: Lsn.Lsn
  readonly xid: number | undefined
  /**
   * The LSN of the transaction's commit record (for a non-transactional message, the message's own
   * LSN). With `commitIdx` it is the record's place in commit order, the same whichever plugin.
   */
  readonly commitLsn: Lsn.Lsn
  /** 0-based index of the record among its transaction's published records; -1 for B and C. */
  readonly commitIdx: number
  readonly action: Action
  /** "" for B, C and M. */
  readonly schema: string
  readonly table: string
  /**
   * The primary-key values, rendered deterministically (a JSON array, in key-column order);
   * `undefined` when the table has no primary key or the action carries no row (T, M, B, C).
   */
  readonly pk: string | undefined
  /** Commit time of the transaction, epoch milliseconds, when the decoder knows it. */
  readonly commitTimeMs: number | undefined
  /** The record body: JSON bytes. Empty for B and C. */
  readonly body: Uint8Array
  /**
   * Set for a change that was over the per-record limit when read (its bytes were dropped as they
   * arrived; `body` is empty): its size. OVERSIZED_RECORD_POLICY decides about it.
   */
  readonly oversizedBytes?: number | undefined
  /**
   * Set for a message the decoder could not read as JSON even after repairing what wal2json is
   * known to write wrongly (`body` is empty): its size. It is always dropped, logged and counted.
   */
  readonly unreadableBytes?: number | undefined

  // The pipeline's slots (mutable; unset until the pipeline sets them).
  /** The Kinesis partition key: set by the publisher when it takes the change. */
  partitionKey?: string | undefined
  /** What counts against the record and request limits (data plus partition key, bytes): set with the key. */
  recordBytes?: number | undefined
  /** When the publisher took the change (ms since the publisher started), for the linger. */
  arrivedAt?: number | undefined
  /** The frontier's bookkeeping for the read the change was registered with (see Frontier). */
  frontierBlock?: object | undefined
  /** The change's place among the publishable changes of that read. */
  frontierIndex?: number | undefined
}

/** The pipeline's fields of an event, which decoders create present and unset. */
export const pipelineSlots = ["partitionKey", "recordBytes", "arrivedAt", "frontierBlock", "frontierIndex"] as const

/** Whether an event is published to Kinesis (B and C only drive acknowledgement). */
export const isPublishable = (event: ChangeEvent): boolean => event.action !== "B" && event.action !== "C"

/** Whether an event is a published transaction record (BEGIN or COMMIT). */
export const isTransactionRecord = (event: ChangeEvent): boolean => event.action === "BEGIN" || event.action === "COMMIT"

/** A record's place in commit order as text: `commit_lsn:commit_idx` (unique per record). */
export const position = (event: ChangeEvent): string => `${Lsn.format(event.commitLsn)}:${event.commitIdx}`

/** `schema.table`, the name used in logs and partition keys. */
export const qualifiedTable = (event: ChangeEvent): string => `${event.schema}.${event.table}`

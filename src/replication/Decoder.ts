/**
 * The decoder contract: turns the XLogData payloads of one read into change events. The wal2json
 * and pgoutput decoders implement it; nothing else in the pipeline knows which plugin is in use.
 */
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import type { Lsn } from "../domain/Lsn.ts"
import type { DecodeError } from "../Errors.ts"
import type * as Result from "effect/Result"

/**
 * One XLogData message: its WAL start position and its payload, a view of the reader's read buffer
 * that stays valid while referenced (wal2json's decoder copies it into the record body, behind the
 * record's position).
 */
export interface WalMessage {
  readonly lsn: Lsn
  readonly data: Uint8Array
  /**
   * Set when the message was over the per-record limit and dropped as it arrived: its size in
   * bytes. `data` then holds only its first bytes, enough to say what it was (action, table); the
   * decoder turns it into an event with the same `oversizedBytes` and an empty body.
   */
  readonly oversizedBytes?: number | undefined
}

/**
 * A decoder, possibly stateful (pgoutput caches relations). `decode` handles a whole read at once
 * and fails on the first message it cannot read, naming that message's LSN.
 */
export interface Decoder {
  readonly plugin: "wal2json" | "pgoutput"
  /** The START_REPLICATION options clause, e.g. `("format-version" '2', ...)`. */
  readonly startOptions: string
  readonly decode: (messages: ReadonlyArray<WalMessage>) => Result.Result<ReadonlyArray<ChangeEvent>, DecodeError>
}

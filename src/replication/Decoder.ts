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
 * A message as the reader makes it: its payload is `bytes[start, end)`, bytes of the socket read it
 * came in. `data`, a view of them, is made only when asked for: both decoders read `bytes`
 * directly, sparing a typed array per message (a message that is not a ReadMessage, as tests and
 * oversized heads give, is read from its `data`).
 */
export class ReadMessage implements WalMessage {
  readonly lsn: Lsn
  readonly bytes: Uint8Array
  readonly start: number
  readonly end: number
  readonly oversizedBytes: undefined
  constructor(lsn: Lsn, bytes: Uint8Array, start: number, end: number) {
    this.lsn = lsn
    this.bytes = bytes
    this.start = start
    this.end = end
    this.oversizedBytes = undefined
  }
  get data(): Uint8Array {
    return this.bytes.subarray(this.start, this.end)
  }
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

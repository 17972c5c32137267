/**
 * The byte-level pieces of the replication protocol that `@effect/sql-pg`'s PgProtocol does not
 * provide: frontend Query / CopyData / CopyDone messages, the layout of the XLogData and
 * primary-keepalive frames the walsender sends inside CopyData (type bytes, header sizes, 64-bit
 * fields; the reader parses them in place), and the standby status update we send back.
 *
 * Everything here is pure and allocation-light: the reader calls it once per frame.
 */
import type { Lsn } from "../domain/Lsn.ts"

const textEncoder = new TextEncoder()

/** Frontend message type bytes. */
const QUERY = 0x51 // 'Q'
const COPY_DATA = 0x64 // 'd'
const COPY_DONE = 0x63 // 'c'

/** CopyData payload type bytes of the streaming replication sub-protocol. */
export const XLOG_DATA = 0x77 // 'w'
export const PRIMARY_KEEPALIVE = 0x6b // 'k'
export const STANDBY_STATUS_UPDATE = 0x72 // 'r'

/** XLogData: 'w', WAL start, WAL end, send time; the message payload follows. */
export const XLOG_DATA_HEADER_BYTES = 25
/** Primary keepalive: 'k', WAL end, send time, reply-requested flag. */
export const KEEPALIVE_BYTES = 18
/** Standby status update payload: 'r', write, flush, apply, clock, reply-requested flag. */
export const STATUS_UPDATE_BYTES = 34

/** Milliseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01T00:00:00Z). */
const POSTGRES_EPOCH_UNIX_MS = 946_684_800_000

/** A time as PostgreSQL's replication protocol writes it: microseconds since 2000-01-01 UTC. */
export const postgresMicros = (unixMillis: number): bigint => BigInt(Math.round(unixMillis - POSTGRES_EPOCH_UNIX_MS)) * 1000n

/** The Unix time in milliseconds of a PostgreSQL-epoch microsecond timestamp. */
export const unixMillis = (postgresMicros: bigint): number => Number(postgresMicros / 1000n) + POSTGRES_EPOCH_UNIX_MS

/** Reads a big-endian unsigned 32-bit integer. */
export const readUint32 = (bytes: Uint8Array, offset: number): number =>
  ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0

/** Where 64-bit values are put together: one bigint allocated per read instead of four, ~3× faster. */
const scratch = new DataView(new ArrayBuffer(8))

/** The unsigned 64-bit integer with these 32-bit halves. */
export const uint64Of = (high: number, low: number): bigint => {
  scratch.setUint32(0, high)
  scratch.setUint32(4, low)
  return scratch.getBigUint64(0)
}

/** Reads a big-endian unsigned 64-bit integer. */
export const readUint64 = (bytes: Uint8Array, offset: number): bigint =>
  uint64Of(readUint32(bytes, offset), readUint32(bytes, offset + 4))

const writeUint64 = (view: DataView, offset: number, value: bigint): void => {
  view.setBigUint64(offset, BigInt.asUintN(64, value))
}

/** A simple-protocol `Query` message. */
export const encodeQuery = (sql: string): Uint8Array => {
  const text = textEncoder.encode(sql)
  const out = new Uint8Array(1 + 4 + text.length + 1)
  const view = new DataView(out.buffer)
  out[0] = QUERY
  view.setInt32(1, 4 + text.length + 1)
  out.set(text, 5)
  // the trailing NUL is already zero
  return out
}

/** A frontend `CopyData` message carrying `payload`. */
export const encodeCopyData = (payload: Uint8Array): Uint8Array => {
  const out = new Uint8Array(1 + 4 + payload.length)
  out[0] = COPY_DATA
  new DataView(out.buffer).setInt32(1, 4 + payload.length)
  out.set(payload, 5)
  return out
}

/** A frontend `CopyDone` message: the client ends the COPY stream. */
export const encodeCopyDone = (): Uint8Array => Uint8Array.of(COPY_DONE, 0, 0, 0, 4)

/** What a standby status update reports. */
export interface StatusUpdate {
  readonly write: Lsn
  readonly flush: Lsn
  readonly apply: Lsn
  /** Client clock, microseconds since 2000-01-01. */
  readonly clock: bigint
  readonly replyRequested: boolean
}

/** A standby status update, wrapped in the frontend CopyData message that carries it. */
export const encodeStatusUpdate = (status: StatusUpdate): Uint8Array => {
  const out = new Uint8Array(5 + STATUS_UPDATE_BYTES)
  const view = new DataView(out.buffer)
  out[0] = COPY_DATA
  view.setInt32(1, 4 + STATUS_UPDATE_BYTES)
  out[5] = STANDBY_STATUS_UPDATE
  writeUint64(view, 6, status.write)
  writeUint64(view, 14, status.flush)
  writeUint64(view, 22, status.apply)
  writeUint64(view, 30, status.clock)
  out[38] = status.replyRequested ? 1 : 0
  return out
}

/** Decodes a standby status update payload (the bytes after the CopyData header); for tests and tools. */
export const decodeStatusUpdate = (payload: Uint8Array): StatusUpdate | undefined =>
  payload[0] !== STANDBY_STATUS_UPDATE || payload.length < STATUS_UPDATE_BYTES ? undefined : {
    write: readUint64(payload, 1),
    flush: readUint64(payload, 9),
    apply: readUint64(payload, 17),
    clock: readUint64(payload, 25),
    replyRequested: payload[33] === 1
  }

/**
 * Splits the backend byte stream of a PostgreSQL connection into messages (type byte, int32 length,
 * body), per socket read, without ever holding a change larger than the per-record limit whole.
 *
 * Bodies are views of the reader's buffers, not copies: like `@effect/sql-pg`'s parser, a full
 * buffer is replaced, never compacted, so bytes handed out stay valid for as long as they are
 * referenced (the replication reader makes them record bodies as they are). Buffers grow by
 * doubling up to 64 KiB; a single message larger than that gets a buffer of its own size.
 *
 * While `discardAbove` is set (the CopyBoth phase of a replication connection), a CopyData carrying
 * an XLogData whose message is longer than it, and which is a change or a logical message (see
 * {@link isDiscardable}), is not buffered: once its first {@link HEAD_BYTES} bytes are in, they are
 * kept and every later byte is dropped as it arrives; when its last byte has passed, `onOversized`
 * gets the head and the message's size.
 */

export interface FrameSink {
  /** A complete message: its type byte and body (a view, valid for as long as it is held). */
  readonly onMessage: (type: number, body: Uint8Array) => void
  /**
   * An XLogData message over `discardAbove` whose bytes were dropped: `head` is the start of the
   * CopyData body (the 25-byte XLogData header, then the message's first bytes); `bytes` is the
   * size of the whole message after the header.
   */
  readonly onOversized: (head: Uint8Array, bytes: number) => void
}

export interface FrameReader {
  /** Splits one socket read; calls the sink synchronously for every message it completes. */
  readonly push: (chunk: Uint8Array, sink: FrameSink) => void
  /** XLogData messages longer than this may be dropped (Infinity: never). */
  discardAbove: number
}

/** The bytes of an oversized CopyData body kept to identify it: XLogData header plus 2 KiB. */
export const HEAD_BYTES = 25 + 2048

const COPY_DATA = 0x64 // 'd'
const XLOG_DATA = 0x77 // 'w'
const XLOG_DATA_HEADER_BYTES = 25
/** Where a buffer pool stops growing. */
const MAX_POOL_BYTES = 64 * 1024

/**
 * Whether an XLogData message may be dropped when over the limit: a wal2json message (a JSON
 * object: every one of them is a record) or a pgoutput Insert, Update, Delete or logical Message.
 * Everything else pgoutput sends (Begin, Commit, Relation, Type, Origin, Truncate) is small and
 * needed to decode what follows, so it is never dropped.
 */
export const isDiscardable = (firstByte: number | undefined): boolean =>
  firstByte === 0x7b /* { */ || firstByte === 0x49 /* I */ || firstByte === 0x55 /* U */ ||
  firstByte === 0x44 /* D */ || firstByte === 0x4d /* M */

export class ProtocolError extends Error {}

export const make = (): FrameReader => {
  let poolSize = 8192
  let buffer = new Uint8Array(poolSize)
  let start = 0
  let end = 0
  /** Bytes of a dropped message still to come, and what identifies it. */
  let skipping = 0
  let oversizedHead: Uint8Array | undefined
  let oversizedBytes = 0

  const append = (chunk: Uint8Array, from: number): void => {
    const length = chunk.length - from
    if (end + length > buffer.length) {
      const pending = end - start
      if (poolSize < MAX_POOL_BYTES) poolSize *= 2
      let capacity = poolSize
      while (capacity < pending + length) capacity *= 2
      const next = new Uint8Array(capacity)
      next.set(buffer.subarray(start, end))
      buffer = next
      start = 0
      end = pending
    }
    buffer.set(from === 0 ? chunk : chunk.subarray(from), end)
    end += length
  }

  const reader: FrameReader = {
    discardAbove: Number.POSITIVE_INFINITY,
    push: (chunk, sink) => {
      let from = 0
      if (skipping > 0) {
        const dropped = Math.min(skipping, chunk.length)
        skipping -= dropped
        from = dropped
        if (skipping > 0) return
        const head = oversizedHead!
        oversizedHead = undefined
        sink.onOversized(head, oversizedBytes)
        if (from === chunk.length) return
      }
      append(chunk, from)
      while (end - start >= 5) {
        const length = ((buffer[start + 1]! << 24) | (buffer[start + 2]! << 16) | (buffer[start + 3]! << 8) | buffer[start + 4]!) >>> 0
        if (length < 4 || length > 0x7fffffff) throw new ProtocolError(`invalid message length ${length}`)
        const type = buffer[start]!
        const total = 1 + length
        const bodyStart = start + 5
        if (
          type === COPY_DATA && length - 4 - XLOG_DATA_HEADER_BYTES > reader.discardAbove
        ) {
          // wait until the head is in (small), then decide
          const headLength = Math.min(HEAD_BYTES, length - 4)
          if (end - bodyStart < headLength) break
          if (buffer[bodyStart] === XLOG_DATA && isDiscardable(buffer[bodyStart + XLOG_DATA_HEADER_BYTES])) {
            const head = buffer.slice(bodyStart, bodyStart + headLength)
            const bytes = length - 4 - XLOG_DATA_HEADER_BYTES
            const available = end - start
            if (available >= total) {
              start += total
              sink.onOversized(head, bytes)
              continue
            }
            // drop what is buffered of it and the rest as it arrives
            skipping = total - available
            oversizedHead = head
            oversizedBytes = bytes
            start = end
            return
          }
        }
        if (end - start < total) break
        start += total
        sink.onMessage(type, buffer.subarray(bodyStart, start))
      }
    }
  }
  return reader
}

/**
 * Splits the backend byte stream of a PostgreSQL connection into messages (type byte, int32 length,
 * body), per socket read, without ever holding a change larger than the per-record limit whole.
 *
 * Bodies are not copied: a message wholly inside one read is handed out as a view of that read, and
 * only a message split across reads is copied, into the reader's own buffer, which (like
 * `@effect/sql-pg`'s parser's) is replaced when full, never compacted, so bytes handed out stay
 * valid for as long as they are referenced. That buffer grows by doubling up to 64 KiB; a single
 * message larger than that gets a buffer of its own size. The sink gets a message as its buffer
 * and the body's range, so no view object is made for a message the sink does not keep.
 *
 * While `discardAbove` is set (the CopyBoth phase of a replication connection), a CopyData carrying
 * an XLogData whose message is longer than it, and which is a change or a logical message (see
 * {@link isDiscardable}), is not buffered: once its first {@link HEAD_BYTES} bytes are in, they are
 * kept and every later byte is dropped as it arrives; when its last byte has passed, `onOversized`
 * gets the head and the message's size.
 */

export interface FrameSink {
  /**
   * A complete message: its type byte and its body, `bytes[start, end)`; the 5-byte header (type
   * and length) is at `bytes[start - 5, start)`. `bytes` is a pushed read or the reader's own
   * buffer, valid for as long as it is held.
   */
  readonly onMessage: (type: number, bytes: Uint8Array, start: number, end: number) => void
  /**
   * An XLogData message over `discardAbove` whose bytes were dropped: `head` is the start of the
   * CopyData body (the 25-byte XLogData header, then the message's first bytes); `bytes` is the
   * size of the whole message after the header.
   */
  readonly onOversized: (head: Uint8Array, bytes: number) => void
}

export interface FrameReader {
  /**
   * Splits one socket read; calls the sink synchronously for every message it completes. The read
   * must never be written over afterwards (a socket's reads are fresh buffers): messages wholly
   * inside it are handed out as views of it.
   */
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

/** The message length field at `at` (the int32 after the type byte; it counts itself). */
const lengthAt = (bytes: Uint8Array, at: number): number =>
  ((bytes[at + 1]! << 24) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!) >>> 0

export const make = (): FrameReader => {
  let poolSize = 8192
  /** The reader's own buffer: only the bytes of a message split across reads are copied into it. */
  let buffer = new Uint8Array(poolSize)
  let start = 0
  let end = 0
  /** Bytes of a dropped message still to come, and what identifies it. */
  let skipping = 0
  let oversizedHead: Uint8Array | undefined
  let oversizedBytes = 0

  const append = (chunk: Uint8Array, from: number, to: number): void => {
    const length = to - from
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
    buffer.set(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to), end)
    end += length
  }

  /**
   * Hands every complete message of `bytes[from, to)` to the sink; returns where the first
   * incomplete one starts, or `to` when a dropped message runs past it (then `skipping` is set).
   */
  const parse = (bytes: Uint8Array, from: number, to: number, sink: FrameSink): number => {
    let at = from
    while (to - at >= 5) {
      const length = lengthAt(bytes, at)
      if (length < 4 || length > 0x7fffffff) throw new ProtocolError(`invalid message length ${length}`)
      const type = bytes[at]!
      const total = 1 + length
      const bodyStart = at + 5
      if (type === COPY_DATA && length - 4 - XLOG_DATA_HEADER_BYTES > reader.discardAbove) {
        // wait until the head is in (small), then decide
        const headLength = Math.min(HEAD_BYTES, length - 4)
        if (to - bodyStart < headLength) break
        if (bytes[bodyStart] === XLOG_DATA && isDiscardable(bytes[bodyStart + XLOG_DATA_HEADER_BYTES])) {
          const head = bytes.slice(bodyStart, bodyStart + headLength)
          const size = length - 4 - XLOG_DATA_HEADER_BYTES
          if (to - at >= total) {
            at += total
            sink.onOversized(head, size)
            continue
          }
          // drop what is here of it and the rest as it arrives
          skipping = total - (to - at)
          oversizedHead = head
          oversizedBytes = size
          return to
        }
      }
      if (to - at < total) break
      at += total
      sink.onMessage(type, bytes, bodyStart, at)
    }
    return at
  }

  /** How many more bytes the message at the start of the reader's buffer needs before `parse` can act on it. */
  const needed = (): number => {
    const buffered = end - start
    if (buffered < 5) return 5 - buffered
    const length = lengthAt(buffer, start)
    if (buffer[start] === COPY_DATA && length - 4 - XLOG_DATA_HEADER_BYTES > reader.discardAbove) {
      const headLength = 5 + Math.min(HEAD_BYTES, length - 4)
      if (buffered < headLength) return headLength - buffered
    }
    return Math.max(1, 1 + length - buffered)
  }

  const reader: FrameReader = {
    discardAbove: Number.POSITIVE_INFINITY,
    push: (chunk, sink) => {
      const size = chunk.length
      let from = 0
      for (;;) {
        if (skipping > 0) {
          const dropped = Math.min(skipping, size - from)
          skipping -= dropped
          from += dropped
          if (skipping > 0) return
          const head = oversizedHead!
          oversizedHead = undefined
          sink.onOversized(head, oversizedBytes)
        }
        if (from === size) return
        if (end > start) {
          // a message begun in an earlier read: complete it in the reader's buffer, no further
          const count = Math.min(needed(), size - from)
          append(chunk, from, from + count)
          from += count
          start = parse(buffer, start, end, sink)
          continue
        }
        // whole messages are handed out as views of the read itself; the incomplete last one is copied
        from = parse(chunk, from, size, sink)
        if (skipping > 0) continue
        if (from < size) append(chunk, from, size)
        return
      }
    }
  }
  return reader
}

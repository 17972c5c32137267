/**
 * Record bodies of one decoded batch, written as bytes: each body is appended to a scratch buffer
 * the writer keeps between batches, then `finish` copies them all into one new buffer of their
 * exact size and returns a view of it per body. One allocation per batch, not per record; the
 * queue counts that buffer whole while any body is held (as with {@link RecordBodies}).
 *
 * JSON strings are escaped byte by byte: `"`, `\` and bytes below 0x20 the way JSON.stringify
 * writes them (`\b \t \n \f \r`, else `\u00XX`), every other byte copied as it is.
 */

/** The scratch buffer's size at first; it doubles as needed. */
const INITIAL_BYTES = 64 * 1024
/** A scratch buffer grown past this (a batch of huge values) is let go after the batch. */
const KEEP_BYTES = 4 * 1024 * 1024

const hexDigits = "0123456789abcdef"
const upperHexDigits = "0123456789ABCDEF"

export class BodyWriter {
  private scratch: Buffer
  /** Bytes written in this batch. */
  length = 0
  /** Start and end of every body of this batch. */
  private readonly marks: Array<number> = []
  /** How many of `marks` are this batch's (the array keeps its room from batch to batch). */
  private markCount = 0

  private readonly initialBytes: number

  /** `initialBytes`: the scratch buffer's size at first (it doubles as needed). */
  constructor(initialBytes: number = INITIAL_BYTES) {
    this.initialBytes = initialBytes
    this.scratch = Buffer.allocUnsafeSlow(initialBytes)
  }

  /** Room for `bytes` more bytes. */
  ensure(bytes: number): void {
    if (this.length + bytes <= this.scratch.length) return
    let size = this.scratch.length * 2
    while (size < this.length + bytes) size *= 2
    const next = Buffer.allocUnsafeSlow(size)
    this.scratch.copy(next, 0, 0, this.length)
    this.scratch = next
  }

  byte(value: number): void {
    this.ensure(1)
    this.scratch[this.length++] = value
  }

  /** A string of characters below 0x80 (field names, numbers, positions, escaped JSON). */
  ascii(text: string): void {
    const n = text.length
    this.ensure(n)
    const out = this.scratch
    let o = this.length
    for (let i = 0; i < n; i++) out[o++] = text.charCodeAt(i)
    this.length = o
  }

  /** Any string, as UTF-8. */
  utf8(text: string): void {
    this.ensure(text.length * 3)
    this.length += this.scratch.write(text, this.length, "utf8")
  }

  /** Bytes as they are. */
  bytes(source: Uint8Array): void {
    const n = source.length
    this.ensure(n)
    const out = this.scratch
    let o = this.length
    if (n > 8) {
      out.set(source, o)
      o += n
    } else {
      for (let i = 0; i < n; i++) out[o++] = source[i]!
    }
    this.length = o
  }

  /** `source[start, end)` as they are. */
  slice(source: Uint8Array, start: number, end: number): void {
    this.ensure(end - start)
    const out = this.scratch
    let o = this.length
    for (let i = start; i < end; i++) out[o++] = source[i]!
    this.length = o
  }

  /** What `other` wrote in `[start, end)`, as it is. */
  append(other: BodyWriter, start: number, end: number): void {
    this.slice(other.scratch, start, end)
  }

  /** What was written in `[start, end)` as text, decoded as UTF-8. */
  text(start: number, end: number): string {
    return this.scratch.toString("utf8", start, end)
  }

  /** A non-negative integer in decimal. */
  decimal(value: number): void {
    if (value < 10) {
      this.byte(0x30 + value)
      return
    }
    if (value >= 1e15) {
      this.ascii(String(value))
      return
    }
    let digits = 1
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++
    this.ensure(digits)
    const out = this.scratch
    let o = this.length + digits
    this.length = o
    let rest = value
    do {
      out[--o] = 0x30 + (rest % 10)
      rest = Math.floor(rest / 10)
    } while (rest > 0)
  }

  /** A 32-bit unsigned integer in upper-case hex without leading zeros (an LSN's half). */
  upperHex(value: number): void {
    this.ensure(8)
    const out = this.scratch
    let shift = 28
    while (shift > 0 && (value >>> shift) === 0) shift -= 4
    let o = this.length
    for (; shift >= 0; shift -= 4) out[o++] = upperHexDigits.charCodeAt((value >>> shift) & 0xf)
    this.length = o
  }

  /**
   * `source[start, end)` as a JSON string, quotes included. Returns whether any byte was 0x80 or
   * above (copied as it is): the caller decides whether that is valid UTF-8.
   */
  jsonString(source: Uint8Array, start: number, end: number): boolean {
    this.ensure(end - start + 2)
    let out = this.scratch
    let o = this.length
    out[o++] = 0x22
    let high = 0
    for (let i = start; i < end; i++) {
      const byte = source[i]!
      if (byte >= 0x20 && byte !== 0x22 && byte !== 0x5c) {
        out[o++] = byte
        high |= byte
        continue
      }
      // an escape: up to 6 bytes for this one, 1 for each one left, 1 for the closing quote
      if (o + 6 + (end - i) > out.length) {
        this.length = o
        this.ensure(6 + (end - i))
        out = this.scratch
      }
      out[o++] = 0x5c
      switch (byte) {
        case 0x08: out[o++] = 0x62; break // b
        case 0x09: out[o++] = 0x74; break // t
        case 0x0a: out[o++] = 0x6e; break // n
        case 0x0c: out[o++] = 0x66; break // f
        case 0x0d: out[o++] = 0x72; break // r
        case 0x22:
        case 0x5c:
          out[o++] = byte
          break
        default:
          out[o++] = 0x75 // u00XX
          out[o++] = 0x30
          out[o++] = 0x30
          out[o++] = hexDigits.charCodeAt(byte >> 4)
          out[o++] = hexDigits.charCodeAt(byte & 0xf)
      }
    }
    out[o++] = 0x22
    this.length = o
    return (high & 0x80) !== 0
  }

  /** Forgets what was written since `mark` (a length read before). */
  rewind(mark: number): void {
    this.length = mark
  }

  /** The body written since `start` (a length read before it) is complete. */
  mark(start: number): void {
    const marks = this.marks
    const n = this.markCount
    marks[n] = start
    marks[n + 1] = this.length
    this.markCount = n + 2
  }

  /** How many bodies this batch has so far. */
  get count(): number {
    return this.markCount >> 1
  }

  /**
   * The batch's bodies, in the order they were marked, as views of one new buffer of their exact
   * size; the writer is then empty for the next batch.
   */
  finish(): Array<Uint8Array> {
    const count = this.markCount >> 1
    const bodies: Array<Uint8Array> = new Array(count)
    if (count > 0) {
      // a buffer of its own (never a slice of Node's shared pool), so the queue's accounting is exact
      const buffer = Buffer.allocUnsafeSlow(this.length).buffer
      const whole = new Uint8Array(buffer)
      whole.set(this.scratch.subarray(0, this.length))
      for (let i = 0; i < count; i++) {
        const start = this.marks[2 * i]!
        bodies[i] = new Uint8Array(buffer, start, this.marks[2 * i + 1]! - start)
      }
    }
    this.reset()
    return bodies
  }

  /** Drops everything written in this batch. */
  reset(): void {
    this.length = 0
    this.markCount = 0
    if (this.scratch.length > KEEP_BYTES) this.scratch = Buffer.allocUnsafeSlow(this.initialBytes)
  }
}

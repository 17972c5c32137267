/**
 * Writes the record bodies of one batch into one new buffer, as the decoders do: text and byte
 * ranges are written as they come into a scratch buffer (the formatter's, reused from batch to
 * batch, so nothing is allocated per piece), and `finish` copies the batch into a buffer of its
 * own, of which every body is a view. One allocation per batch, not per record. A writer must be
 * finished before the next one on the same scratch writes (formatting is synchronous, one batch
 * at a time).
 */

/** A formatter's scratch buffer; it grows as needed and is kept from batch to batch. */
export interface Scratch {
  buffer: Buffer
}

export const makeScratch = (): Scratch => ({ buffer: Buffer.allocUnsafeSlow(256 * 1024) })

export class BatchWriter {
  private readonly holder: Scratch
  constructor(holder: Scratch) {
    this.holder = holder
  }

  private offset = 0
  /** Where each record ends in the scratch buffer. */
  private readonly ends: Array<number> = []

  /** Room for `bytes` more; returns the scratch buffer to write into. */
  private ensure(bytes: number): Buffer {
    const scratch = this.holder.buffer
    if (this.offset + bytes <= scratch.length) return scratch
    const grown = Buffer.allocUnsafeSlow(Math.max(scratch.length * 2, this.offset + bytes))
    scratch.copy(grown, 0, 0, this.offset)
    this.holder.buffer = grown
    return grown
  }

  text(piece: string): void {
    const scratch = this.ensure(piece.length * 3)
    if (piece.length <= 24) {
      // short pieces (punctuation, numbers, names) by hand while they are ASCII: cheaper than a native call
      let i = 0
      for (; i < piece.length; i++) {
        const code = piece.charCodeAt(i)
        if (code >= 0x80) break
        scratch[this.offset + i] = code
      }
      if (i === piece.length) {
        this.offset += i
        return
      }
    }
    this.offset += scratch.write(piece, this.offset, "utf8")
  }

  /** A non-negative safe integer, written digit by digit. */
  integer(value: number): void {
    if (value < 0 || !Number.isSafeInteger(value)) {
      this.text(String(value))
      return
    }
    const scratch = this.ensure(16)
    let digits = 1
    for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++
    let at = this.offset + digits - 1
    let v = value
    do {
      scratch[at--] = 0x30 + (v % 10)
      v = Math.floor(v / 10)
    } while (v > 0)
    this.offset += digits
  }

  slice(piece: Uint8Array): void {
    const scratch = this.ensure(piece.length)
    scratch.set(piece, this.offset)
    this.offset += piece.length
  }

  /** Bytes `[start, end)` of `source`. */
  range(source: Uint8Array, start: number, end: number): void {
    const length = end - start
    if (length <= 0) return
    const scratch = this.ensure(length)
    if (length <= 32) {
      for (let i = 0; i < length; i++) scratch[this.offset + i] = source[start + i]!
    } else scratch.set(source.subarray(start, end), this.offset)
    this.offset += length
  }

  /** Ends the current record. */
  end(): void {
    this.ends.push(this.offset)
  }

  /** One body per ended record, in order. */
  finish(): Array<Uint8Array> {
    const total = this.ends.length === 0 ? 0 : this.ends[this.ends.length - 1]!
    // a buffer of its own (never a slice of Node's shared pool), so the queue's accounting is exact
    const buffer = Buffer.allocUnsafeSlow(total)
    this.holder.buffer.copy(buffer, 0, 0, total)
    const bodies: Array<Uint8Array> = new Array(this.ends.length)
    let start = 0
    for (let r = 0; r < this.ends.length; r++) {
      const end = this.ends[r]!
      bodies[r] = buffer.subarray(start, end)
      start = end
    }
    this.offset = 0
    this.ends.length = 0
    return bodies
  }
}

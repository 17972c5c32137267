/**
 * Writes the record bodies of one batch into one new buffer, as the decoders do: each body is a
 * sequence of text pieces and byte slices (copied as they are), and every body is a view of the
 * batch's buffer. One allocation per batch, not per record.
 */

export class BatchWriter {
  private readonly pieces: Array<string | Uint8Array> = []
  /** Index in `pieces` where each record ends. */
  private readonly ends: Array<number> = []
  /** Text not yet pushed: consecutive text is joined into one piece. */
  private pending = ""

  text(piece: string): void {
    this.pending += piece
  }

  private flush(): void {
    if (this.pending.length > 0) {
      this.pieces.push(this.pending)
      this.pending = ""
    }
  }

  slice(piece: Uint8Array): void {
    this.flush()
    this.pieces.push(piece)
  }

  /** Bytes `[start, end)` of `source`, without making a view of them now. */
  range(source: Uint8Array, start: number, end: number): void {
    if (end <= start) return
    this.flush()
    this.pieces.push(new Uint8Array(source.buffer, source.byteOffset + start, end - start))
  }

  /** Ends the current record. */
  end(): void {
    this.flush()
    this.ends.push(this.pieces.length)
  }

  /** One body per ended record, in order. */
  finish(): Array<Uint8Array> {
    let total = 0
    for (const piece of this.pieces) total += typeof piece === "string" ? Buffer.byteLength(piece, "utf8") : piece.length
    // a buffer of its own (never a slice of Node's shared pool), so the queue's accounting is exact
    const buffer = Buffer.allocUnsafeSlow(total)
    const bodies: Array<Uint8Array> = new Array(this.ends.length)
    let offset = 0
    let p = 0
    for (let r = 0; r < this.ends.length; r++) {
      const start = offset
      for (const end = this.ends[r]!; p < end; p++) {
        const piece = this.pieces[p]!
        if (typeof piece === "string") offset += buffer.write(piece, offset, "utf8")
        else {
          buffer.set(piece, offset)
          offset += piece.length
        }
      }
      bodies[r] = buffer.subarray(start, offset)
    }
    return bodies
  }
}

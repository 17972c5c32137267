/**
 * Record bodies of one decoded batch, written into one new buffer. A body is a text prefix followed
 * by bytes copied as they are: a server payload keeps its bytes (never re-serialized) behind the
 * record's position, spliced in after its opening `{`; a body the decoder rendered is all prefix.
 * One allocation per batch, not per record; every body is a view of that buffer, which the queue
 * counts whole while any of them is held. {@link writeAll} writes a list of {@link Part}s; a
 * {@link Batch} writes the same bodies with a spliced payload's position written as bytes.
 */
import * as Lsn from "../domain/Lsn.ts"

export interface Part {
  /** Text written first: ASCII only (positions, action names, numbers, escaped JSON). */
  readonly prefix: string
  /** Bytes copied after the prefix. */
  readonly rest: Uint8Array | undefined
}

/** `{"commit_lsn":"…","commit_idx":…,` — the start of every record body, before the plugin's fields. */
export const positionPrefix = (commitLsnText: string, commitIdx: number): string =>
  `{"commit_lsn":"${commitLsnText}","commit_idx":${commitIdx},`

/** The body parts of a server payload (a JSON object) with the position spliced in after its `{`. */
export const splice = (commitLsn: Lsn.Lsn | string, commitIdx: number, payload: Uint8Array): Part => ({
  prefix: positionPrefix(typeof commitLsn === "string" ? commitLsn : Lsn.format(commitLsn), commitIdx),
  rest: payload.subarray(1)
})

/** Writes every part into one buffer; returns one body per part, in order. */
export const writeAll = (parts: ReadonlyArray<Part>): Array<Uint8Array> => {
  let total = 0
  for (const part of parts) total += part.prefix.length + (part.rest?.length ?? 0)
  // a buffer of its own (never a slice of Node's shared pool), so the queue's accounting is exact
  const buffer = Buffer.allocUnsafeSlow(total)
  const bodies: Array<Uint8Array> = new Array(parts.length)
  let offset = 0
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    const start = offset
    offset += buffer.write(part.prefix, offset, "latin1")
    if (part.rest !== undefined) {
      buffer.set(part.rest, offset)
      offset += part.rest.length
    }
    bodies[i] = buffer.subarray(start, offset)
  }
  return bodies
}

const positionStart = `{"commit_lsn":"`
const positionMiddle = `","commit_idx":`

/** Writes the characters (all below 0x80) of `text` at `o`; returns the index after them. */
const writeAscii = (out: Uint8Array, o: number, text: string): number => {
  for (let i = 0; i < text.length; i++) out[o++] = text.charCodeAt(i)
  return o
}

/** The number of decimal digits of a non-negative integer. */
const digitsOf = (n: number): number => {
  let digits = 1
  while (n >= 10) {
    n = Math.floor(n / 10)
    digits++
  }
  return digits
}

/** What a body is written for: an event, whose `body` {@link Batch.write} sets. */
export interface Target {
  body: Uint8Array
}

/**
 * The bodies of one batch as a decoder adds them, each for its {@link Target}, written by
 * {@link Batch.write} into one new buffer: a server payload, `[start, end)` of the bytes it came in,
 * behind its record's position (written as bytes: no text and no view made per record), or a
 * {@link Part}. Every body is a plain Uint8Array view of that buffer. Reused batch after batch by
 * one decoder (its lists keep their room); holds nothing once written or cleared.
 */
export class Batch {
  private count = 0
  private readonly targets: Array<Target | undefined> = []
  /** Per body: the position's LSN text (a spliced payload), else undefined. */
  private readonly lsnTexts: Array<string | undefined> = []
  /** Per body: the position's index (a spliced payload), else the part's prefix. */
  private readonly idxOrPrefix: Array<number | string> = []
  /** Per body: the bytes copied after the prefix (a payload's from `starts` to `ends`). */
  private readonly rests: Array<Uint8Array | undefined> = []
  private readonly starts: Array<number> = []
  private readonly ends: Array<number> = []

  /** Forgets the bodies added since the last write (a batch that failed to decode). */
  clear(): void {
    const n = this.count
    this.targets.fill(undefined, 0, n)
    this.lsnTexts.fill(undefined, 0, n)
    this.idxOrPrefix.fill(0, 0, n)
    this.rests.fill(undefined, 0, n)
    this.count = 0
  }

  private add(target: Target, lsnText: string | undefined, idxOrPrefix: number | string, rest: Uint8Array | undefined, start: number, end: number): void {
    const i = this.count++
    this.targets[i] = target
    this.lsnTexts[i] = lsnText
    this.idxOrPrefix[i] = idxOrPrefix
    this.rests[i] = rest
    this.starts[i] = start
    this.ends[i] = end
  }

  /**
   * The body of the server payload `[start, end)` of `bytes` (a JSON object) with the position
   * spliced in after its `{`, as {@link splice}.
   */
  spliced(target: Target, commitLsnText: string, commitIdx: number, bytes: Buffer, start: number, end: number): void {
    this.add(target, commitLsnText, commitIdx, bytes, start, end)
  }

  /** A body of text (written as latin1) then bytes, as {@link writeAll} writes a {@link Part}. */
  part(target: Target, prefix: string, rest: Uint8Array | undefined): void {
    this.add(target, undefined, prefix, rest, 0, rest?.length ?? 0)
  }

  /** Writes every body added since the last write into one new buffer and gives each its target, in order. */
  write(): void {
    const { lsnTexts, idxOrPrefix, rests, starts, ends, targets } = this
    const count = this.count
    if (count === 0) return
    let total = 0
    for (let i = 0; i < count; i++) {
      const lsnText = lsnTexts[i]
      const length = ends[i]! - starts[i]!
      if (lsnText !== undefined) {
        // `{"commit_lsn":"…","commit_idx":…,` then the payload without its `{`
        total += positionStart.length + lsnText.length + positionMiddle.length + digitsOf(idxOrPrefix[i] as number) + length
      } else total += (idxOrPrefix[i] as string).length + length
    }
    // a buffer of its own (never a slice of Node's shared pool), so the queue's accounting is exact
    const buffer = Buffer.allocUnsafeSlow(total)
    const arrayBuffer = buffer.buffer
    let o = 0
    for (let i = 0; i < count; i++) {
      const begin = o
      const lsnText = lsnTexts[i]
      const rest = rests[i]
      const start = starts[i]!
      const length = ends[i]! - start
      if (lsnText !== undefined) {
        o = writeAscii(buffer, o, positionStart)
        o = writeAscii(buffer, o, lsnText)
        o = writeAscii(buffer, o, positionMiddle)
        let idx = idxOrPrefix[i] as number
        const end = o + digitsOf(idx)
        for (let d = end - 1; d >= o; d--) {
          buffer[d] = 0x30 + (idx % 10)
          idx = Math.floor(idx / 10)
        }
        // the payload in place, its `{` then overwritten by the position's closing `,`
        // natively, without a view of the bytes
        ;(rest as Buffer).copy(buffer, end, start, start + length)
        buffer[end] = 0x2c
        o = end + length
      } else {
        o += buffer.write(idxOrPrefix[i] as string, o, "latin1")
        if (rest !== undefined) {
          buffer.set(rest, o)
          o += length
        }
      }
      targets[i]!.body = new Uint8Array(arrayBuffer, begin, o - begin)
    }
    this.clear()
  }
}

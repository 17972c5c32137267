/**
 * Record bodies of one decoded batch, written into one new buffer. A body is a text prefix followed
 * by bytes copied as they are: a server payload keeps its bytes (never re-serialized) behind the
 * record's position, spliced in after its opening `{`; a body the decoder rendered is all prefix.
 * One allocation per batch, not per record; every body is a view of that buffer, which the queue
 * counts whole while any of them is held.
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

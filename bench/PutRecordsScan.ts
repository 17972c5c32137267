/**
 * The records of a PutRecords request body (AWS JSON 1.1), read without `JSON.parse` when the body is
 * written as the service writes it: `{` members (StreamName or StreamARN, Records) with no whitespace
 * and no escapes, each record `{"Data":"<base64>","PartitionKey":"…"}`, the base64 of a length a
 * multiple of 4 ending in at most two `=`. Each record's decoded size follows from its base64 length
 * and padding; its data is decoded only as far as asked. Any other body gives undefined: the caller
 * then parses it. The base64 characters themselves are not checked (every SDK and the service write
 * canonical base64): a body whose Data holds other characters is measured by its length, where the
 * parse would decode it leniently.
 */

/** One record of a scanned body: where its base64 sits in the body, and its key. */
export interface ScannedRecords {
  readonly streamName: string | undefined
  readonly streamArn: string | undefined
  readonly partitionKeys: Array<string>
  /** Decoded data size of each record. */
  readonly dataBytes: Array<number>
  /** Offsets of each record's base64 text in the body (start inclusive, end exclusive). */
  readonly starts: Array<number>
  readonly ends: Array<number>
}

const QUOTE = 0x22
const COMMA = 0x2c
const OPEN = 0x7b
const CLOSE = 0x7d
const CLOSE_LIST = 0x5d
const EQUALS = 0x3d
const BACKSLASH = 0x5c

/** Value of each base64 alphabet byte, -1 for any other. */
const SEXTET = new Int8Array(256).fill(-1)
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => {
  SEXTET[c.charCodeAt(0)] = i
})

const ascii = (text: string): Buffer => Buffer.from(text, "latin1")
const RECORD_HEAD = ascii(`{"Data":"`)
const KEY_FIELD = ascii(`","PartitionKey":"`)
const STREAM_NAME = ascii(`"StreamName":"`)
const STREAM_ARN = ascii(`"StreamARN":"`)
const RECORDS = ascii(`"Records":[`)

const at = (body: Buffer, offset: number, fragment: Buffer): boolean => {
  if (offset + fragment.length > body.length) return false
  for (let i = 0; i < fragment.length; i++) if (body[offset + i] !== fragment[i]) return false
  return true
}

/**
 * The end (offset of the closing quote) of a JSON string whose text starts at `start`, or -1 when it
 * has a control character (invalid JSON: left to the parser) or no end. Escapes are excluded up front.
 */
const stringEnd = (body: Buffer, start: number): number => {
  for (let i = start; i < body.length; i++) {
    const c = body[i]!
    if (c === QUOTE) return i
    if (c < 0x20) return -1
  }
  return -1
}

const textOf = (body: Buffer, start: number, end: number): string => {
  for (let i = start; i < end; i++) if (body[i]! >= 0x80) return body.toString("utf8", start, end)
  return body.toString("latin1", start, end)
}

/** The records of `body` when it has the expected shape; undefined when it must be parsed. */
export const scanPutRecords = (body: Buffer): ScannedRecords | undefined => {
  if (body.indexOf(BACKSLASH) >= 0 || body[0] !== OPEN) return undefined
  let streamName: string | undefined
  let streamArn: string | undefined
  let records: ScannedRecords | undefined
  let i = 1
  for (;;) {
    if (at(body, i, STREAM_NAME) || at(body, i, STREAM_ARN)) {
      const isName = body[i + 7] === 0x4e // the N of StreamName
      const start = i + (isName ? STREAM_NAME.length : STREAM_ARN.length)
      const end = stringEnd(body, start)
      if (end < 0) return undefined
      const text = textOf(body, start, end)
      if (isName) {
        if (streamName !== undefined) return undefined
        streamName = text
      } else {
        if (streamArn !== undefined) return undefined
        streamArn = text
      }
      i = end + 1
    } else if (at(body, i, RECORDS)) {
      if (records !== undefined) return undefined
      const partitionKeys: Array<string> = []
      const dataBytes: Array<number> = []
      const starts: Array<number> = []
      const ends: Array<number> = []
      i += RECORDS.length
      if (body[i] === CLOSE_LIST) i++
      else {
        for (;;) {
          if (!at(body, i, RECORD_HEAD)) return undefined
          const start = i + RECORD_HEAD.length
          // the base64 text is not checked character by character (that loop cost as much as
          // JSON.parse and a full decode): only its length, padding and end
          const j = body.indexOf(QUOTE, start)
          if (j < 0 || (j - start) % 4 !== 0 || !at(body, j, KEY_FIELD)) return undefined
          const pad = j - start === 0 ? 0 : body[j - 1] !== EQUALS ? 0 : body[j - 2] !== EQUALS ? 1 : 2
          if (pad > 0 && SEXTET[body[j - pad - 1]!]! < 0) return undefined
          const keyStart = j + KEY_FIELD.length
          const keyEnd = stringEnd(body, keyStart)
          if (keyEnd < 0 || body[keyEnd + 1] !== CLOSE) return undefined
          partitionKeys.push(textOf(body, keyStart, keyEnd))
          dataBytes.push(((j - start) / 4) * 3 - pad)
          starts.push(start)
          ends.push(j)
          i = keyEnd + 2
          if (body[i] === COMMA) i++
          else if (body[i] === CLOSE_LIST) {
            i++
            break
          } else return undefined
        }
      }
      records = { streamName: undefined, streamArn: undefined, partitionKeys, dataBytes, starts, ends }
    } else return undefined
    if (body[i] === COMMA) i++
    else if (body[i] === CLOSE && i === body.length - 1) break
    else return undefined
  }
  if (records === undefined) return undefined
  return { ...records, streamName, streamArn }
}

/**
 * Decodes the canonical base64 at `body[start, end)` into `target` from its start, at most
 * `maxBytes` of it (rounded down to whole 3-byte groups unless the text ends first); returns how
 * many bytes it wrote.
 */
export const decodeBase64Head = (body: Buffer, start: number, end: number, target: Buffer, maxBytes: number): number => {
  const stop = Math.min(end, start + Math.floor(maxBytes / 3) * 4)
  let o = 0
  for (let j = start; j < stop; j += 4) {
    const a = SEXTET[body[j]!]!
    const b = SEXTET[body[j + 1]!]!
    target[o++] = (a << 2) | (b >> 4)
    if (body[j + 2] === EQUALS) break
    const c = SEXTET[body[j + 2]!]!
    target[o++] = ((b & 0x0f) << 4) | (c >> 2)
    if (body[j + 3] === EQUALS) break
    target[o++] = ((c & 0x03) << 6) | SEXTET[body[j + 3]!]!
  }
  return o
}

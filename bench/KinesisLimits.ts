/**
 * The checks Kinesis applies to a PutRecords request, and the parsing of the commit timestamp the
 * benchmark endpoint reads from each record body. Pure functions, shared by the endpoint and its tests.
 */

export const MiB = 1024 * 1024

/** The documented PutRecords limits (the per-record limit is the stream's, 1 MiB by default). */
export interface PutRecordsLimits {
  readonly maxRecordsPerRequest: number
  readonly maxRecordBytes: number
  readonly maxRequestBytes: number
  readonly maxPartitionKeyChars: number
}

export const defaultLimits: PutRecordsLimits = {
  maxRecordsPerRequest: 500,
  maxRecordBytes: MiB,
  maxRequestBytes: 5 * MiB,
  maxPartitionKeyChars: 256
}

/** One record as it arrives: the size of its decoded data and its partition key. */
export interface IncomingRecord {
  readonly dataBytes: number
  readonly partitionKey: string
}

/** Characters (code points; a lone surrogate counts as one) of a string, as `[...text].length`. */
export const codePoints = (text: string): number => {
  let n = text.length
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--
        i++
      }
    }
  }
  return n
}

/** UTF-8 bytes of a string (a lone surrogate as the 3 bytes of U+FFFD), as `Buffer.byteLength`. */
export const utf8Bytes = (text: string): number => {
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4
        i++
      } else n += 3
    } else n += 3
  }
  return n
}

/** The error Kinesis answers with (HTTP 400) when a request breaks a limit. */
export interface LimitViolation {
  readonly type: "ValidationException" | "InvalidArgumentException"
  readonly message: string
}

/** The first limit a request breaks, or undefined when it is acceptable. */
export const checkPutRecords = (
  records: ReadonlyArray<IncomingRecord>,
  limits: PutRecordsLimits = defaultLimits
): LimitViolation | undefined => {
  if (records.length === 0 || records.length > limits.maxRecordsPerRequest) {
    return {
      type: "ValidationException",
      message: `1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and ${limits.maxRecordsPerRequest} (got ${records.length})`
    }
  }
  let total = 0
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const keyChars = codePoints(record.partitionKey)
    if (keyChars < 1 || keyChars > limits.maxPartitionKeyChars) {
      return {
        type: "ValidationException",
        message: `1 validation error detected: Value at 'records.${i + 1}.member.partitionKey' failed to satisfy constraint: Member must have length between 1 and ${limits.maxPartitionKeyChars}`
      }
    }
    const size = record.dataBytes + utf8Bytes(record.partitionKey)
    if (size > limits.maxRecordBytes) {
      return {
        type: "ValidationException",
        message: `1 validation error detected: Value at 'records.${i + 1}.member.data' failed to satisfy constraint: Member must have length less than or equal to ${limits.maxRecordBytes} (data plus partition key is ${size} bytes)`
      }
    }
    total += size
  }
  if (total > limits.maxRequestBytes) {
    return {
      type: "InvalidArgumentException",
      message: `Records size exceeds ${limits.maxRequestBytes} bytes limit (request is ${total} bytes)`
    }
  }
  return undefined
}

const timestampPattern = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([+-])(\d{2})(?::?(\d{2}))?|Z)?$/

/**
 * PostgreSQL's text form of a timestamptz, e.g. "2026-11-21 04:41:02.123456+00", as epoch
 * milliseconds with the microseconds kept as a fraction. Undefined when it is not one.
 */
export const parsePgTimestamp = (text: string): number | undefined => {
  // the records of one transaction carry the same commit time: the last one parsed is kept
  if (text === lastText) return lastValue
  lastValue = parseTimestamp(text)
  lastText = text
  return lastValue
}
let lastText: string | undefined
let lastValue: number | undefined

const parseTimestamp = (text: string): number | undefined => {
  const m = timestampPattern.exec(text)
  if (m === null) return undefined
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
  const fraction = m[7] === undefined ? 0 : Number(`0.${m[7]}`) * 1000
  const offsetMinutes = m[8] === undefined ? 0 : (m[8] === "-" ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10] ?? "0"))
  return utc + fraction - offsetMinutes * 60_000
}

const timestampKey = Buffer.from(`"timestamp":"`)
const quote = 0x22

/**
 * The commit time in a record body (wal2json format-version 2 with include-timestamp, or the
 * pgoutput decoder's same shape): the value of its first `"timestamp":"..."` member. Found by a
 * byte search rather than a JSON parse, so a large body costs little.
 */
export const commitTimeOf = (body: Buffer): number | undefined => {
  const found = commitTimeIn(body, true)
  return found === null ? undefined : found
}

/**
 * {@link commitTimeOf} of a body of which `head` is the start (all of it when `complete`): null when
 * the answer may lie beyond the head.
 */
export const commitTimeIn = (head: Buffer, complete: boolean): number | undefined | null => {
  const at = head.indexOf(timestampKey)
  if (at < 0) return complete ? undefined : null
  const start = at + timestampKey.length
  const end = head.indexOf(quote, start)
  if (end < 0) return complete || head.length - start > 40 ? undefined : null
  if (end - start > 40) return undefined
  return parsePgTimestamp(head.toString("latin1", start, end))
}

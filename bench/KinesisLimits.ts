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

/** One record as it arrives: decoded data and its partition key. */
export interface IncomingRecord {
  readonly data: Buffer
  readonly partitionKey: string
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
    const keyChars = [...record.partitionKey].length
    if (keyChars < 1 || keyChars > limits.maxPartitionKeyChars) {
      return {
        type: "ValidationException",
        message: `1 validation error detected: Value at 'records.${i + 1}.member.partitionKey' failed to satisfy constraint: Member must have length between 1 and ${limits.maxPartitionKeyChars}`
      }
    }
    const size = record.data.length + Buffer.byteLength(record.partitionKey, "utf8")
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
  const at = body.indexOf(timestampKey)
  if (at < 0) return undefined
  const start = at + timestampKey.length
  const end = body.indexOf(quote, start)
  if (end < 0 || end - start > 40) return undefined
  return parsePgTimestamp(body.toString("latin1", start, end))
}

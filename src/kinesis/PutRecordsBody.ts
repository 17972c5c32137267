/**
 * The bytes of a PutRecords exchange in Kinesis' JSON protocol (awsJson1_1): the request body written
 * once, straight into one buffer (the SDK's schema-driven serializer made a base64 string per record,
 * a JSON string of the whole request, then bytes of it: a quarter of the service's CPU, profiled), and
 * a successful response read into one result per record (one `JSON.parse`, unless every record
 * was accepted).
 */
import type { KinesisError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import type { PutRecordResult, PutRecordsEntry } from "./KinesisClient.ts"

const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0))
const RECORD_OPEN = ascii("{\"Data\":\"")
const KEY_FIELD = ascii("\",\"PartitionKey\":")

/**
 * Buffer's own base64 encoder and latin1 writer (what `toString("base64")` and `write(…, "latin1")`
 * call), the encoder applied to any Uint8Array: a body that is a plain Uint8Array (pgoutput's)
 * needs no Buffer made for it, and no argument is checked per record (encodeBody, 500 records of
 * 552 bytes, interleaved: 430 → 283 ns a record for Uint8Array bodies, 395 → 311 for Buffer ones).
 * Node's typings do not declare them.
 */
const { base64Slice, latin1Write } = Buffer.prototype as unknown as {
  readonly base64Slice: (this: Uint8Array, start: number, end: number) => string
  readonly latin1Write: (this: Buffer, text: string, offset: number, length: number) => number
}

/** Copies a short fragment byte by byte: cheaper than `set` or `write` for a few bytes. */
const put = (target: Buffer, offset: number, fragment: Uint8Array): number => {
  for (let i = 0; i < fragment.length; i++) target[offset + i] = fragment[i]!
  return offset + fragment.length
}

/** A key JSON writes as it is: printable ASCII but `"` and `\\` (most keys: `schema.table:[values]`). */
const isPlain = (key: string): boolean => {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false
  }
  return true
}

/**
 * The JSON body of a PutRecords request in one buffer sized up front: the request's other members
 * (stream name or ARN) as JSON, then `"Records":[{"Data":"<base64>","PartitionKey":"…"},…]`. The
 * fixed fragments and plain keys are copied byte by byte (cheaper than a `write` call for a few
 * bytes), each record's base64 with one latin1 write (no Buffer made per record); any other key is
 * written as `JSON.stringify` writes it. The buffer comes from `allocate` (given the body's size, it may give a
 * larger one: the body is its start).
 */
export const encodeBody = (
  members: Readonly<Record<string, unknown>>,
  records: ReadonlyArray<PutRecordsEntry>,
  allocate: (size: number) => Buffer = Buffer.allocUnsafe
): Buffer => {
  const head = JSON.stringify(members)
  const prefix = (head === "{}" ? "{" : head.slice(0, -1) + ",") + "\"Records\":["
  /** The JSON of each key that is not plain; undefined for plain ones. */
  let escaped: Array<string | undefined> | undefined
  let size = Buffer.byteLength(prefix) + 2 + Math.max(0, records.length - 1)
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const key = record.partitionKey
    let keyBytes: number
    if (isPlain(key)) keyBytes = key.length + 2
    else {
      const json = JSON.stringify(key)
      ;(escaped ??= new Array(records.length))[i] = json
      keyBytes = Buffer.byteLength(json)
    }
    size += RECORD_OPEN.length + base64Length(record.body.byteLength) + KEY_FIELD.length + keyBytes + 1
  }
  const body = allocate(size)
  let offset = body.write(prefix, 0)
  for (let i = 0; i < records.length; i++) {
    const { body: data, partitionKey } = records[i]!
    if (i > 0) body[offset++] = 0x2c
    offset = put(body, offset, RECORD_OPEN)
    offset += latin1Write.call(body, base64Slice.call(data, 0, data.byteLength), offset, body.length - offset)
    offset = put(body, offset, KEY_FIELD)
    const json = escaped?.[i]
    if (json === undefined) {
      body[offset++] = 0x22
      for (let k = 0; k < partitionKey.length; k++) body[offset++] = partitionKey.charCodeAt(k)
      body[offset++] = 0x22
    } else offset += body.write(json, offset)
    body[offset++] = 0x7d
  }
  body[offset++] = 0x5d
  body[offset++] = 0x7d
  return offset === body.length ? body : body.subarray(0, offset)
}

const malformed = (reason: string): KinesisError =>
  ErrorPolicy.fromAws({ name: "InvalidResponse", message: `PutRecords response ${reason}` })

const text = (value: unknown): string => (typeof value === "string" ? value : "")

const ACCEPTED: PutRecordResult = { _tag: "Ok" }

/** One entry of a PutRecords response: failed when it has an error code. */
const resultOf = (entry: Record<string, unknown>): PutRecordResult => {
  const errorCode = entry.ErrorCode
  return typeof errorCode === "string" && errorCode !== ""
    ? { _tag: "Failed", errorCode, errorMessage: text(entry.ErrorMessage) }
    : ACCEPTED
}

const ENTRY = String.raw`\{(?:"SequenceNumber":"\d+","ShardId":"shardId-\d+"|"ShardId":"shardId-\d+","SequenceNumber":"\d+")\}`
const ENCRYPTION = String.raw`"EncryptionType":"(?:NONE|KMS)"`
/**
 * A response that accepted every record, as Kinesis (and kinesalite, with its entries' members the
 * other way round) writes it: no whitespace, no escapes, no member but these.
 */
const ALL_ACCEPTED = new RegExp(
  String.raw`^\{(?:${ENCRYPTION},)?"FailedRecordCount":0,"Records":\[${ENTRY}(?:,${ENTRY})*\](?:,${ENCRYPTION})?\}$`
)
/** Beyond any response to 500 records: such a response is parsed. */
const FAST_PATH_MAX_BYTES = 1024 * 1024

/**
 * The entries of a response that accepted every record, without parsing it: how many, when the
 * response matches {@link ALL_ACCEPTED} (where every `{` but the first opens an entry); -1 when it
 * does not.
 */
const acceptedCount = (bytes: Uint8Array): number => {
  if (bytes.byteLength > FAST_PATH_MAX_BYTES) return -1
  const response = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")
  if (!ALL_ACCEPTED.test(response)) return -1
  let count = 0
  for (let at = response.indexOf("{", 1); at !== -1; at = response.indexOf("{", at + 1)) count++
  return count
}

/**
 * A successful PutRecords response, `{"FailedRecordCount":n,"Records":[{…},…],…}`, as one result per
 * entry in order: failed when the entry has an error code, accepted otherwise. A response that
 * accepted every record, written as Kinesis writes it, is only checked, not parsed (parsing it
 * and the objects it makes cost as much as writing the request body); any other is parsed. Every
 * entry must be an object; anything else is a retriable InvalidResponse.
 */
export const decodeOutput = (bytes: Uint8Array): ReadonlyArray<PutRecordResult> => {
  const accepted = acceptedCount(bytes)
  if (accepted >= 0) return new Array<PutRecordResult>(accepted).fill(ACCEPTED)
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"))
  } catch {
    throw malformed("is not JSON")
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw malformed("is not a JSON object")
  const records = (parsed as Record<string, unknown>).Records
  if (!Array.isArray(records)) throw malformed("has no Records list")
  const results = new Array<PutRecordResult>(records.length)
  for (let i = 0; i < records.length; i++) {
    const entry: unknown = records[i]
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw malformed("has a record entry that is not an object")
    results[i] = resultOf(entry as Record<string, unknown>)
  }
  return results
}

/**
 * The bytes of a PutRecords exchange in Kinesis' JSON protocol (awsJson1_1): the request body written
 * once, straight into one buffer (the SDK's schema-driven serializer made a base64 string per record,
 * a JSON string of the whole request, then bytes of it: a quarter of the service's CPU, profiled), and
 * a successful response read with one `JSON.parse` and a shape check.
 */
import type { KinesisError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import type { PutRecordsEntry } from "./KinesisClient.ts"

const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0))
const RECORD_OPEN = ascii("{\"Data\":\"")
const KEY_FIELD = ascii("\",\"PartitionKey\":")

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
 * bytes), each record's base64 with one latin1 write; any other key is written as
 * `JSON.stringify` writes it.
 */
export const encodeBody = (members: Readonly<Record<string, unknown>>, records: ReadonlyArray<PutRecordsEntry>): Buffer => {
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
    size += RECORD_OPEN.length + base64Length(record.data.byteLength) + KEY_FIELD.length + keyBytes + 1
  }
  const body = Buffer.allocUnsafe(size)
  let offset = body.write(prefix, 0)
  for (let i = 0; i < records.length; i++) {
    const { data, partitionKey } = records[i]!
    if (i > 0) body[offset++] = 0x2c
    offset = put(body, offset, RECORD_OPEN)
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    offset += body.write(bytes.toString("base64"), offset, "latin1")
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
  return offset === size ? body : body.subarray(0, offset)
}

const malformed = (reason: string): KinesisError =>
  ErrorPolicy.fromAws({ name: "InvalidResponse", message: `PutRecords response ${reason}` })

/**
 * A successful PutRecords response: `{"FailedRecordCount":n,"Records":[{…},…],…}`. Every entry must
 * be an object; what the entries say is read by the caller. Anything else is a retriable
 * InvalidResponse.
 */
export const decodeOutput = (bytes: Uint8Array): Record<string, unknown> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"))
  } catch {
    throw malformed("is not JSON")
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw malformed("is not a JSON object")
  const records = (parsed as Record<string, unknown>).Records
  if (!Array.isArray(records)) throw malformed("has no Records list")
  for (const entry of records as ReadonlyArray<unknown>) {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw malformed("has a record entry that is not an object")
  }
  return parsed as Record<string, unknown>
}

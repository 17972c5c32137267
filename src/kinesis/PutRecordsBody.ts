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

const RECORD_OPEN = "{\"Data\":\""
const KEY_FIELD = "\",\"PartitionKey\":"

/** Keys JSON writes as they are: printable ASCII but `"` and `\\` (most keys: `schema.table:[values]`). */
const plainKey = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/**
 * The JSON body of a PutRecords request in one buffer: the request's other members (stream name or
 * ARN) as JSON, then `"Records":[{"Data":"<base64>","PartitionKey":"…"},…]`. A plain key is copied
 * in between quotes; any other is written as `JSON.stringify` writes it.
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
    if (plainKey.test(key)) keyBytes = key.length + 2
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
    offset += body.write(RECORD_OPEN, offset, "latin1")
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    offset += body.write(bytes.toString("base64"), offset, "latin1")
    offset += body.write(KEY_FIELD, offset, "latin1")
    const json = escaped?.[i]
    if (json === undefined) {
      body[offset++] = 0x22
      offset += body.write(partitionKey, offset, "latin1")
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

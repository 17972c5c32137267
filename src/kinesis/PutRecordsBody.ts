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

/**
 * The JSON body of a PutRecords request in one buffer: the request's other members (stream name or
 * ARN) as JSON, then `"Records":[{"Data":"<base64>","PartitionKey":"…"},…]`.
 */
export const encodeBody = (members: Readonly<Record<string, unknown>>, records: ReadonlyArray<PutRecordsEntry>): Buffer => {
  const head = JSON.stringify(members)
  const prefix = (head === "{}" ? "{" : head.slice(0, -1) + ",") + "\"Records\":["
  const keys: Array<string> = new Array(records.length)
  let size = Buffer.byteLength(prefix) + 2 + Math.max(0, records.length - 1)
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const key = JSON.stringify(record.partitionKey)
    keys[i] = key
    size += RECORD_OPEN.length + base64Length(record.data.byteLength) + KEY_FIELD.length + Buffer.byteLength(key) + 1
  }
  const body = Buffer.allocUnsafe(size)
  let offset = body.write(prefix, 0)
  for (let i = 0; i < records.length; i++) {
    const data = records[i]!.data
    if (i > 0) offset = body.writeUInt8(0x2c, offset)
    offset += body.write(RECORD_OPEN, offset, "latin1")
    offset += body.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64"), offset, "latin1")
    offset += body.write(KEY_FIELD, offset, "latin1")
    offset += body.write(keys[i]!, offset)
    offset = body.writeUInt8(0x7d, offset)
  }
  offset = body.writeUInt8(0x5d, offset)
  offset = body.writeUInt8(0x7d, offset)
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

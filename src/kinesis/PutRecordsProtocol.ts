/**
 * Kinesis' JSON protocol (awsJson1_1) with a direct path for PutRecords, the one call on the hot path.
 *
 * The SDK's schema-driven serializer walks every record: a base64 string per record, then a JSON string
 * of the whole request, then bytes of that string for signing and sending; its deserializer walks every
 * result entry through the schema the same way. At tens of thousands of records a second that walk was
 * a quarter of the service's CPU and a fifth of all it allocated (profiled). Here a PutRecords body
 * is written once, straight into one buffer, and a successful response is one `JSON.parse` with a shape
 * check. Everything else is the SDK's own protocol: the headers and endpoint of the request, signing,
 * every other operation, and every error response (so errors keep their SDK types and codes).
 */
import { AwsJson1_1Protocol } from "@aws-sdk/core/protocols"
import type { KinesisError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"

type SerializeRequest = AwsJson1_1Protocol["serializeRequest"]
type DeserializeResponse = AwsJson1_1Protocol["deserializeResponse"]
type OperationSchema = Parameters<SerializeRequest>[0]
type SerializeContext = Parameters<SerializeRequest>[2]
type DeserializeContext = Parameters<DeserializeResponse>[1]
type HttpResponse = Parameters<DeserializeResponse>[2]
type HttpRequest = Awaited<ReturnType<SerializeRequest>>

/** One record of a PutRecords input, as the SDK's `PutRecordsRequestEntry` has it. */
interface RecordInput {
  readonly Data: Uint8Array
  readonly PartitionKey: string
  readonly ExplicitHashKey?: string | undefined
}

const OPERATION = "PutRecords"

const isRecordList = (value: unknown): value is ReadonlyArray<RecordInput> =>
  Array.isArray(value) &&
  value.every((record: unknown) =>
    typeof record === "object" && record !== null &&
    (record as RecordInput).Data instanceof Uint8Array && typeof (record as RecordInput).PartitionKey === "string"
  )

const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4

const RECORD_OPEN = "{\"Data\":\""
const KEY_FIELD = "\",\"PartitionKey\":"
const HASH_KEY_FIELD = ",\"ExplicitHashKey\":"

/**
 * The JSON body of a PutRecords request in one buffer: the request's other members (stream name or
 * ARN) as JSON, then `"Records":[{"Data":"<base64>","PartitionKey":"…"},…]`.
 */
export const encodeBody = (members: Readonly<Record<string, unknown>>, records: ReadonlyArray<RecordInput>): Buffer => {
  const head = JSON.stringify(members)
  const prefix = (head === "{}" ? "{" : head.slice(0, -1) + ",") + "\"Records\":["
  const keys: Array<string> = new Array(records.length)
  const hashKeys: Array<string | undefined> = new Array(records.length)
  let size = Buffer.byteLength(prefix) + 2 + Math.max(0, records.length - 1)
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const key = JSON.stringify(record.PartitionKey)
    keys[i] = key
    size += RECORD_OPEN.length + base64Length(record.Data.byteLength) + KEY_FIELD.length + Buffer.byteLength(key) + 1
    if (record.ExplicitHashKey !== undefined) {
      const hashKey = JSON.stringify(record.ExplicitHashKey)
      hashKeys[i] = hashKey
      size += HASH_KEY_FIELD.length + Buffer.byteLength(hashKey)
    }
  }
  const body = Buffer.allocUnsafe(size)
  let offset = body.write(prefix, 0)
  for (let i = 0; i < records.length; i++) {
    const data = records[i]!.Data
    if (i > 0) offset = body.writeUInt8(0x2c, offset)
    offset += body.write(RECORD_OPEN, offset, "latin1")
    offset += body.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64"), offset, "latin1")
    offset += body.write(KEY_FIELD, offset, "latin1")
    offset += body.write(keys[i]!, offset)
    const hashKey = hashKeys[i]
    if (hashKey !== undefined) {
      offset += body.write(HASH_KEY_FIELD, offset, "latin1")
      offset += body.write(hashKey, offset)
    }
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

/** The Kinesis protocol the SDK client is configured with (`protocol` in its configuration). */
export class PutRecordsProtocol extends AwsJson1_1Protocol {
  override async serializeRequest<Input extends object>(
    operationSchema: OperationSchema,
    input: Input,
    context: SerializeContext
  ): Promise<HttpRequest> {
    const { Records, ...members } = input as Input & { readonly Records?: unknown }
    if (operationSchema.name !== OPERATION || !isRecordList(Records)) {
      return super.serializeRequest(operationSchema, input, context)
    }
    // the SDK's request for the other members (endpoint, path, headers), with our body
    const request = await super.serializeRequest(operationSchema, { ...members, Records: [] }, context)
    request.body = encodeBody(members, Records)
    return request
  }

  override async deserializeResponse<Output extends { $metadata: object }>(
    operationSchema: OperationSchema,
    context: DeserializeContext,
    response: HttpResponse
  ): Promise<Output> {
    if (operationSchema.name !== OPERATION || this.isErrorResponse(response.statusCode)) {
      return super.deserializeResponse(operationSchema, context, response)
    }
    const output = decodeOutput(await context.streamCollector(response.body))
    // the same object the SDK's deserializer builds: Kinesis' JSON member names are the SDK's
    return { ...output, $metadata: this.deserializeMetadata(response) } as unknown as Output
  }
}

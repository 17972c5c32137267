/**
 * PutRecordsProtocol against the SDK's own awsJson1_1 protocol: the same client, the same input, a
 * request handler that records the request and answers with a canned response (no network).
 */
import { KinesisClient as SdkClient, PutRecordsCommand } from "@aws-sdk/client-kinesis"
import type { PutRecordsCommandInput } from "@aws-sdk/client-kinesis"
import { describe, expect, it } from "@effect/vitest"
import { Readable } from "node:stream"
import { KinesisError } from "../../src/Errors.ts"
import * as ErrorPolicy from "../../src/ErrorPolicy.ts"
import { decodeOutput, encodeBody, PutRecordsProtocol } from "../../src/kinesis/PutRecordsProtocol.ts"

interface Exchange {
  headers: Record<string, string>
  body: string
}

interface CannedResponse {
  readonly statusCode: number
  readonly body: string
}

/** A client whose handler keeps the request and answers with `response`. */
const capturingClient = (protocol: "sdk" | "ours", response: CannedResponse) => {
  const exchange: Exchange = { headers: {}, body: "" }
  const client = new SdkClient({
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
    maxAttempts: 1,
    ...(protocol === "ours" ? { protocol: PutRecordsProtocol } : {}),
    requestHandler: {
      handle: async (request: { headers: Record<string, string>; body?: unknown }) => {
        exchange.headers = request.headers
        const body = request.body
        const bytes = body as Uint8Array
        exchange.body = typeof body === "string"
          ? body
          : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
        return {
          response: {
            statusCode: response.statusCode,
            headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": "req-1" },
            body: Readable.from([Buffer.from(response.body)])
          }
        }
      }
    }
  })
  return { client, exchange }
}

const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i)

const input: PutRecordsCommandInput = {
  StreamName: "orders",
  Records: [
    { Data: new TextEncoder().encode("{\"action\":\"I\",\"table\":\"t\"}"), PartitionKey: "public.t:[1]" },
    { Data: new Uint8Array(0), PartitionKey: "ключ \"quoted\" \\ back\nslash" },
    { Data: everyByte.subarray(1, 255), PartitionKey: "k", ExplicitHashKey: "170141183460469231731687303715884105728" },
    { Data: everyByte, PartitionKey: "😀".repeat(20) }
  ]
}

const okResponse: CannedResponse = {
  statusCode: 200,
  body: JSON.stringify({
    FailedRecordCount: 1,
    Records: [
      { SequenceNumber: "49590338271490256608559692538361571095921575989136588898", ShardId: "shardId-000000000000" },
      { ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded for shard" },
      { SequenceNumber: "49590338271490256608559692538361571095921575989136588899", ShardId: "shardId-000000000001" },
      { SequenceNumber: "49590338271490256608559692538361571095921575989136588900", ShardId: "shardId-000000000001" }
    ],
    EncryptionType: "KMS"
  })
}

const send = async (protocol: "sdk" | "ours", commandInput: PutRecordsCommandInput, response: CannedResponse) => {
  const { client, exchange } = capturingClient(protocol, response)
  try {
    const output = await client.send(new PutRecordsCommand(commandInput))
    return { output, exchange }
  } finally {
    client.destroy()
  }
}

describe("PutRecordsProtocol", () => {
  it("writes the request the SDK writes: same JSON, same operation headers", async () => {
    const sdk = await send("sdk", input, okResponse)
    const ours = await send("ours", input, okResponse)
    expect(JSON.parse(ours.exchange.body)).toEqual(JSON.parse(sdk.exchange.body))
    expect(Buffer.byteLength(ours.exchange.body)).toBe(Number(ours.exchange.headers["content-length"]))
    for (const header of ["content-type", "x-amz-target"]) {
      expect(ours.exchange.headers[header]).toBe(sdk.exchange.headers[header])
    }
    expect(ours.exchange.headers["x-amz-target"]).toBe("Kinesis_20131202.PutRecords")
    // the signature covers our body
    expect(ours.exchange.headers["authorization"]).toMatch(/^AWS4-HMAC-SHA256 /)
  })

  it("writes StreamARN requests and empty record lists as the SDK does", async () => {
    const byArn: PutRecordsCommandInput = {
      StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
      Records: [{ Data: new Uint8Array([1, 2, 3]), PartitionKey: "p" }]
    }
    for (const request of [byArn, { StreamName: "orders", Records: [] }]) {
      const sdk = await send("sdk", request, okResponse)
      const ours = await send("ours", request, okResponse)
      expect(JSON.parse(ours.exchange.body)).toEqual(JSON.parse(sdk.exchange.body))
    }
  })

  it("reads a successful response into the output the SDK builds", async () => {
    const sdk = await send("sdk", input, okResponse)
    const ours = await send("ours", input, okResponse)
    expect(ours.output).toEqual(sdk.output)
    expect(ours.output.Records?.[1]?.ErrorCode).toBe("ProvisionedThroughputExceededException")
    expect(ours.output.$metadata.httpStatusCode).toBe(200)
  })

  it("leaves error responses to the SDK: same error class, code and classification", async () => {
    const throttled: CannedResponse = {
      statusCode: 400,
      body: JSON.stringify({ __type: "ProvisionedThroughputExceededException", message: "Rate exceeded" })
    }
    const sdkError = await send("sdk", input, throttled).then(() => undefined, (error: unknown) => error)
    const ourError = await send("ours", input, throttled).then(() => undefined, (error: unknown) => error)
    expect(ourError).toBeInstanceOf(Error)
    expect((ourError as Error).name).toBe((sdkError as Error).name)
    expect(ErrorPolicy.fromAws(ourError)).toMatchObject({ code: "ProvisionedThroughputExceededException", reason: "Throttled", retriable: true })
  })

  it("a malformed successful response is a retriable InvalidResponse", async () => {
    for (const body of ["not json", "[]", "{\"FailedRecordCount\":0}", "{\"Records\":[null]}", "{\"Records\":[1]}"]) {
      const error = await send("ours", input, { statusCode: 200, body }).then(() => undefined, (e: unknown) => e)
      const classified = ErrorPolicy.fromAws(error)
      expect(classified).toBeInstanceOf(KinesisError)
      expect(classified).toMatchObject({ code: "InvalidResponse", reason: "ServerError", retriable: true })
    }
  })

  it("other operations go through the SDK's protocol unchanged", async () => {
    const { DescribeStreamSummaryCommand } = await import("@aws-sdk/client-kinesis")
    const summary: CannedResponse = {
      statusCode: 200,
      body: JSON.stringify({ StreamDescriptionSummary: { StreamName: "orders", MaxRecordSizeInKiB: 1024, OpenShardCount: 2 } })
    }
    const { client, exchange } = capturingClient("ours", summary)
    const output = await client.send(new DescribeStreamSummaryCommand({ StreamName: "orders" }))
    client.destroy()
    expect(JSON.parse(exchange.body)).toEqual({ StreamName: "orders" })
    expect(output.StreamDescriptionSummary?.MaxRecordSizeInKiB).toBe(1024)
  })

  it("encodeBody and decodeOutput on their own", () => {
    const body = encodeBody({ StreamName: "s" }, [{ Data: new Uint8Array([0xff, 0x00]), PartitionKey: "a\"b" }])
    expect(JSON.parse(body.toString("utf8"))).toEqual({ StreamName: "s", Records: [{ Data: "/wA=", PartitionKey: "a\"b" }] })
    expect(JSON.parse(encodeBody({}, []).toString("utf8"))).toEqual({ Records: [] })
    expect(decodeOutput(Buffer.from("{\"Records\":[{\"ShardId\":\"s\"}]}"))).toEqual({ Records: [{ ShardId: "s" }] })
  })
})

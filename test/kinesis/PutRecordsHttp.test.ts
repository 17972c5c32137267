/**
 * PutRecordsHttp against the SDK's own client: the same input sent both ways through one request
 * handler that records each request and answers with a canned response (no network). The request
 * must be the SDK's (endpoint, operation headers, JSON body, the SDK signer's signature), a response
 * must read as the SDK reads it, and an error must classify as the SDK's error does.
 */
import { KinesisClient as SdkClient, type KinesisClientConfig, PutRecordsCommand } from "@aws-sdk/client-kinesis"
import type { PutRecordsCommandInput } from "@aws-sdk/client-kinesis"
import { HttpRequest, HttpResponse } from "@smithy/core/transport"
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import * as fc from "fast-check"
import { Readable } from "node:stream"
import { KinesisError } from "../../src/Errors.ts"
import * as ErrorPolicy from "../../src/ErrorPolicy.ts"
import type { PutRecordsEntry } from "../../src/kinesis/KinesisClient.ts"
import { decodeOutput, encodeBody } from "../../src/kinesis/PutRecordsBody.ts"
import * as PutRecordsHttp from "../../src/kinesis/PutRecordsHttp.ts"

interface CannedResponse {
  readonly statusCode: number
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
}

const text = (body: unknown): string => {
  if (typeof body === "string") return body
  const bytes = body as Uint8Array
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
}

/** A request handler that keeps every request and answers each with `response`. */
const capturingHandler = (response: CannedResponse) => {
  const requests: Array<HttpRequest> = []
  const handler = {
    handle: async (request: HttpRequest) => {
      requests.push(request)
      return {
        response: new HttpResponse({
          statusCode: response.statusCode,
          headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": "req-1", ...response.headers },
          body: Readable.from([Buffer.from(response.body)])
        })
      }
    }
  }
  return { handler, requests }
}

const clientWith = (handler: ReturnType<typeof capturingHandler>["handler"], config: Partial<KinesisClientConfig> = {}) =>
  new SdkClient({
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
    maxAttempts: 1,
    requestHandler: handler,
    ...config
  })

const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i)

const entries: ReadonlyArray<PutRecordsEntry> = [
  { body: new TextEncoder().encode("{\"action\":\"I\",\"table\":\"t\"}"), partitionKey: "public.t:[1]" },
  { body: new Uint8Array(0), partitionKey: "ключ \"quoted\" \\ back\nslash" },
  { body: everyByte.subarray(1, 255), partitionKey: "k" },
  { body: everyByte, partitionKey: "😀".repeat(20) }
]

const sdkInput = (stream: PutRecordsHttp.StreamMembers, records: ReadonlyArray<PutRecordsEntry>): PutRecordsCommandInput => ({
  ...stream,
  Records: records.map((record) => ({ Data: record.body, PartitionKey: record.partitionKey }))
})

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

/** The same PutRecords sent by the SDK and by PutRecordsHttp: each one's request, and its outcome. */
const both = async (
  stream: PutRecordsHttp.StreamMembers,
  records: ReadonlyArray<PutRecordsEntry>,
  response: CannedResponse,
  config: Partial<KinesisClientConfig> = {}
) => {
  const sdkSide = capturingHandler(response)
  const sdkClient = clientWith(sdkSide.handler, config)
  const sdk = await sdkClient.send(new PutRecordsCommand(sdkInput(stream, records))).then(
    (output) => ({ output, error: undefined }),
    (error: unknown) => ({ output: undefined, error })
  )
  sdkClient.destroy()
  const ourSide = capturingHandler(response)
  const ourClient = clientWith(ourSide.handler, config)
  const ours = await PutRecordsHttp.make(ourClient, ourSide.handler).send(stream, records).then(
    (output) => ({ output, error: undefined }),
    (error: unknown) => ({ output: undefined, error })
  )
  ourClient.destroy()
  return { sdk: { ...sdk, request: sdkSide.requests[0]! }, ours: { ...ours, request: ourSide.requests[0]! } }
}

const authorization = (request: HttpRequest) => {
  const header = request.headers["authorization"] ?? ""
  const match = /^AWS4-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(header)
  expect(match, header).not.toBeNull()
  return { credential: match![1]!, signedHeaders: match![2]!.split(";"), signature: match![3]! }
}

afterEach(() => {
  vi.useRealTimers()
})

describe("PutRecordsHttp", () => {
  it("writes the request the SDK writes: endpoint, operation headers, JSON body", async () => {
    const { sdk, ours } = await both({ StreamName: "orders" }, entries, okResponse, { endpoint: "http://127.0.0.1:4567/base" })
    expect(JSON.parse(text(ours.request.body))).toEqual(JSON.parse(text(sdk.request.body)))
    expect(Buffer.byteLength(text(ours.request.body))).toBe(Number(ours.request.headers["content-length"]))
    for (const field of ["method", "protocol", "hostname", "port", "path"] as const) {
      expect(ours.request[field]).toEqual(sdk.request[field])
    }
    for (const header of ["content-type", "x-amz-target", "host"]) {
      expect(ours.request.headers[header]).toBe(sdk.request.headers[header])
    }
    expect(ours.request.headers["x-amz-target"]).toBe("Kinesis_20131202.PutRecords")
    expect(ours.request.path).toBe("/base/")
  })

  it("signs as the SDK signs: same credential scope, the SDK's signed headers, the SDK signer's signature", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: new Date("2026-11-29T06:30:00Z") })
    const { sdk, ours } = await both({ StreamName: "orders" }, entries, okResponse)
    const sdkAuth = authorization(sdk.request)
    const ourAuth = authorization(ours.request)
    expect(ourAuth.credential).toBe(sdkAuth.credential)
    expect(ourAuth.credential).toBe("AKIDEXAMPLE/20261129/us-east-1/kinesis/aws4_request")
    expect(ours.request.headers["x-amz-date"]).toBe(sdk.request.headers["x-amz-date"])
    // what we sign is signed by the SDK too (it adds its user-agent and invocation headers)
    for (const header of ["host", "content-type", "x-amz-target", "x-amz-date"]) expect(ourAuth.signedHeaders).toContain(header)
    for (const header of ourAuth.signedHeaders) expect(sdkAuth.signedHeaders).toContain(header)
    // our signer, given the SDK's request without its signature, signs it exactly as the SDK did
    const unsigned = HttpRequest.clone(sdk.request)
    delete unsigned.headers["authorization"]
    delete unsigned.headers["x-amz-date"]
    const { handler } = capturingHandler(okResponse)
    const client = clientWith(handler)
    const resigned = await PutRecordsHttp.signer(client).sign(unsigned, { signingDate: new Date() })
    client.destroy()
    expect(resigned.headers["authorization"]).toBe(sdk.request.headers["authorization"])
  })

  it("sends StreamARN requests where the SDK does (the account's data endpoint) and empty record lists as it does", async () => {
    const byArn = { StreamARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders" }
    const { sdk, ours } = await both(byArn, [{ body: new Uint8Array([1, 2, 3]), partitionKey: "p" }], okResponse, { region: "eu-west-1" })
    expect(ours.request.hostname).toBe(sdk.request.hostname)
    expect(ours.request.hostname).toBe("123456789012.data-kinesis.eu-west-1.amazonaws.com")
    expect(ours.request.protocol).toBe("https:")
    expect(JSON.parse(text(ours.request.body))).toEqual(JSON.parse(text(sdk.request.body)))
    const empty = await both({ StreamName: "orders" }, [], okResponse)
    expect(JSON.parse(text(empty.ours.request.body))).toEqual(JSON.parse(text(empty.sdk.request.body)))
    expect(empty.ours.request.hostname).toBe("kinesis.us-east-1.amazonaws.com")
  })

  it("reads a successful response as the SDK reads it: an entry with an error code failed, any other accepted", async () => {
    const { sdk, ours } = await both({ StreamName: "orders" }, entries, okResponse)
    const expected = sdk.output!.Records!.map((entry) =>
      entry.ErrorCode === undefined ? { _tag: "Ok" } : { _tag: "Failed", errorCode: entry.ErrorCode, errorMessage: entry.ErrorMessage }
    )
    expect(ours.output).toEqual(expected)
    expect(ours.output?.[1]).toEqual({ _tag: "Failed", errorCode: "ProvisionedThroughputExceededException", errorMessage: "Rate exceeded for shard" })
  })

  it("an error response classifies as the SDK's error for it does (the same code when the response names one)", async () => {
    const responses: ReadonlyArray<CannedResponse> = [
      { statusCode: 400, body: JSON.stringify({ __type: "ProvisionedThroughputExceededException", message: "Rate exceeded" }) },
      { statusCode: 400, body: JSON.stringify({ __type: "com.amazonaws.kinesis.v20131202#ResourceNotFoundException", message: "Stream x not found" }) },
      { statusCode: 400, body: JSON.stringify({ message: "User is not authorized" }), headers: { "x-amzn-errortype": "AccessDeniedException:http://internal.amazon.com/" } },
      { statusCode: 400, body: JSON.stringify({ __type: "UnrecognizedClientException", message: "The security token is invalid" }) },
      { statusCode: 400, body: JSON.stringify({ __type: "KMSDisabledException", Message: "key disabled" }) },
      { statusCode: 500, body: JSON.stringify({ __type: "InternalFailure" }) },
      { statusCode: 503, body: "<html>Service Unavailable</html>" },
      { statusCode: 413, body: "" }
    ]
    for (const response of responses) {
      const { sdk, ours } = await both({ StreamName: "orders" }, entries, response)
      expect(sdk.error).toBeDefined()
      expect(ours.error).toBeDefined()
      const expected = ErrorPolicy.fromAws(sdk.error)
      const actual = ErrorPolicy.fromAws(ours.error)
      expect(actual, response.body).toMatchObject({ reason: expected.reason, retriable: expected.retriable })
      // a body that is not JSON: the SDK names its parser's SyntaxError, we name the status
      if (response.body.startsWith("{")) expect(actual.code).toBe(expected.code)
      else expect(actual.code).toBe(`HTTP${response.statusCode}`)
    }
  })

  it("credentials that cannot be had fail as the SDK fails: a retriable CredentialsProviderError; the request is not sent", async () => {
    const credentials = async () => {
      throw Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError", tryNextLink: false })
    }
    const { sdk, ours } = await both({ StreamName: "orders" }, entries, okResponse, { credentials })
    expect(ours.request).toBeUndefined()
    expect(ErrorPolicy.fromAws(ours.error)).toMatchObject({ code: "CredentialsProviderError", reason: "CredentialsUnavailable", retriable: true })
    expect(ErrorPolicy.fromAws(ours.error)).toMatchObject({ code: ErrorPolicy.fromAws(sdk.error).code, retriable: true })
  })

  it("after an error response, signs with the server's clock as the SDK does", async () => {
    const serverDate = new Date(Date.now() + 3_600_000)
    const skewed: CannedResponse = {
      statusCode: 400,
      body: JSON.stringify({ __type: "InvalidSignatureException", message: "Signature expired" }),
      headers: { date: serverDate.toUTCString() }
    }
    const { handler, requests } = capturingHandler(skewed)
    const client = clientWith(handler)
    const sender = PutRecordsHttp.make(client, handler)
    await expect(sender.send({ StreamName: "orders" }, entries)).rejects.toBeInstanceOf(Error)
    await expect(sender.send({ StreamName: "orders" }, entries)).rejects.toBeInstanceOf(Error)
    client.destroy()
    const dateOf = (request: HttpRequest) => {
      const d = request.headers["x-amz-date"]!
      return Date.parse(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`)
    }
    expect(Math.abs(dateOf(requests[0]!) - Date.now())).toBeLessThan(60_000)
    expect(Math.abs(dateOf(requests[1]!) - serverDate.getTime())).toBeLessThan(60_000)
  })

  it("one sender's requests, each body the SDK's, reuse a body buffer only after a success", async () => {
    let status = 200
    const seen: Array<{ readonly body: string; readonly buffer: ArrayBufferLike }> = []
    const handler = {
      handle: async (request: HttpRequest) => {
        const body = request.body as Buffer
        seen.push({ body: body.toString("utf8"), buffer: body.buffer })
        const response = status === 200 ? { statusCode: 200, body: okResponse.body } : { statusCode: 500, body: "{\"__type\":\"InternalFailure\"}" }
        return { response: new HttpResponse({ ...response, headers: {}, body: Readable.from([Buffer.from(response.body)]) }) }
      }
    }
    const client = clientWith(handler)
    const sender = PutRecordsHttp.make(client, handler, 1)
    const batches = [entries, entries.slice(1), entries.slice(0, 2), entries]
    const expected = (records: ReadonlyArray<PutRecordsEntry>) =>
      JSON.stringify({ StreamName: "orders", Records: records.map((r) => ({ Data: Buffer.from(r.body).toString("base64"), PartitionKey: r.partitionKey })) })
    await sender.send({ StreamName: "orders" }, batches[0]!)
    await sender.send({ StreamName: "orders" }, batches[1]!)
    status = 500
    await expect(sender.send({ StreamName: "orders" }, batches[2]!)).rejects.toBeInstanceOf(Error)
    status = 200
    await sender.send({ StreamName: "orders" }, batches[3]!)
    client.destroy()
    expect(seen.map((s) => s.body)).toEqual(batches.map(expected))
    // the first success's buffer is taken by the second request and, after the second success, by the third; the third failed, so the fourth has a new one
    expect(seen[1]!.buffer).toBe(seen[0]!.buffer)
    expect(seen[2]!.buffer).toBe(seen[0]!.buffer)
    expect(seen[3]!.buffer).not.toBe(seen[0]!.buffer)
  })

  it("a malformed successful response is a retriable InvalidResponse", async () => {
    for (const body of ["not json", "[]", "{\"FailedRecordCount\":0}", "{\"Records\":[null]}", "{\"Records\":[1]}"]) {
      const { ours } = await both({ StreamName: "orders" }, entries, { statusCode: 200, body })
      const classified = ErrorPolicy.fromAws(ours.error)
      expect(classified).toBeInstanceOf(KinesisError)
      expect(classified).toMatchObject({ code: "InvalidResponse", reason: "ServerError", retriable: true })
    }
  })

  it("encodeBody writes the JSON JSON.stringify writes, for any keys (plain, escaped, any Unicode) and any data", () => {
    const record = fc.record({
      body: fc.uint8Array({ maxLength: 64 }).chain((bytes) => fc.constantFrom(bytes, Buffer.from(bytes), new Uint8Array([0, ...bytes, 0]).subarray(1, bytes.length + 1))),
      partitionKey: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }), fc.constantFrom("public.t:[1]", "a\"b", "\\", "\u007f", "\u0000", "\u001f", " ~", "é"))
    })
    fc.assert(fc.property(fc.array(record, { maxLength: 20 }), (records) => {
      const expected = JSON.stringify({
        StreamName: "s",
        Records: records.map((r) => ({ Data: Buffer.from(r.body).toString("base64"), PartitionKey: r.partitionKey }))
      })
      expect(encodeBody({ StreamName: "s" }, records).toString("utf8")).toBe(expected)
      // into a larger buffer holding other bytes (one kept from an earlier request)
      const used = (size: number) => Buffer.alloc(size + 100, 0xff)
      expect(encodeBody({ StreamName: "s" }, records, used).toString("utf8")).toBe(expected)
    }), { numRuns: 300 })
  })

  it("decodeOutput reads every response as parsing it does: accepted, failed or InvalidResponse, unchanged by the all-accepted shortcut", () => {
    /** The response read the long way: parsed, each entry an object, failed when it has an error code. */
    const reference = (response: string): unknown => {
      let parsed: unknown
      try {
        parsed = JSON.parse(response)
      } catch {
        return "InvalidResponse"
      }
      const records = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>).Records : undefined
      if (!Array.isArray(records)) return "InvalidResponse"
      if (records.some((entry) => typeof entry !== "object" || entry === null || Array.isArray(entry))) return "InvalidResponse"
      return records.map((entry: Record<string, unknown>) =>
        typeof entry.ErrorCode === "string" && entry.ErrorCode !== ""
          ? { _tag: "Failed", errorCode: entry.ErrorCode, errorMessage: typeof entry.ErrorMessage === "string" ? entry.ErrorMessage : "" }
          : { _tag: "Ok" }
      )
    }
    const read = (response: string): unknown => {
      try {
        return decodeOutput(Buffer.from(response, "utf8"))
      } catch (error) {
        expect(ErrorPolicy.fromAws(error)).toMatchObject({ code: "InvalidResponse", retriable: true })
        return "InvalidResponse"
      }
    }
    const digits = fc.stringMatching(/^[0-9]{1,56}$/)
    const accepted = fc.tuple(digits, fc.nat(99), fc.boolean()).map(([sequence, shard, shardFirst]) =>
      shardFirst
        ? `{"ShardId":"shardId-${String(shard).padStart(12, "0")}","SequenceNumber":"${sequence}"}`
        : `{"SequenceNumber":"${sequence}","ShardId":"shardId-${String(shard).padStart(12, "0")}"}`
    )
    const entry = fc.oneof(
      { arbitrary: accepted, weight: 8 },
      fc.constantFrom(
        `{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"}`,
        `{"ErrorCode":"InternalFailure"}`,
        `{"ErrorCode":"","SequenceNumber":"1","ShardId":"shardId-1"}`,
        `{"Error\\u0043ode":"KMSThrottlingException","ErrorMessage":"m"}`,
        `{}`, `null`, `1`, `[]`, `"x"`, `{"SequenceNumber":"1"}`
      )
    )
    const encryption = fc.constantFrom("", `"EncryptionType":"NONE"`, `"EncryptionType":"KMS"`)
    const response = fc.tuple(fc.array(entry, { maxLength: 30 }), fc.constantFrom(0, 0, 0, 1, 2), encryption, fc.boolean()).map(
      ([entries, failed, encryptionType, leading]) => {
        const members = [`"FailedRecordCount":${failed}`, `"Records":[${entries.join(",")}]`]
        if (encryptionType !== "") leading ? members.unshift(encryptionType) : members.push(encryptionType)
        return `{${members.join(",")}}`
      }
    )
    // one character replaced, inserted or removed: near misses of the all-accepted form
    const mutated = fc.tuple(response, fc.nat(), fc.constantFrom("{", "}", "[", "]", "\"", "\\", ",", ":", " ", "0", "1", "E", "x", "é", ""), fc.boolean()).map(
      ([text, at, char, insert]) => {
        const i = at % (text.length + 1)
        return text.slice(0, i) + char + text.slice(insert ? i : i + 1)
      }
    )
    fc.assert(fc.property(fc.oneof(response, mutated), (text) => {
      expect(read(text), text).toEqual(reference(text))
    }), { numRuns: 3000 })
  })

  it("decodeOutput does not parse a response that accepted every record, as Kinesis or kinesalite writes it", () => {
    const awsStyle = JSON.stringify({
      FailedRecordCount: 0,
      Records: [
        { SequenceNumber: "49543463076548007577105092703039560359975228518395012686", ShardId: "shardId-000000000000" },
        { SequenceNumber: "49543463076570308322303623326179887152428262250726293522", ShardId: "shardId-000000000001" }
      ],
      EncryptionType: "KMS"
    })
    const kinesaliteStyle = JSON.stringify({
      FailedRecordCount: 0,
      Records: [{ ShardId: "shardId-000000000003", SequenceNumber: "49667812925946133424469357011313425392727389396434190386" }]
    })
    const parse = vi.spyOn(JSON, "parse")
    try {
      expect(decodeOutput(Buffer.from(awsStyle))).toEqual([{ _tag: "Ok" }, { _tag: "Ok" }])
      expect(decodeOutput(Buffer.from(kinesaliteStyle))).toEqual([{ _tag: "Ok" }])
      expect(parse).not.toHaveBeenCalled()
      expect(decodeOutput(Buffer.from(awsStyle.replace("\"FailedRecordCount\":0", "\"FailedRecordCount\":1")))).toHaveLength(2)
      expect(parse).toHaveBeenCalledTimes(1)
    } finally {
      parse.mockRestore()
    }
  })

  it("encodeBody and decodeOutput on their own", () => {
    const body = encodeBody({ StreamName: "s" }, [{ body: new Uint8Array([0xff, 0x00]), partitionKey: "a\"b" }])
    expect(JSON.parse(body.toString("utf8"))).toEqual({ StreamName: "s", Records: [{ Data: "/wA=", PartitionKey: "a\"b" }] })
    expect(JSON.parse(encodeBody({}, []).toString("utf8"))).toEqual({ Records: [] })
    expect(decodeOutput(Buffer.from("{\"Records\":[{\"ShardId\":\"s\"}]}"))).toEqual([{ _tag: "Ok" }])
  })
})

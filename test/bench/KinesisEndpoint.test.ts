/**
 * The benchmark's Kinesis endpoint, driven by the real AWS SDK client: the operations the service
 * calls, the PutRecords limits, the counters and latency samples, and the child-process wrapper.
 */
import { DescribeStreamSummaryCommand, KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startEndpointProcess } from "../../bench/EndpointProcess.ts"
import { defaultEndpointOptions, listen, makeEndpoint } from "../../bench/KinesisEndpoint.ts"
import type { KinesisEndpoint } from "../../bench/KinesisEndpoint.ts"
import { checkPutRecords, commitTimeOf, parsePgTimestamp } from "../../bench/KinesisLimits.ts"
import { distribution } from "../../support/Distribution.ts"

/** The SDK client as the service builds it (HTTP/1.1 handler) or with the SDK's default (HTTP/2) handler. */
const sdk = (url: string, protocol: "http1" | "http2" = "http1"): KinesisClient =>
  new KinesisClient({
    ...(protocol === "http1" ? { requestHandler: new NodeHttpHandler() } : {}),
    endpoint: url,
    region: "us-east-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
    maxAttempts: 1
  })

const body = (id: number, timestamp: string): Uint8Array =>
  Buffer.from(JSON.stringify({ action: "I", schema: "public", table: "t", timestamp, columns: [{ name: "id", value: id }] }))

const errorName = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise
    return "no error"
  } catch (error) {
    return error instanceof Error ? error.name : String(error)
  }
}

describe("timestamps and distributions", () => {
  it("parses PostgreSQL timestamptz text with microseconds and offsets", () => {
    expect(parsePgTimestamp("2026-11-21 04:41:02.123456+00")).toBeCloseTo(Date.UTC(2026, 10, 21, 4, 41, 2) + 123.456, 6)
    expect(parsePgTimestamp("2026-11-21 10:11:02+05:30")).toBe(Date.UTC(2026, 10, 21, 4, 41, 2))
    expect(parsePgTimestamp("2026-11-20 20:41:02.5-08")).toBe(Date.UTC(2026, 10, 21, 4, 41, 2, 500))
    expect(parsePgTimestamp("yesterday")).toBeUndefined()
  })

  it("finds the commit timestamp in a record body", () => {
    expect(commitTimeOf(Buffer.from(body(1, "2026-11-21 04:41:02.000001+00")))).toBeCloseTo(Date.UTC(2026, 10, 21, 4, 41, 2) + 0.001, 6)
    expect(commitTimeOf(Buffer.from(`{"action":"I","columns":[]}`))).toBeUndefined()
  })

  it("computes nearest-rank percentiles", () => {
    const d = distribution(Float64Array.from({ length: 100 }, (_, i) => 100 - i))
    expect(d).toEqual({ count: 100, min: 1, p50: 50, p95: 95, p99: 99, max: 100 })
    expect(distribution(new Float64Array(0))).toBeUndefined()
  })

  it("checks the per-request, per-record and per-key limits", () => {
    const record = (bytes: number, key = "k") => ({ dataBytes: bytes, partitionKey: key })
    expect(checkPutRecords([record(10)])).toBeUndefined()
    expect(checkPutRecords([])?.type).toBe("ValidationException")
    expect(checkPutRecords(Array.from({ length: 501 }, () => record(1)))?.type).toBe("ValidationException")
    expect(checkPutRecords([record(1024 * 1024)])?.type).toBe("ValidationException")
    expect(checkPutRecords([record(1024 * 1024 - 1)])).toBeUndefined()
    expect(checkPutRecords([record(1, "x".repeat(257))])?.type).toBe("ValidationException")
    expect(checkPutRecords(Array.from({ length: 6 }, () => record(1000 * 1000)))?.type).toBe("InvalidArgumentException")
  })
})

describe("KinesisEndpoint with the AWS SDK", () => {
  let endpoint: KinesisEndpoint
  let client: KinesisClient

  beforeAll(async () => {
    endpoint = makeEndpoint({ ...defaultEndpointOptions, streamName: "orders", shardCount: 2 })
    const port = await listen(endpoint)
    client = sdk(`http://127.0.0.1:${port}`)
  })
  afterAll(async () => {
    client.destroy()
    await endpoint.close()
  })

  it("describes the stream the way the SDK expects", async () => {
    const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: "orders" }))
    const summary = out.StreamDescriptionSummary
    expect(summary?.StreamStatus).toBe("ACTIVE")
    expect(summary?.StreamARN).toBe("arn:aws:kinesis:us-east-1:000000000000:stream/orders")
    expect(summary?.OpenShardCount).toBe(2)
    expect(summary?.MaxRecordSizeInKiB).toBe(1024)
    expect(summary?.StreamCreationTimestamp).toBeInstanceOf(Date)
    const byArn = await client.send(new DescribeStreamSummaryCommand({ StreamARN: summary?.StreamARN }))
    expect(byArn.StreamDescriptionSummary?.StreamName).toBe("orders")
    expect(await errorName(client.send(new DescribeStreamSummaryCommand({ StreamName: "nope" })))).toBe("ResourceNotFoundException")
  })

  it("also answers the SDK's default HTTP/2 handler", async () => {
    const http2Client = sdk(`http://127.0.0.1:${(endpoint.server.address() as { port: number }).port}`, "http2")
    try {
      const out = await http2Client.send(new PutRecordsCommand({ StreamName: "orders", Records: [{ Data: body(1, "x"), PartitionKey: "a" }] }))
      expect(out.FailedRecordCount).toBe(0)
      expect(out.Records?.[0]?.ShardId).toMatch(/^shardId-/)
    } finally {
      http2Client.destroy()
    }
  })

  it("acknowledges every record with its shard and a rising sequence number, and counts", async () => {
    endpoint.reset()
    const commit = new Date(Date.now() - 250).toISOString().replace("T", " ").replace("Z", "+00")
    const records = Array.from({ length: 40 }, (_, i) => ({ Data: body(i, commit), PartitionKey: `[${i}]` }))
    const out = await client.send(new PutRecordsCommand({ StreamName: "orders", Records: records }))
    expect(out.FailedRecordCount).toBe(0)
    expect(out.Records).toHaveLength(40)
    const byShard = new Map<string, Array<bigint>>()
    for (const r of out.Records ?? []) {
      expect(r.ShardId).toMatch(/^shardId-00000000000[01]$/)
      byShard.set(r.ShardId!, [...(byShard.get(r.ShardId!) ?? []), BigInt(r.SequenceNumber!)])
    }
    expect(byShard.size).toBe(2)
    for (const sequences of byShard.values()) {
      expect(sequences).toEqual([...sequences].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
      expect(new Set(sequences).size).toBe(sequences.length)
    }
    const stats = endpoint.stats()
    expect(stats.records).toBe(40)
    expect(stats.dataBytes).toBe(records.reduce((n, r) => n + r.Data.length, 0))
    expect(stats.latencyMs?.count).toBe(40)
    expect(stats.latencyMs?.p50).toBeGreaterThanOrEqual(250)
    expect(stats.recordsWithoutTimestamp).toBe(0)
  })

  it("rejects requests over the Kinesis limits like Kinesis", async () => {
    endpoint.reset()
    const tooMany = Array.from({ length: 501 }, (_, i) => ({ Data: body(i, "x"), PartitionKey: "k" }))
    expect(await errorName(client.send(new PutRecordsCommand({ StreamName: "orders", Records: tooMany })))).toBe("ValidationException")
    const tooBig = [{ Data: new Uint8Array(1024 * 1024), PartitionKey: "k" }]
    expect(await errorName(client.send(new PutRecordsCommand({ StreamName: "orders", Records: tooBig })))).toBe("ValidationException")
    const requestTooBig = Array.from({ length: 6 }, () => ({ Data: new Uint8Array(1000 * 1000), PartitionKey: "k" }))
    expect(await errorName(client.send(new PutRecordsCommand({ StreamName: "orders", Records: requestTooBig })))).toBe("InvalidArgumentException")
    const stats = endpoint.stats()
    expect(stats.records).toBe(0)
    expect(stats.rejected).toEqual({ ValidationException: 2, InvalidArgumentException: 1 })
  })
})

describe("the endpoint as a child process", () => {
  it("fails every record of one partition key while told to (a throttled key), then accepts it again", async () => {
    const endpoint = await startEndpointProcess({ streamName: "bench" })
    const client = sdk(endpoint.url)
    const put = () =>
      client.send(new PutRecordsCommand({
        StreamName: "bench",
        Records: [{ Data: body(1, "x"), PartitionKey: "a" }, { Data: body(2, "x"), PartitionKey: "stuck" }, { Data: body(3, "x"), PartitionKey: "b" }]
      }))
    try {
      await endpoint.failKey("stuck")
      const failing = await put()
      expect(failing.FailedRecordCount).toBe(1)
      expect(failing.Records?.map((r) => r.ErrorCode)).toEqual([undefined, "ProvisionedThroughputExceededException", undefined])
      expect(failing.Records?.[0]?.SequenceNumber).toBeDefined()
      expect(await endpoint.stats()).toMatchObject({ records: 2, failedRecords: 1 })
      await endpoint.failKey("")
      const healed = await put()
      expect(healed.FailedRecordCount).toBe(0)
      expect(await endpoint.stats()).toMatchObject({ records: 5, failedRecords: 1 })
    } finally {
      client.destroy()
      await endpoint.stop()
    }
  })


  it("listens, adds its fixed latency, reports stats and resets", async () => {
    const endpoint = await startEndpointProcess({ latencyMs: 60, streamName: "bench" })
    const client = sdk(endpoint.url)
    try {
      const started = performance.now()
      const out = await client.send(new PutRecordsCommand({
        StreamName: "bench",
        Records: [{ Data: body(1, "2026-01-01 00:00:00+00"), PartitionKey: "a" }, { Data: new Uint8Array([1, 2]), PartitionKey: "b" }]
      }))
      expect(performance.now() - started).toBeGreaterThanOrEqual(60)
      expect(out.FailedRecordCount).toBe(0)
      const stats = await endpoint.stats()
      expect(stats.records).toBe(2)
      expect(stats.recordsWithoutTimestamp).toBe(1)
      expect(stats.latencyMs?.count).toBe(1)
      await endpoint.reset()
      expect((await endpoint.stats()).records).toBe(0)
    } finally {
      client.destroy()
      await endpoint.stop()
    }
  })
})

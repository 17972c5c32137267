/**
 * A minimal Kinesis-compatible endpoint for the benchmark: the AWS JSON 1.1 protocol over HTTP/1.1
 * (and cleartext HTTP/2, which the Kinesis SDK's default handler speaks), with the two operations the service calls (DescribeStreamSummary, PutRecords). It checks the
 * PutRecords limits as Kinesis does, acknowledges every record with a shard and a rising sequence
 * number, optionally waits a fixed time per request, and keeps counts plus one end-to-end latency
 * sample per record (ack time minus the commit time found in the record body). A PutRecords body
 * written as the service writes it is scanned rather than parsed (bench/PutRecordsScan.ts: sizes from
 * the base64 lengths, only a record's first bytes decoded unless its commit time lies beyond them), so
 * the endpoint's CPU per record stays small beside the service it shares the machine with; any other
 * body is parsed with the same results.
 *
 * Run it in its own process so it never shares the measured service's event loop:
 *   node bench/KinesisEndpoint.ts [--port 0] [--endpoint-latency-ms 20] [--shards 4] [--stream bench]
 * prints one JSON line `{"port":N}` once it listens; GET /stats returns {@link EndpointStats};
 * POST /reset clears the counters; POST /fail-key with a partition key as the body fails every record
 * of that key with ProvisionedThroughputExceededException (a throttled hot key) until a POST with an
 * empty body.
 */
import * as Http from "node:http"
import * as Http2 from "node:http2"
import * as Net from "node:net"
import type { AddressInfo } from "node:net"
import type { Readable } from "node:stream"
import * as Flag from "effect/cli/Flag"
import { parseArgs } from "../support/Cli.ts"
import {
  checkPutRecords, commitTimeIn, commitTimeOf, defaultLimits, MiB
} from "./KinesisLimits.ts"
import { decodeBase64Head, scanPutRecords } from "./PutRecordsScan.ts"
import type { ScannedRecords } from "./PutRecordsScan.ts"
import type { IncomingRecord, PutRecordsLimits } from "./KinesisLimits.ts"
import { type Distribution, distribution } from "../support/Distribution.ts"

export interface EndpointOptions {
  readonly streamName: string
  readonly region: string
  readonly shardCount: number
  /** Fixed delay added to every PutRecords request before it is answered. */
  readonly latencyMs: number
  readonly limits: PutRecordsLimits
  /** Scan PutRecords bodies written as the service writes them (default); false parses every body. */
  readonly scan?: boolean
  /** The ack clock, epoch ms (sub-millisecond); for tests. */
  readonly now?: () => number
}

export const defaultEndpointOptions: EndpointOptions = {
  streamName: "bench",
  region: "us-east-1",
  shardCount: 4,
  latencyMs: 0,
  limits: defaultLimits
}

export interface EndpointStats {
  readonly requests: number
  /** Requests answered with an error, by error type. */
  readonly rejected: Readonly<Record<string, number>>
  readonly records: number
  /** Records failed on purpose (POST /fail-key). */
  readonly failedRecords: number
  readonly dataBytes: number
  /** Epoch ms of the first and last acknowledgement, when any. */
  readonly firstAckMs: number | undefined
  readonly lastAckMs: number | undefined
  /**
   * Ack time minus commit time, in ms, over records whose body carried a commit timestamp; rows a
   * backfill published (`"action":"R"`, stamped with their watermark's commit) are not live changes
   * and are left out.
   */
  readonly latencyMs: Distribution | undefined
  readonly recordsWithoutTimestamp: number
  /** Records that were rows a backfill published. */
  readonly backfilledRecords: number
  /** PutRecords bodies read by the scan rather than parsed. */
  readonly scannedBodies: number
  /** Records whose data was decoded whole to look for a commit time beyond its first bytes. */
  readonly fullDecodes: number
}

/** The endpoint in this process: a TCP server (HTTP/1.1 or HTTP/2 per connection) plus its counters. */
export interface KinesisEndpoint {
  readonly server: Net.Server
  readonly stats: () => EndpointStats
  readonly reset: () => void
  /** Answers a PutRecords body as an HTTP request's would be answered (the response text), or throws its error. */
  readonly putRecordsBody: (body: Buffer) => Promise<string>
  /** Fails every record of this partition key from now on (as POST /fail-key); undefined stops. */
  readonly setFailKey: (partitionKey: string | undefined) => void
  /** Stops listening and drops every open connection. */
  readonly close: () => Promise<void>
}

const accountId = "000000000000"
const http2Preface = Buffer.from("PRI * HTTP/2.0")
const creationTime = Math.floor(Date.now() / 1000)

class RequestProblem extends Error {
  readonly type: string
  readonly status: number
  constructor(type: string, message: string, status = 400) {
    super(message)
    this.type = type
    this.status = status
  }
}

/** A growable sample of doubles (latencies), without per-sample allocation. */
class Samples {
  private values = new Float64Array(1 << 16)
  length = 0
  push(value: number): void {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2)
      bigger.set(this.values)
      this.values = bigger
    }
    this.values[this.length++] = value
  }
  view(): Float64Array {
    return this.values.subarray(0, this.length)
  }
}

const backfillAction = Buffer.from(`"action":"R"`)

/** FNV-1a of the partition key, to spread records over shards deterministically. */
const shardOf = (partitionKey: string, shardCount: number): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < partitionKey.length; i++) {
    h ^= partitionKey.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % shardCount
}

const shardId = (index: number): string => `shardId-${String(index).padStart(12, "0")}`

/** What the handler needs of a request and a response, common to HTTP/1.1 and the HTTP/2 compatibility API. */
interface Request extends Readable {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly headers: Http.IncomingHttpHeaders
}
interface Response {
  setHeader(name: string, value: string): unknown
  writeHead(status: number, headers: Http.OutgoingHttpHeaders): unknown
  end(body: string): unknown
}

const readBody = (request: Request, maxBytes: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBytes) chunks.push(chunk)
    })
    request.on("end", () => {
      if (size > maxBytes) reject(new RequestProblem("InvalidArgumentException", `request body of ${size} bytes is too large`))
      else resolve(Buffer.concat(chunks, size))
    })
    request.on("error", reject)
  })

/** A request body as JSON; it must be an object. */
const parseBody = (body: Buffer): Record<string, unknown> => {
  let input: unknown
  try {
    input = JSON.parse(body.toString("utf8"))
  } catch {
    throw new RequestProblem("SerializationException", "request body is not JSON")
  }
  if (!isRecord(input)) throw new RequestProblem("SerializationException", "request body is not a JSON object")
  return input
}

/** A PutRecords request's records: their sizes and keys, each one's first bytes and whole data. */
interface Batch {
  readonly incoming: ReadonlyArray<IncomingRecord>
  /** The start of a record's data: at least {@link HEAD_BYTES} of it, or all; valid until the next call. */
  readonly head: (index: number) => Buffer
  readonly data: (index: number) => Buffer
}

/** How much of a record's data is decoded to find its action and commit time (both near its start). */
const HEAD_BYTES = 144

const FAILED_ENTRY = JSON.stringify({ ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded for the key (bench)" })

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

export const makeEndpoint = (options: EndpointOptions = defaultEndpointOptions): KinesisEndpoint => {
  const streamArn = `arn:aws:kinesis:${options.region}:${accountId}:stream/${options.streamName}`
  // sequence numbers are 49 followed by 45 digits: the shard's count of records
  const sequences = Array.from({ length: options.shardCount }, () => 0)

  let requests = 0
  let rejected: Record<string, number> = {}
  let records = 0
  let failedRecords = 0
  let failKey: string | undefined
  let dataBytes = 0
  let firstAckMs: number | undefined
  let lastAckMs: number | undefined
  let samples = new Samples()
  let withoutTimestamp = 0
  let backfilled = 0
  let scannedBodies = 0
  let fullDecodes = 0
  const now = options.now ?? (() => performance.timeOrigin + performance.now())
  const shardIds = Array.from({ length: options.shardCount }, (_, i) => shardId(i))
  const headScratch = Buffer.alloc(HEAD_BYTES)

  const checkStream = (input: Record<string, unknown>): void => {
    const name = typeof input.StreamName === "string"
      ? input.StreamName
      : typeof input.StreamARN === "string" ? input.StreamARN.slice(input.StreamARN.lastIndexOf("/") + 1) : undefined
    if (name === undefined) throw new RequestProblem("ValidationException", "StreamName or StreamARN is required")
    if (name !== options.streamName) {
      throw new RequestProblem("ResourceNotFoundException", `Stream ${name} under account ${accountId} not found.`)
    }
  }

  const describeStreamSummary = (input: Record<string, unknown>): unknown => {
    checkStream(input)
    return {
      StreamDescriptionSummary: {
        StreamName: options.streamName,
        StreamARN: streamArn,
        StreamStatus: "ACTIVE",
        StreamModeDetails: { StreamMode: "PROVISIONED" },
        RetentionPeriodHours: 24,
        StreamCreationTimestamp: creationTime,
        EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
        EncryptionType: "NONE",
        OpenShardCount: options.shardCount,
        ConsumerCount: 0,
        MaxRecordSizeInKiB: Math.floor(options.limits.maxRecordBytes / 1024)
      }
    }
  }

  /** The records of a parsed body, their data decoded. */
  const decodeRecords = (input: Record<string, unknown>): Batch => {
    if (!Array.isArray(input.Records)) throw new RequestProblem("ValidationException", "Records is required")
    const data: Array<Buffer> = []
    const incoming = input.Records.map((raw: unknown, i): IncomingRecord => {
      if (!isRecord(raw) || typeof raw.Data !== "string" || typeof raw.PartitionKey !== "string") {
        throw new RequestProblem("ValidationException", `records.${i + 1}: Data (base64) and PartitionKey are required`)
      }
      data.push(Buffer.from(raw.Data, "base64"))
      return { dataBytes: data[i]!.length, partitionKey: raw.PartitionKey }
    })
    return { incoming, head: (i) => data[i]!, data: (i) => data[i]! }
  }

  /** The records of a scanned body: only a record's first bytes are decoded, into one scratch buffer. */
  const scannedBatch = (body: Buffer, scanned: ScannedRecords): Batch => {
    const incoming = new Array<IncomingRecord>(scanned.partitionKeys.length)
    for (let i = 0; i < incoming.length; i++) {
      incoming[i] = { dataBytes: scanned.dataBytes[i]!, partitionKey: scanned.partitionKeys[i]! }
    }
    return {
      incoming,
      head: (i) => headScratch.subarray(0, decodeBase64Head(body, scanned.starts[i]!, scanned.ends[i]!, headScratch, HEAD_BYTES)),
      data: (i) => Buffer.from(body.toString("latin1", scanned.starts[i]!, scanned.ends[i]!), "base64")
    }
  }

  const putRecords = async (batch: Batch): Promise<string> => {
    const incoming = batch.incoming
    const violation = checkPutRecords(incoming, options.limits)
    if (violation !== undefined) throw new RequestProblem(violation.type, violation.message)
    if (options.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, options.latencyMs))
    const ackMs = now()
    let failed = 0
    let results = ""
    for (let i = 0; i < incoming.length; i++) {
      const record = incoming[i]!
      if (i > 0) results += ","
      if (record.partitionKey === failKey) {
        results += FAILED_ENTRY
        failed++
        continue
      }
      const shard = shardOf(record.partitionKey, options.shardCount)
      const sequence = ++sequences[shard]!
      results += `{"SequenceNumber":"49${String(sequence).padStart(45, "0")}","ShardId":"${shardIds[shard]}"}`
      dataBytes += record.dataBytes
      // the action is among the first fields, after the position; the commit time near the start
      const head = batch.head(i)
      if (head.subarray(0, 96).indexOf(backfillAction) >= 0) {
        backfilled++
        continue
      }
      let commitMs = commitTimeIn(head, head.length === record.dataBytes)
      if (commitMs === null) {
        fullDecodes++
        commitMs = commitTimeOf(batch.data(i))
      }
      if (commitMs === undefined) withoutTimestamp++
      else samples.push(ackMs - commitMs)
    }
    records += incoming.length - failed
    failedRecords += failed
    if (failed < incoming.length) {
      firstAckMs ??= ackMs
      lastAckMs = ackMs
    }
    return `{"FailedRecordCount":${failed},"Records":[${results}]}`
  }

  /** A PutRecords body: scanned when it has the service's shape, else parsed. */
  const putRecordsBody = async (body: Buffer): Promise<string> => {
    const scanned = options.scan === false ? undefined : scanPutRecords(body)
    if (scanned !== undefined) {
      scannedBodies++
      const members: Record<string, unknown> = {}
      if (scanned.streamName !== undefined) members.StreamName = scanned.streamName
      if (scanned.streamArn !== undefined) members.StreamARN = scanned.streamArn
      checkStream(members)
      return putRecords(scannedBatch(body, scanned))
    }
    const input = parseBody(body)
    checkStream(input)
    return putRecords(decodeRecords(input))
  }

  /** Each operation's answer: a JSON text. */
  const operations: Record<string, (body: Buffer) => Promise<string>> = {
    "Kinesis_20131202.DescribeStreamSummary": async (body) => JSON.stringify(describeStreamSummary(parseBody(body))),
    "Kinesis_20131202.PutRecords": putRecordsBody
  }

  const stats = (): EndpointStats => ({
    scannedBodies, fullDecodes,
    requests, rejected: { ...rejected }, records, failedRecords, dataBytes, firstAckMs, lastAckMs,
    latencyMs: distribution(samples.view()), recordsWithoutTimestamp: withoutTimestamp, backfilledRecords: backfilled
  })

  const reset = (): void => {
    requests = 0
    rejected = {}
    records = 0
    failedRecords = 0
    dataBytes = 0
    firstAckMs = undefined
    lastAckMs = undefined
    samples = new Samples()
    withoutTimestamp = 0
    backfilled = 0
    scannedBodies = 0
    fullDecodes = 0
  }

  const answer = (response: Response, status: number, body: unknown, contentType = "application/x-amz-json-1.1"): void => {
    answerText(response, status, JSON.stringify(body), contentType)
  }
  const answerText = (response: Response, status: number, text: string, contentType = "application/x-amz-json-1.1"): void => {
    response.writeHead(status, {
      "content-type": contentType,
      "content-length": Buffer.byteLength(text),
      "x-amzn-requestid": `bench-${requests}`
    })
    response.end(text)
  }

  const handle = async (request: Request, response: Response): Promise<void> => {
    if (request.method === "GET" && request.url === "/stats") return answer(response, 200, stats(), "application/json")
    if (request.method === "POST" && request.url === "/reset") {
      reset()
      return answer(response, 200, { reset: true }, "application/json")
    }
    if (request.method === "POST" && request.url === "/fail-key") {
      const key = (await readBody(request, 1024)).toString("utf8")
      failKey = key === "" ? undefined : key
      return answer(response, 200, { failKey: failKey ?? null }, "application/json")
    }
    const target = request.headers["x-amz-target"]
    const operation = typeof target === "string" ? operations[target] : undefined
    requests++
    try {
      if (request.method !== "POST" || operation === undefined) {
        throw new RequestProblem("UnknownOperationException", `unsupported operation ${String(target)}`)
      }
      // a whole request may be 5 MiB of record bytes, base64 makes it 4/3 of that, plus JSON framing
      const body = await readBody(request, 8 * MiB)
      answerText(response, 200, await operation(body))
    } catch (error) {
      const problem = error instanceof RequestProblem ? error : new RequestProblem("InternalFailure", String(error), 500)
      rejected[problem.type] = (rejected[problem.type] ?? 0) + 1
      response.setHeader("x-amzn-errortype", problem.type)
      answer(response, problem.status, { __type: problem.type, message: problem.message })
    }
  }

  const http1 = Http.createServer({ keepAlive: true }, (request, response) => {
    void handle(request, response)
  })
  http1.keepAliveTimeout = 60_000
  const http2 = Http2.createServer((request, response) => {
    void handle(request, response)
  })
  const sockets = new Set<Net.Socket>()
  // Cleartext HTTP/2 starts with its connection preface; anything else is HTTP/1.1.
  const server = Net.createServer((socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    socket.once("data", (first: Buffer) => {
      socket.pause()
      socket.unshift(first)
      const head = first.subarray(0, http2Preface.length)
      if (head.equals(http2Preface.subarray(0, head.length))) {
        http2.emit("connection", socket)
      } else {
        http1.emit("connection", socket)
        socket.resume()
      }
    })
  })
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
  const setFailKey = (key: string | undefined): void => {
    failKey = key
  }
  return { server, stats, reset, putRecordsBody, setFailKey, close }
}

/** Listens on 127.0.0.1; resolves with the port. */
export const listen = (endpoint: KinesisEndpoint, port = 0): Promise<number> =>
  new Promise((resolve, reject) => {
    endpoint.server.once("error", reject)
    endpoint.server.listen(port, "127.0.0.1", () => resolve((endpoint.server.address() as AddressInfo).port))
  })

if (import.meta.main) {
  const args = await parseArgs("kinesis-endpoint", "The benchmark's Kinesis-compatible endpoint; prints {\"port\":N} once it listens", {
    port: Flag.Int("port").pipe(Flag.withDefault(0)),
    stream: Flag.String("stream").pipe(Flag.withDefault(defaultEndpointOptions.streamName)),
    region: Flag.String("region").pipe(Flag.withDefault(defaultEndpointOptions.region)),
    shards: Flag.Int("shards").pipe(Flag.withDefault(defaultEndpointOptions.shardCount)),
    endpointLatencyMs: Flag.Int("endpoint-latency-ms").pipe(Flag.withDefault(0)),
    maxRecordKib: Flag.Int("max-record-kib").pipe(Flag.withDefault(defaultLimits.maxRecordBytes / 1024))
  })
  const endpoint = makeEndpoint({
    streamName: args.stream,
    region: args.region,
    shardCount: Math.max(1, args.shards),
    latencyMs: Math.max(0, args.endpointLatencyMs),
    limits: { ...defaultLimits, maxRecordBytes: args.maxRecordKib * 1024 }
  })
  const bound = await listen(endpoint, args.port)
  process.stdout.write(JSON.stringify({ port: bound }) + "\n")
  const stop = (): void => {
    void endpoint.close().then(() => process.exit(0))
  }
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
}

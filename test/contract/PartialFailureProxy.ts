/**
 * An HTTP/1.1 proxy in front of kinesalite that makes PutRecords partially fail, as Kinesis does
 * under throttling: it takes some records out of a request, forwards the rest, and answers with a
 * `ProvisionedThroughputExceededException` entry in the place of each record it took out (those
 * never reach the stream). Every other request passes through unchanged.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

export interface PartialFailureProxy {
  readonly endpoint: string
  /** Records failed so far. */
  readonly failed: () => number
  /** Requests that had a record failed so far. */
  readonly partialRequests: () => number
  readonly setFailing: (on: boolean) => void
  readonly stop: () => Promise<void>
}

interface PutRecordsBody {
  readonly StreamName?: string
  readonly StreamARN?: string
  readonly Records: ReadonlyArray<unknown>
}

interface PutRecordsResult {
  readonly FailedRecordCount?: number
  readonly Records: ReadonlyArray<Record<string, unknown>>
  readonly [field: string]: unknown
}

const readBody = (stream: NodeJS.ReadableStream): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    stream.on("data", (chunk: Buffer) => chunks.push(chunk))
    stream.on("end", () => resolve(Buffer.concat(chunks)))
    stream.on("error", reject)
  })

/** A deterministic pseudo-random sequence (mulberry32), so a run can be repeated. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/**
 * Starts the proxy. `requestShare` of the PutRecords requests with more than one record lose
 * `recordShare` of their records (at least one).
 */
export const start = async (
  target: { readonly host: string; readonly port: number },
  options: { readonly requestShare: number; readonly recordShare: number; readonly seed?: number }
): Promise<PartialFailureProxy> => {
  const next = random(options.seed ?? 42)
  let failing = true
  let failed = 0
  let partialRequests = 0

  const forward = (req: Http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: Http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, "content-length": String(body.length) }
      const upstream = Http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers }, (res) => {
        readBody(res).then((data) => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: data }), reject)
      })
      upstream.on("error", reject)
      upstream.end(body)
    })

  const server = Http.createServer((req, res) => {
    void (async () => {
      const body = await readBody(req)
      const isPut = String(req.headers["x-amz-target"] ?? "").endsWith(".PutRecords")
      let request: PutRecordsBody | undefined
      if (isPut && failing) {
        const parsed = JSON.parse(body.toString("utf8")) as PutRecordsBody
        if (parsed.Records.length > 1 && next() < options.requestShare) request = parsed
      }
      if (request === undefined) {
        const answer = await forward(req, body)
        res.writeHead(answer.status, { ...answer.headers, "content-length": String(answer.body.length) })
        res.end(answer.body)
        return
      }
      const drop = new Set<number>()
      const count = Math.max(1, Math.floor(request.Records.length * options.recordShare))
      while (drop.size < count) drop.add(Math.floor(next() * request.Records.length))
      const kept = request.Records.filter((_, i) => !drop.has(i))
      const answer = await forward(req, Buffer.from(JSON.stringify({ ...request, Records: kept })))
      if (answer.status !== 200) {
        res.writeHead(answer.status, { ...answer.headers, "content-length": String(answer.body.length) })
        res.end(answer.body)
        return
      }
      const result = JSON.parse(answer.body.toString("utf8")) as PutRecordsResult
      const merged: Array<Record<string, unknown>> = []
      let k = 0
      for (let i = 0; i < request.Records.length; i++) {
        merged.push(drop.has(i)
          ? { ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded for shard (injected)" }
          : result.Records[k++]!)
      }
      failed += drop.size
      partialRequests++
      const out = Buffer.from(JSON.stringify({
        ...result,
        FailedRecordCount: (result.FailedRecordCount ?? 0) + drop.size,
        Records: merged
      }))
      res.writeHead(200, { ...answer.headers, "content-length": String(out.length) })
      res.end(out)
    })().catch((error: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" })
      res.end(String(error))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const port = (server.address() as AddressInfo).port
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failed: () => failed,
    partialRequests: () => partialRequests,
    setFailing: (on) => {
      failing = on
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

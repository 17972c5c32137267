/**
 * PutRecords, the one call on the hot path, without the SDK's middleware stack: the body written
 * once into one buffer (`PutRecordsBody`), signed with @smithy/signature-v4 (the SDK's own signer,
 * given the SDK client's credential provider, region and clock offset, and node:crypto's SHA-256
 * with HMAC keys imported once: `SigningHash`), sent over the SDK
 * client's HTTP handler (keep-alive sockets, timeouts), the response read into one result per record.
 * The endpoint is the one the SDK resolves for PutRecords (AWS_ENDPOINT_URL_KINESIS, or the
 * region's, or a stream ARN's account endpoint), resolved once per stream. A failure is thrown the
 * way the SDK throws it (a credential provider's error as it is, a socket error, or an error named
 * by the service's error code with `$metadata.httpStatusCode`), for `ErrorPolicy.fromAws`.
 */
import { type KinesisClient as SdkClient, PutRecordsCommand } from "@aws-sdk/client-kinesis"
import { getEndpointFromInstructions } from "@smithy/core/endpoints"
import { HttpRequest } from "@smithy/core/transport"
import type { NodeHttpHandler } from "@smithy/node-http-handler"
import { SignatureV4 } from "@smithy/signature-v4"
import type { PutRecordResult, PutRecordsEntry } from "./KinesisClient.ts"
import * as BodyBuffers from "./BodyBuffers.ts"
import { decodeOutput, encodeBody } from "./PutRecordsBody.ts"
import * as SigningHash from "./SigningHash.ts"

/** The stream a request names: `StreamName` or `StreamARN`, as in the SDK's input. */
export type StreamMembers = { readonly StreamName: string } | { readonly StreamARN: string }

/** What sends a signed request: the SDK client's request handler. */
export type RequestHandler = Pick<NodeHttpHandler, "handle">
type HttpResponse = Awaited<ReturnType<RequestHandler["handle"]>>["response"]

export interface PutRecordsSender {
  /** One PutRecords request; resolves with one result per response entry, in request order. */
  readonly send: (
    stream: StreamMembers,
    records: ReadonlyArray<PutRecordsEntry>,
    signal?: AbortSignal
  ) => Promise<ReadonlyArray<PutRecordResult>>
}

const TARGET = "Kinesis_20131202.PutRecords"
const CONTENT_TYPE = "application/x-amz-json-1.1"

/** The fields of the SDK client's resolved configuration this path uses. */
interface ResolvedConfig {
  readonly credentials: SignatureV4["credentialProvider"]
  readonly region: () => Promise<string>
  readonly signingEscapePath?: boolean
  readonly disableClockSkewCorrection?: () => Promise<boolean>
  systemClockOffset?: number
}

const errorCodeOf = (response: HttpResponse, body: unknown): string | undefined => {
  const field = (key: string): unknown => (typeof body === "object" && body !== null ? (body as Record<string, unknown>)[key] : undefined)
  const raw = [response.headers["x-amzn-errortype"], field("code"), field("__type")].find(
    (value): value is string => typeof value === "string" && value.length > 0
  )
  // as the SDK sanitizes it: "aws.protocoltests#FooError:http://…" → "FooError"
  return raw?.split(":")[0]?.split("#").pop()
}

/** An error response as the SDK would throw it, as far as `ErrorPolicy.fromAws` reads it. */
const serviceError = (response: HttpResponse, bytes: Uint8Array): Error => {
  let body: unknown
  try {
    body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"))
  } catch {
    body = undefined
  }
  const code = errorCodeOf(response, body)
  const message = typeof body === "object" && body !== null
    ? (body as Record<string, unknown>).message ?? (body as Record<string, unknown>).Message
    : undefined
  const error = new Error(typeof message === "string" ? message : `HTTP ${response.statusCode}`)
  if (code !== undefined) error.name = code
  return Object.assign(error, {
    $fault: response.statusCode >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: response.statusCode, requestId: response.headers["x-amzn-requestid"] }
  })
}

const collect = async (body: unknown): Promise<Uint8Array> => {
  if (body instanceof Uint8Array) return body
  if (body === undefined || body === null) return new Uint8Array(0)
  const chunks: Array<Buffer> = []
  for await (const chunk of body as AsyncIterable<Buffer | string>) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk)
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
}

/** The signer for `client`'s requests: its credentials, region and path escaping, Kinesis' signing name. */
export const signer = (client: SdkClient): SignatureV4 => {
  const config = client.config as unknown as ResolvedConfig
  return new SignatureV4({
    credentials: config.credentials,
    region: config.region,
    service: "kinesis",
    sha256: SigningHash.make(),
    uriEscapePath: config.signingEscapePath ?? true
  })
}

/**
 * A sender over `client`'s configuration and `handler` (the handler the client was given, so both
 * share its sockets), keeping up to `keptBodies` body buffers for later requests (`BodyBuffers`:
 * as many as requests in flight).
 */
export const make = (client: SdkClient, handler: RequestHandler, keptBodies = 8): PutRecordsSender => {
  const config = client.config as unknown as ResolvedConfig
  const sigV4 = signer(client)
  const buffers = BodyBuffers.make(keptBodies)
  const endpoints = new Map<string, Promise<URL>>()

  const endpointOf = (stream: StreamMembers): Promise<URL> => {
    const key = "StreamARN" in stream ? stream.StreamARN : ""
    let endpoint = endpoints.get(key)
    if (endpoint === undefined) {
      endpoint = getEndpointFromInstructions(
        { ...stream, Records: [] },
        PutRecordsCommand,
        client.config as Parameters<typeof getEndpointFromInstructions>[2]
      ).then((resolved) => resolved.url)
      endpoints.set(key, endpoint)
      // a failure (credentials not there yet, for an account endpoint) is asked again next time
      endpoint.catch(() => endpoints.delete(key))
    }
    return endpoint
  }

  const send: PutRecordsSender["send"] = async (stream, records, signal) => {
    const url = await endpointOf(stream)
    let buffer: Buffer | undefined
    const body = encodeBody(stream, records, (size) => (buffer = buffers.take(size)))
    const request = new HttpRequest({
      method: "POST",
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === "" ? {} : { port: Number(url.port) }),
      // as the SDK's RPC protocols: the endpoint's path with a trailing slash
      path: url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/`,
      query: {},
      headers: {
        host: url.host,
        "content-type": CONTENT_TYPE,
        "x-amz-target": TARGET,
        "content-length": String(body.byteLength)
      },
      body
    })
    const skewCorrection = (await config.disableClockSkewCorrection?.()) !== true
    const sentAt = Date.now()
    const signed = await sigV4.sign(request, {
      signingDate: new Date(sentAt + (skewCorrection ? config.systemClockOffset ?? 0 : 0))
    })
    const { response } = await handler.handle(HttpRequest.isInstance(signed) ? signed : new HttpRequest(signed), signal === undefined ? {} : { abortSignal: signal })
    const bytes = await collect(response.body)
    if (response.statusCode >= 200 && response.statusCode < 300) {
      // answered with success: the endpoint read the whole body, nothing reads the buffer any more
      buffers.give(buffer!)
      return decodeOutput(bytes)
    }
    if (skewCorrection) correctClock(config, response, sentAt)
    throw serviceError(response, bytes)
  }

  return { send }
}

/**
 * After an error response, the clock offset the next signature uses, as the SDK's signer sets it:
 * the server's Date header minus the local time (unless the response was cached, or took 15 minutes).
 */
const correctClock = (config: ResolvedConfig, response: HttpResponse, sentAt: number): void => {
  const date = response.headers["date"] ?? response.headers["Date"]
  if (date === undefined || response.headers["age"] !== undefined) return
  const serverTime = Date.parse(date)
  const now = Date.now()
  if (Number.isNaN(serverTime) || now - sentAt > 900_000) return
  config.systemClockOffset = serverTime - now
}

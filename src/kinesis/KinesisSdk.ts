/**
 * The live {@link KinesisClient}: DescribeStreamSummary through @aws-sdk/client-kinesis, PutRecords
 * (the hot path) signed and sent without the SDK's middleware (`PutRecordsHttp`) over the same
 * client's configuration and HTTP/1.1 keep-alive handler (local Kinesis servers such as kinesalite do
 * not speak HTTP/2), with sockets for KINESIS_MAX_INFLIGHT concurrent requests and a request timeout.
 * One attempt per call (the publisher retries); credentials come from the SDK's default chain; the
 * endpoint from AWS_ENDPOINT_URL_KINESIS when set. Failures are classified by `ErrorPolicy.fromAws`.
 */
import { DescribeStreamSummaryCommand, KinesisClient as SdkClient, type KinesisClientConfig } from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { KinesisConfig } from "../config/ServiceConfig.ts"
import type { StreamRef } from "../config/Streams.ts"
import { ServiceConfig } from "../config/ServiceConfig.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import { KinesisClient, type PutRecordsEntry } from "./KinesisClient.ts"
import * as PutRecordsHttp from "./PutRecordsHttp.ts"

const MiB = 1024 * 1024

// through getBuiltinModule, not `import`: an ES import of node:http reads every export, and its
// WebSocket getters load Node's fetch implementation (undici), which nothing here uses
const Http = process.getBuiltinModule("node:http")
const Https = process.getBuiltinModule("node:https")

/** What the service leaves to the SDK's defaults and a test may set. */
export interface SdkOverrides {
  /** A credential provider instead of the SDK's default chain. */
  readonly credentials?: KinesisClientConfig["credentials"]
}

/** The SDK client for a configuration, and the HTTP handler it sends with. */
export const sdkClient = (
  config: KinesisConfig,
  overrides: SdkOverrides = {}
): { readonly client: SdkClient; readonly handler: NodeHttpHandler } => {
  // a few spare sockets beyond the in-flight requests, for DescribeStreamSummary and replaced sockets
  const agentOptions = { keepAlive: true, maxSockets: config.maxInflight + 2 }
  const handler = new NodeHttpHandler({
    httpAgent: new Http.Agent(agentOptions),
    httpsAgent: new Https.Agent(agentOptions),
    requestTimeout: config.requestTimeoutMs,
    // without it, the handler only logs a warning when a request outlives requestTimeout and waits on
    throwOnRequestTimeout: true,
    connectionTimeout: Math.min(config.requestTimeoutMs, 10_000)
  })
  const client = new SdkClient({
    region: config.region,
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    ...(overrides.credentials === undefined ? {} : { credentials: overrides.credentials }),
    maxAttempts: 1,
    requestHandler: handler
  })
  // The SDK's logger middleware walks every request (each record) to mask it for a logger we do not
  // use: a measurable share of CPU per PutRecords. Our own logs say what was sent.
  client.middlewareStack.remove("loggerMiddleware")
  return { client, handler }
}

/** A {@link KinesisClient} over the SDK; the client is destroyed when the scope closes. */
export const make = (config: KinesisConfig, overrides: SdkOverrides = {}) =>
  Effect.gen(function*() {
    const { client, handler } = yield* Effect.acquireRelease(
      Effect.sync(() => sdkClient(config, overrides)),
      ({ client }) => Effect.sync(() => client.destroy())
    )
    const sender = PutRecordsHttp.make(client, handler, config.maxInflight)
    /** The operations on one stream; `forStream` gives another over the same client. */
    const on = (target: StreamRef): KinesisClient["Service"] => {
      const stream = target.arn !== undefined ? { StreamARN: target.arn } : { StreamName: target.name }

      const putRecords = Effect.fn("KinesisSdk.putRecords")(function*(records: ReadonlyArray<PutRecordsEntry>) {
        return yield* Effect.tryPromise({
          try: (signal) => sender.send(stream, records, signal),
          catch: ErrorPolicy.fromAws
        })
      })

      const describeLimits: KinesisClient["Service"]["describeLimits"] = Effect.tryPromise({
        try: (signal) => client.send(new DescribeStreamSummaryCommand(stream), { abortSignal: signal }),
        catch: ErrorPolicy.fromAws
      }).pipe(
        Effect.map((output) => {
          const kib = output.StreamDescriptionSummary?.MaxRecordSizeInKiB
          return { maxRecordBytes: typeof kib === "number" && kib > 0 ? kib * 1024 : MiB }
        }),
        Effect.withSpan("KinesisSdk.describeLimits")
      )

      return { putRecords, describeLimits, forStream: on }
    }

    return KinesisClient.of(on({ name: config.streamName, arn: config.streamArn }))
  })

/** The live layer for an explicit configuration. */
export const layer = (config: KinesisConfig): Layer.Layer<KinesisClient> => Layer.effect(KinesisClient, make(config))

/** The live layer, configured from {@link ServiceConfig}. */
export const layerConfig: Layer.Layer<KinesisClient, never, ServiceConfig> = Layer.effect(
  KinesisClient,
  Effect.flatMap(Effect.service(ServiceConfig), (config) => make(config.kinesis))
)

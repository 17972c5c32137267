/**
 * Credentials that cannot be had for a while are retried, not fatal: the SDK client with a
 * credential provider that fails and then recovers, alone and under the publisher's retry, and the
 * SDK's own default chain while the instance metadata service (IMDS) is unreachable and then back.
 * Against kinesalite.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Metric } from "effect"
import * as Http from "node:http"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as KinesisSdk from "../../src/kinesis/KinesisSdk.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import * as ChangeQueue from "../../src/pipeline/ChangeQueue.ts"
import * as Frontier from "../../src/pipeline/Frontier.ts"
import * as Publisher from "../../src/pipeline/Publisher.ts"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { freePort } from "../../support/Ports.ts"
import { change, kinesisConfig, pipelineConfig } from "../pipeline/fixtures.ts"

let kinesis: Kinesalite

beforeAll(async () => {
  kinesis = await startKinesalite()
  await kinesis.createStream("creds", 1)
})

afterAll(async () => {
  await kinesis?.stop()
})

const config = kinesisConfig({
  streamName: "creds",
  endpoint: "",
  region: "us-east-1",
  requestTimeoutMs: 5_000,
  retryBaseMs: 10,
  retryMaxMs: 50
})
const configFor = () => ({ ...config, endpoint: kinesis.endpoint, region: kinesis.region })

const encode = (text: string) => new TextEncoder().encode(text)

/**
 * A provider that fails its first `failures` calls the way the SDK's chain fails when no source
 * answers (a CredentialsProviderError, as @smithy/property-provider throws it), then returns keys.
 */
const flakyProvider = (failures: number) => {
  let calls = 0
  const provider = async () => {
    calls++
    if (calls <= failures) {
      throw Object.assign(new Error("Could not load credentials from any providers"), {
        name: "CredentialsProviderError",
        tryNextLink: false
      })
    }
    return { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "token" }
  }
  return { provider, calls: () => calls }
}

const retriesFor = (code: string) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.putRecordsRetries, { code })), (state) => state.count)

/** Publishes `count` changes through a publisher over `client`, and waits for them all. */
const publishAll = (client: Parameters<typeof Publisher.make>[2], count: number) =>
  Effect.gen(function*() {
    const queue = ChangeQueue.make<ChangeEvent>({ maxMessages: 100, maxBytes: 1 << 20, sizeOf: Publisher.eventBytes })
    const frontier = Frontier.make(0n)
    const publisher = Publisher.make(queue, frontier, client, {
      kinesis: configFor(),
      pipeline: pipelineConfig({ batchMaxRecords: 10, batchMaxWaitMs: 2 }),
      maxRecordBytes: 1024 * 1024
    })
    const events = Array.from({ length: count }, (_, seq) => change(seq, { seq }))
    const run = yield* publisher.run.pipe(Effect.forkChild)
    frontier.register(events)
    yield* queue.offerAll(events)
    queue.end()
    yield* Fiber.join(run)
    return frontier.outstanding()
  })

describe("credential-provider failures", () => {
  it.live("the SDK client: a provider that fails is a retriable CredentialsUnavailable, and works once it recovers", () =>
    Effect.gen(function*() {
      const flaky = flakyProvider(2)
      const client = yield* KinesisSdk.make(configFor(), { credentials: flaky.provider })
      const record = [{ body: encode(`{"n":1}`), partitionKey: "k" }]
      for (let attempt = 1; attempt <= 2; attempt++) {
        const error = yield* Effect.flip(client.putRecords(record))
        expect(error).toMatchObject({ _tag: "KinesisError", reason: "CredentialsUnavailable", code: "CredentialsProviderError" })
        expect(error.retriable).toBe(true)
        expect(error.message).toContain("retrying with backoff")
      }
      const results = yield* client.putRecords(record)
      expect(results.map((r) => r._tag)).toEqual(["Ok"])
      expect(flaky.calls()).toBe(3)
    }))

  it.live("the publisher retries through it: every change lands once the provider recovers", () =>
    Effect.gen(function*() {
      const before = yield* retriesFor("CredentialsProviderError")
      const storedBefore = (yield* Effect.promise(() => kinesis.readAll("creds"))).length
      const flaky = flakyProvider(3)
      const client = yield* KinesisSdk.make(configFor(), { credentials: flaky.provider })
      const outstanding = yield* publishAll(client, 20)
      expect(outstanding).toBe(0)
      const stored = yield* Effect.promise(() => kinesis.readAll("creds"))
      expect(stored.length - storedBefore).toBe(20)
      expect((yield* retriesFor("CredentialsProviderError")) - before).toBeGreaterThanOrEqual(3)
    }))
})

/** A fake EC2 instance metadata service (IMDSv2) handing out one role's keys; counts what it served. */
const startImds = (port: number): Promise<{ readonly server: Http.Server; readonly served: () => number }> =>
  new Promise((resolve) => {
    let served = 0
    const server = Http.createServer((request, response) => {
      const path = request.url ?? ""
      served++
      if (request.method === "PUT" && path === "/latest/api/token") return response.end("imds-token")
      if (path === "/latest/meta-data/iam/security-credentials/") return response.end("cdc-role")
      if (path === "/latest/meta-data/iam/security-credentials/cdc-role") {
        return response.end(JSON.stringify({
          Code: "Success",
          Type: "AWS-HMAC",
          AccessKeyId: "ASIAIMDS",
          SecretAccessKey: "imds-secret",
          Token: "imds-session-token",
          Expiration: new Date(Date.now() + 6 * 3600_000).toISOString()
        }))
      }
      response.statusCode = 404
      response.end()
    })
    server.listen(port, "127.0.0.1", () => resolve({ server, served: () => served }))
  })

/** The environment of an EC2 instance: no keys, no profile files, IMDS at `endpoint`. */
const instanceEnvironment = (endpoint: string): Record<string, string | undefined> => ({
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_EC2_METADATA_DISABLED: undefined,
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials",
  AWS_CONFIG_FILE: "/nonexistent/config",
  AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint
})

const withEnvironment = <A, E, R>(env: Record<string, string | undefined>, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]))
      for (const [key, value] of Object.entries(env)) {
        if (value === undefined) delete process.env[key]
        else process.env[key] = value
      }
      return saved
    }),
    () => effect,
    (saved) =>
      Effect.sync(() => {
        for (const [key, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[key]
          else process.env[key] = value
        }
      })
  )

describe("the SDK's default credential chain with IMDS unreachable, then back", () => {
  it.live("fails as retriable CredentialsUnavailable while IMDS is down; the publisher's retry succeeds once it is up", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      yield* withEnvironment(
        instanceEnvironment(`http://127.0.0.1:${port}`),
        Effect.gen(function*() {
          const client = yield* KinesisSdk.make(configFor())
          // nothing listens on the IMDS port yet
          const error = yield* Effect.flip(client.putRecords([{ body: encode("{}"), partitionKey: "k" }]))
          expect(error).toMatchObject({ _tag: "KinesisError", reason: "CredentialsUnavailable" })
          expect(error.retriable).toBe(true)

          // the publisher keeps retrying; IMDS comes up meanwhile
          const storedBefore = (yield* Effect.promise(() => kinesis.readAll("creds"))).length
          const publishing = yield* publishAll(client, 5).pipe(Effect.forkChild)
          yield* Effect.sleep("300 millis")
          const imds = yield* Effect.acquireRelease(
            Effect.promise(() => startImds(port)),
            ({ server }) => Effect.sync(() => server.close())
          )
          expect(yield* Fiber.join(publishing)).toBe(0)
          // the keys came from IMDS: token, role name, role keys
          expect(imds.served()).toBeGreaterThanOrEqual(3)
          const stored = yield* Effect.promise(() => kinesis.readAll("creds"))
          expect(stored.length - storedBefore).toBe(5)
        })
      )
    }).pipe(Effect.scoped))
})

/**
 * KINESIS_REQUEST_TIMEOUT_MS fails a PutRecords request that gets no answer: against an endpoint
 * that accepts the connection and reads the request but never answers, the request fails within
 * about the timeout with a retriable network error (the handler's TimeoutError), where it used to
 * wait for as long as the connection stayed open.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Result } from "effect"
import * as Net from "node:net"
import type { KinesisError } from "../../src/Errors.ts"
import * as KinesisSdk from "../../src/kinesis/KinesisSdk.ts"
import { kinesisConfig } from "../pipeline/fixtures.ts"

let server: Net.Server
let port = 0
const sockets = new Set<Net.Socket>()

beforeAll(async () => {
  // reads whatever comes and never writes a byte back
  server = Net.createServer((socket) => {
    sockets.add(socket)
    socket.on("data", () => {})
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  port = (server.address() as Net.AddressInfo).port
})

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe("PutRecords request timeout", () => {
  it.live("a request without an answer fails after KINESIS_REQUEST_TIMEOUT_MS with a retriable network error", () =>
    Effect.scoped(Effect.gen(function*() {
      process.env.AWS_ACCESS_KEY_ID ??= "test"
      process.env.AWS_SECRET_ACCESS_KEY ??= "test"
      const client = yield* KinesisSdk.make(
        kinesisConfig({ streamName: "silent", endpoint: `http://127.0.0.1:${port}`, region: "us-east-1", requestTimeoutMs: 400 })
      )
      const started = Date.now()
      const exit = yield* Effect.exit(
        client.putRecords([{ body: new TextEncoder().encode("{}"), partitionKey: "k" }]).pipe(
          // far beyond the configured timeout: a hung request would end here instead
          Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(new Error("the request never timed out")) })
        )
      )
      const elapsed = Date.now() - started
      expect(Exit.isFailure(exit)).toBe(true)
      const found = Exit.isFailure(exit) ? Cause.findError(exit.cause) : undefined
      const error: KinesisError | undefined = found !== undefined && Result.isSuccess(found) ? found.success : undefined
      // the handler's timeout error (name TimeoutError, code ETIMEDOUT), classified as a network failure
      expect(error?.code).toBe("ETIMEDOUT")
      expect(error?.reason).toBe("Network")
      expect(error?._tag).toBe("KinesisError")
      expect(error?.retriable).toBe(true)
      expect(elapsed).toBeGreaterThanOrEqual(350)
      expect(elapsed).toBeLessThan(5_000)
    })), 20_000)
})

/** KinesisSdk against a real Kinesis implementation (kinesalite, in process). */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as KinesisSdk from "../../src/kinesis/KinesisSdk.ts"
import * as ChangeQueue from "../../src/pipeline/ChangeQueue.ts"
import * as Frontier from "../../src/pipeline/Frontier.ts"
import * as Publisher from "../../src/pipeline/Publisher.ts"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { change, decode, kinesisConfig, pipelineConfig } from "../pipeline/fixtures.ts"

let kinesis: Kinesalite

beforeAll(async () => {
  kinesis = await startKinesalite()
  await kinesis.createStream("orders", 2)
})

afterAll(async () => {
  await kinesis?.stop()
})

const config = (streamName: string) =>
  kinesisConfig({ streamName, endpoint: kinesis.endpoint, region: kinesis.region, requestTimeoutMs: 5_000 })

const encode = (text: string) => new TextEncoder().encode(text)

describe("KinesisSdk (kinesalite)", () => {
  it.live("puts records and reads them back byte for byte", () =>
    Effect.gen(function*() {
      const client = yield* KinesisSdk.make(config("orders"))
      const entries = Array.from({ length: 20 }, (_, i) => ({ body: encode(`{"n":${i}}`), partitionKey: `public.t:[${i}]` }))
      const results = yield* client.putRecords(entries)
      expect(results).toHaveLength(20)
      expect(results.every((r) => r._tag === "Ok")).toBe(true)
      const stored = yield* Effect.promise(() => kinesis.readAll("orders"))
      const byKey = new Map(stored.map((r) => [r.partitionKey, new TextDecoder().decode(r.data)]))
      for (let i = 0; i < 20; i++) expect(byKey.get(`public.t:[${i}]`)).toBe(`{"n":${i}}`)
    }))

  it.live("reads back byte for byte: every byte value, each base64 padding, a record at the 1 MiB limit, Unicode and escaped keys", () =>
    Effect.gen(function*() {
      yield* Effect.promise(() => kinesis.createStream("bytes", 2))
      const client = yield* KinesisSdk.make(config("bytes"))
      const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i)
      const bigKey = "big:ключ"
      const entries = [
        ...[0, 1, 2, 3, 4, 5, 254, 255, 256].map((n, i) => ({ body: everyByte.subarray(256 - n), partitionKey: `bytes:[${i}]` })),
        { body: Buffer.from(everyByte.map((b) => 255 - b)), partitionKey: "ключ \"quoted\" \\ back\nslash" },
        { body: everyByte.subarray(7, 200), partitionKey: "😀".repeat(64) },
        { body: Buffer.alloc(1024 * 1024 - Buffer.byteLength(bigKey), 0xa5), partitionKey: bigKey }
      ]
      const results = yield* client.putRecords(entries)
      expect(results).toEqual(entries.map(() => ({ _tag: "Ok" })))
      const stored = yield* Effect.promise(() => kinesis.readAll("bytes"))
      expect(stored).toHaveLength(entries.length)
      const byKey = new Map(stored.map((r) => [r.partitionKey, Buffer.from(r.data)]))
      for (const entry of entries) expect(byKey.get(entry.partitionKey)?.equals(entry.body), entry.partitionKey).toBe(true)
    }))

  it.live("describeLimits reports 1 MiB when the stream reports no maximum record size", () =>
    Effect.gen(function*() {
      const client = yield* KinesisSdk.make(config("orders"))
      expect(yield* client.describeLimits).toEqual({ maxRecordBytes: 1024 * 1024 })
    }))

  it.live("a missing stream is a fatal ResourceNotFoundException", () =>
    Effect.gen(function*() {
      const client = yield* KinesisSdk.make(config("no-such-stream"))
      const put = yield* Effect.flip(client.putRecords([{ body: encode("{}"), partitionKey: "k" }]))
      expect(put.code).toBe("ResourceNotFoundException")
      expect(put.retriable).toBe(false)
      expect(put.message).not.toContain("\n")
      const describe = yield* Effect.flip(client.describeLimits)
      expect(describe.code).toBe("ResourceNotFoundException")
      expect(describe.retriable).toBe(false)
    }))

  it.live("an unreachable endpoint is a retriable network error", () =>
    Effect.gen(function*() {
      const client = yield* KinesisSdk.make({ ...config("orders"), endpoint: "http://127.0.0.1:9" })
      const error = yield* Effect.flip(client.putRecords([{ body: encode("{}"), partitionKey: "k" }]))
      expect(error.retriable).toBe(true)
      expect(error.code).toBe("ECONNREFUSED")
    }))
})

describe("Publisher over KinesisSdk (kinesalite)", () => {
  it.live("publishes 600 changes on 7 keys; each key's records are stored in order, once each", () =>
    Effect.gen(function*() {
      yield* Effect.promise(() => kinesis.createStream("ordered", 3))
      const client = yield* KinesisSdk.make(config("ordered"))
      const pipeline = pipelineConfig({ batchMaxRecords: 50, batchMaxWaitMs: 2 })
      const queue = ChangeQueue.make<ChangeEvent>({ maxMessages: 100, maxBytes: 1 << 20, sizeOf: Publisher.eventBytes })
      const frontier = Frontier.make(0n)
      const publisher = Publisher.make(queue, frontier, client, {
        kinesis: config("ordered"),
        pipeline,
        maxRecordBytes: yield* Publisher.resolveMaxRecordBytes(config("ordered"), client)
      })
      const events = Array.from({ length: 600 }, (_, seq) => change(seq % 7, { seq }))
      const run = yield* publisher.run.pipe(Effect.forkChild)
      for (let i = 0; i < events.length; i += 25) {
        const chunk = events.slice(i, i + 25)
        frontier.register(chunk)
        yield* queue.offerAll(chunk)
      }
      queue.end()
      yield* Fiber.join(run)
      const stored = yield* Effect.promise(() => kinesis.readAll("ordered"))
      expect(stored).toHaveLength(600)
      for (let key = 0; key < 7; key++) {
        const seqs = stored.filter((r) => r.partitionKey === `public.orders:[${key}]`).map((r) => decode(r.data).seq)
        expect(seqs).toEqual(events.filter((_, seq) => seq % 7 === key).map((e) => decode(e.body).seq))
      }
      expect(frontier.outstanding()).toBe(0)
    }))
})

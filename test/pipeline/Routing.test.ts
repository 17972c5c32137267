/**
 * KINESIS_STREAM_ROUTES: routes parsed (every bad one named), tables routed first match wins (the
 * rest and logical messages to KINESIS_STREAM), every stream checked at start (a missing one named),
 * and the publisher batching, ordering and limiting per stream.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as Result from "effect/Result"
import * as Streams from "../../src/config/Streams.ts"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as KinesisMemory from "../../src/kinesis/KinesisMemory.ts"
import * as StreamRoutes from "../../src/kinesis/StreamRoutes.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import * as ChangeQueue from "../../src/pipeline/ChangeQueue.ts"
import * as Frontier from "../../src/pipeline/Frontier.ts"
import * as Publisher from "../../src/pipeline/Publisher.ts"
import { boundary, change, decode, kinesisConfig, pipelineConfig } from "./fixtures.ts"

const routes = (raw: string) => {
  const parsed = Streams.parseRoutes(raw)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure)
  return parsed.success
}

describe("KINESIS_STREAM_ROUTES", () => {
  it("parses routes and names every bad one", () => {
    expect(routes("public.orders=orders-cdc, public.*=app-cdc").map((r) => [r.pattern, r.stream.name]))
      .toEqual([["public.orders", "orders-cdc"], ["public.*", "app-cdc"]])
    expect(routes("s.t=arn:aws:kinesis:us-east-1:123456789012:stream/named")[0]!.stream)
      .toEqual({ name: "named", arn: "arn:aws:kinesis:us-east-1:123456789012:stream/named" })
    const bad = Streams.parseRoutes("orders=x, a.b=bad stream!, a.b.c=y, ok.t=fine")
    assert.isTrue(Result.isFailure(bad))
    const message = Result.isFailure(bad) ? bad.failure : ""
    expect(message).toContain(`"orders=x" is not schema.table=stream`)
    expect(message).toContain(`"a.b=bad stream!": the stream must be a stream name`)
    expect(message).toContain(`"a.b.c=y" is not schema.table=stream`)
    expect(message).not.toContain("ok.t")
  })

  it("routes by the first matching route; other tables and logical messages go to KINESIS_STREAM", () => {
    const memory = KinesisMemory.make()
    const list = routes("public.orders=orders-cdc,public.*=app-cdc,audit.*=orders-cdc")
    const destinations = Effect.runSync(StreamRoutes.resolve(kinesisConfig({ routes: list }), memory.client))
    expect(destinations.all.map((d) => d.stream.name)).toEqual(["test", "orders-cdc", "app-cdc"])
    const streamOf = (event: ChangeEvent) => destinations.all[destinations.indexOf(event)]!.stream.name
    expect(streamOf(change(1, { table: "orders" }))).toBe("orders-cdc")
    expect(streamOf(change(1, { table: "users" }))).toBe("app-cdc")
    expect(streamOf({ ...change(1), schema: "audit", table: "log" })).toBe("orders-cdc")
    expect(streamOf({ ...change(1), schema: "other", table: "orders" })).toBe("test")
    expect(streamOf({ ...change(undefined), action: "M", schema: "", table: "" })).toBe("test")
  })

  it("checks every stream at start: a missing one is fatal, named", () =>
    Effect.gen(function*() {
      const memory = KinesisMemory.make({ missingStreams: ["app-cdc"] })
      const error = yield* Effect.flip(StreamRoutes.resolve(kinesisConfig({ routes: routes("public.*=app-cdc") }), memory.client))
      expect(error._tag).toBe("KinesisError")
      expect(error.retriable).toBe(false)
      expect(error.message).toContain(`stream "app-cdc"`)
    }).pipe(Effect.runPromise))

  it("publishes per stream: its own batches, limit and per-key order", () =>
    Effect.gen(function*() {
      const memory = KinesisMemory.make()
      const kinesis = kinesisConfig({ routes: routes("public.big=big-cdc"), oversizedRecordPolicy: "drop" })
      const pipeline = pipelineConfig({ batchMaxRecords: 7 })
      const queue = ChangeQueue.make<ChangeEvent>({
        maxMessages: pipeline.queueMaxMessages,
        maxBytes: pipeline.queueMaxBytes,
        sizeOf: Publisher.eventBytes
      })
      const frontier = Frontier.make(0n)
      // the default stream takes records up to 1 KiB, big-cdc up to 1 MiB
      const destinations: StreamRoutes.Destinations = {
        all: [
          { stream: { name: "test", arn: undefined }, client: memory.client, maxRecordBytes: 1024 },
          { stream: { name: "big-cdc", arn: undefined }, client: memory.client.forStream({ name: "big-cdc", arn: undefined }), maxRecordBytes: 1024 * 1024 }
        ],
        indexOf: StreamRoutes.router(kinesis.routes!, [
          { stream: { name: "test", arn: undefined }, client: memory.client, maxRecordBytes: 1024 },
          { stream: { name: "big-cdc", arn: undefined }, client: memory.client, maxRecordBytes: 1024 * 1024 }
        ]),
        maxRecordBytes: 1024 * 1024
      }
      const publisher = Publisher.make(queue, frontier, memory.client, { kinesis, pipeline, maxRecordBytes: 1024 * 1024, destinations })
      const events: Array<ChangeEvent> = [boundary("B")]
      for (let seq = 0; seq < 30; seq++) {
        events.push(change(seq % 4, { table: "small", seq }))
        events.push(change(seq % 3, { table: "big", seq, bodyBytes: 4000 }))
      }
      events.push(boundary("C"))
      frontier.register(events)
      const published = (stream?: string) =>
        Effect.map(
          Metric.value(stream === undefined ? Metrics.changesPublished : Metric.withAttributes(Metrics.changesPublished, { stream })),
          (state) => state.count
        )
      const before = [yield* published("test"), yield* published("big-cdc"), yield* published()]
      yield* queue.offerAll(events.filter((e) => e.action !== "B" && e.action !== "C"))
      queue.end()
      yield* publisher.run
      // cdc_changes_published_total per stream label (with several streams, no unlabelled series moves)
      const after = [yield* published("test"), yield* published("big-cdc"), yield* published()]
      expect(after.map((n, i) => n - before[i]!)).toEqual([30, 30, 0])
      const small = memory.accepted()
      const big = memory.acceptedOn("big-cdc")
      // every small record on the default stream, none of the big ones (4000 bytes: over its 1 KiB, but routed away)
      expect(small.map((r) => decode(r.data).seq)).toHaveLength(30)
      expect(big).toHaveLength(30)
      expect(small.every((r) => r.partitionKey.startsWith("public.small:"))).toBe(true)
      expect(big.every((r) => r.partitionKey.startsWith("public.big:"))).toBe(true)
      // per-key order on each stream
      for (const records of [small, big]) {
        const lastSeq = new Map<string, number>()
        for (const record of records) {
          const { seq } = decode(record.data)
          expect(seq).toBeGreaterThan(lastSeq.get(record.partitionKey) ?? -1)
          lastSeq.set(record.partitionKey, seq)
        }
      }
      // batches per stream, none over BATCH_MAX_RECORDS
      expect(memory.requests().every((request) => request.records.length <= 7)).toBe(true)
      expect(memory.requests().flatMap((request) => request.records).every((r) => r.partitionKey.startsWith("public.small:"))).toBe(true)
      expect(frontier.outstanding()).toBe(0)
    }).pipe(Effect.runPromise))

  it("applies each stream's own record limit", () =>
    Effect.gen(function*() {
      const memory = KinesisMemory.make()
      const kinesis = kinesisConfig({ routes: routes("public.big=big-cdc"), oversizedRecordPolicy: "drop" })
      const pipeline = pipelineConfig()
      const queue = ChangeQueue.make<ChangeEvent>({ maxMessages: 1000, maxBytes: 1 << 24, sizeOf: Publisher.eventBytes })
      const frontier = Frontier.make(0n)
      const all: Array<StreamRoutes.Destination> = [
        { stream: { name: "test", arn: undefined }, client: memory.client, maxRecordBytes: 1024 * 1024 },
        { stream: { name: "big-cdc", arn: undefined }, client: memory.client.forStream({ name: "big-cdc", arn: undefined }), maxRecordBytes: 2048 }
      ]
      const destinations: StreamRoutes.Destinations = { all, indexOf: StreamRoutes.router(kinesis.routes!, all), maxRecordBytes: 1024 * 1024 }
      const publisher = Publisher.make(queue, frontier, memory.client, { kinesis, pipeline, maxRecordBytes: 1024 * 1024, destinations })
      const events = [
        boundary("B"),
        change(1, { table: "big", bodyBytes: 4000 }),
        change(2, { table: "big", bodyBytes: 1000 }),
        change(3, { table: "small", bodyBytes: 4000 }),
        boundary("C")
      ]
      frontier.register(events)
      yield* queue.offerAll(events.slice(1, 4))
      queue.end()
      yield* publisher.run
      expect(memory.acceptedOn("big-cdc").map((r) => decode(r.data).pk)).toEqual([2])
      expect(memory.accepted().map((r) => decode(r.data).pk)).toEqual([3])
      expect(frontier.outstanding()).toBe(0)
    }).pipe(Effect.runPromise))
})

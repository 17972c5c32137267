/**
 * KINESIS_STREAM_ROUTES at run time: which stream each table's records go to. The first route
 * (see config/Streams.ts) that matches a table wins; KINESIS_STREAM takes the rest, the logical
 * messages and the transaction records. At start every
 * stream is checked (a missing one is fatal, named) and its record limit read; the publisher then
 * batches, orders and limits records per stream.
 */
import * as Effect from "effect/Effect"
import type { KinesisConfig } from "../config/ServiceConfig.ts"
import type { Route, StreamRef } from "../config/Streams.ts"
import { type ChangeEvent, isTransactionRecord } from "../domain/ChangeEvent.ts"
import { KinesisError } from "../Errors.ts"
import type { KinesisClient } from "./KinesisClient.ts"

/** One stream records go to: its client and its per-record limit. */
export interface Destination {
  readonly stream: StreamRef
  readonly client: KinesisClient["Service"]
  /** Data plus partition key, in bytes. */
  readonly maxRecordBytes: number
}

export interface Destinations {
  /** The default stream (KINESIS_STREAM) first, then each other routed stream once. */
  readonly all: ReadonlyArray<Destination>
  /** The index in `all` of the stream an event goes to. */
  readonly indexOf: (event: ChangeEvent) => number
  /** The largest per-record limit: what the reader may hold of one change. */
  readonly maxRecordBytes: number
}

const MiB = 1024 * 1024

/** The per-record limit of one stream: KINESIS_MAX_RECORD_BYTES when set, else the stream's (1 MiB when it reports none). */
const limitOf = (kinesis: KinesisConfig, client: KinesisClient["Service"], stream: StreamRef): Effect.Effect<number, KinesisError> =>
  client.describeLimits.pipe(
    Effect.map((limits) => kinesis.maxRecordBytes ?? (limits.maxRecordBytes > 0 ? limits.maxRecordBytes : MiB)),
    Effect.mapError((error) =>
      new KinesisError({ reason: error.reason, code: error.code, message: `stream ${JSON.stringify(stream.name)}: ${error.message}` }))
  )

/** A router over fixed destinations (the first is the default). */
export const router = (
  routes: ReadonlyArray<Route>,
  all: ReadonlyArray<Destination>
): (event: ChangeEvent) => number => {
  if (routes.length === 0) return () => 0
  const indexOfStream = new Map(all.map((destination, index) => [destination.stream.name, index]))
  const cache = new Map<string, number>()
  return (event) => {
    if (event.action === "M" || isTransactionRecord(event)) return 0
    const name = `${event.schema}.${event.table}`
    let index = cache.get(name)
    if (index === undefined) {
      const route = routes.find((r) => r.schema.test(event.schema) && r.table.test(event.table))
      index = route === undefined ? 0 : indexOfStream.get(route.stream.name)!
      if (cache.size > 10_000) cache.clear()
      cache.set(name, index)
    }
    return index
  }
}

/**
 * Checks every stream (DescribeStreamSummary: a missing stream or no permission fails here, at
 * start, naming the stream) and reads its limit.
 */
export const resolve = (kinesis: KinesisConfig, client: KinesisClient["Service"]): Effect.Effect<Destinations, KinesisError> =>
  Effect.gen(function*() {
    const routes = kinesis.routes ?? []
    const streams: Array<StreamRef> = [{ name: kinesis.streamName, arn: kinesis.streamArn }]
    for (const route of routes) if (!streams.some((s) => s.name === route.stream.name)) streams.push(route.stream)
    const all = yield* Effect.forEach(streams, (stream, index) => {
      const streamClient = index === 0 ? client : client.forStream(stream)
      return Effect.map(limitOf(kinesis, streamClient, stream), (maxRecordBytes): Destination => ({
        stream, client: streamClient, maxRecordBytes
      }))
    })
    return { all, indexOf: router(routes, all), maxRecordBytes: Math.max(...all.map((d) => d.maxRecordBytes)) }
  })

/** One stream for everything, its limit already known. */
export const single = (stream: StreamRef, client: KinesisClient["Service"], maxRecordBytes: number): Destinations => ({
  all: [{ stream, client, maxRecordBytes }],
  indexOf: () => 0,
  maxRecordBytes
})

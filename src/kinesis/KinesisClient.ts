/**
 * The Kinesis operations the service uses, as a service: PutRecords and the stream's limits, on
 * the configured stream or, for routed tables, another one. The
 * SDK-backed layer and the in-memory layer both implement it.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { StreamRef } from "../config/Streams.ts"
import type { KinesisError } from "../Errors.ts"

/** A record to put: the change event itself satisfies it (its body is the record's data). */
export interface PutRecordsEntry {
  /** The record's data. */
  readonly body: Uint8Array
  readonly partitionKey: string
}

/** Per record, in request order: accepted, or failed with a code. */
export type PutRecordResult =
  | { readonly _tag: "Ok" }
  | { readonly _tag: "Failed"; readonly errorCode: string; readonly errorMessage: string }

export interface StreamLimits {
  /** The stream's maximum record size in bytes (data plus partition key). */
  readonly maxRecordBytes: number
}

/** The operations on one stream (the service's shape, `KinesisClient["Service"]`). */
export interface StreamOperations {
  /** One PutRecords request. A request-level failure is a classified {@link KinesisError}. */
  readonly putRecords: (records: ReadonlyArray<PutRecordsEntry>) => Effect.Effect<ReadonlyArray<PutRecordResult>, KinesisError>
  /** DescribeStreamSummary: fails with ResourceNotFoundException when the stream is missing. */
  readonly describeLimits: Effect.Effect<StreamLimits, KinesisError>
  /** The same operations on another stream (KINESIS_STREAM_ROUTES), over the same connections. */
  readonly forStream: (stream: StreamRef) => StreamOperations
}

export class KinesisClient extends Context.Service<KinesisClient, StreamOperations>()(
  "cdc-logical-replication/KinesisClient"
) {}

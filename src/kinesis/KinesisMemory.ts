/**
 * An in-memory Kinesis stream for tests: implements {@link KinesisClient} with the real service's
 * request validation (≤500 records, record and request size, 1..256-character partition keys) and
 * a scriptable behaviour per request (accept, fail the request, fail some records, wait), and keeps
 * what it accepted in order, plus every request it saw and the peak concurrency. It keeps copies of
 * the records' bytes, as the real service does: what the caller writes into its buffers after a
 * request cannot change what was received.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { KinesisError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import { KinesisClient, type PutRecordResult, type PutRecordsEntry } from "./KinesisClient.ts"

/** What the fake does with one request. */
export type RequestOutcome =
  | { readonly _tag: "Accept" }
  | { readonly _tag: "Fail"; readonly error: KinesisError }
  /** One entry per record: an error code to fail it with, or undefined to accept it. */
  | { readonly _tag: "Partial"; readonly failures: ReadonlyArray<string | undefined> }

export const accept: RequestOutcome = { _tag: "Accept" }
/** Fails the request as the real service fails it with this error code (classified by ErrorPolicy). */
export const fail = (code: string): RequestOutcome => ({
  _tag: "Fail",
  error: ErrorPolicy.fromAws({ name: code, message: "scripted failure" })
})
export const partial = (failures: ReadonlyArray<string | undefined>): RequestOutcome => ({ _tag: "Partial", failures })

export interface MemoryRequest {
  /** 0-based, in arrival order. */
  readonly index: number
  readonly records: ReadonlyArray<PutRecordsEntry>
}

/** Decides a request's outcome; may wait (Deferred, sleep) to model latency or a stall. */
export type Behaviour = (request: MemoryRequest) => Effect.Effect<RequestOutcome>

export interface AcceptedRecord {
  readonly partitionKey: string
  readonly data: Uint8Array
  readonly sequenceNumber: string
  readonly requestIndex: number
}

export interface KinesisMemoryOptions {
  readonly maxRecordBytes?: number
  readonly maxRequestBytes?: number
  /** describeLimits reports no maximum record size (as streams created before the setting). */
  readonly reportsNoLimit?: boolean
  /** The stream does not exist: every call fails with ResourceNotFoundException. */
  readonly missing?: boolean
  /** Other streams (`forStream`) that do not exist. */
  readonly missingStreams?: ReadonlyArray<string>
  readonly behaviour?: Behaviour
}

/** The fake's controls, for tests that run it as a layer. */
export class KinesisMemory extends Context.Service<KinesisMemory, {
  readonly client: KinesisClient["Service"]
  /** Records accepted, in the order the stream stored them. */
  readonly accepted: () => ReadonlyArray<AcceptedRecord>
  /** Records another stream (`client.forStream`) accepted, in order. */
  readonly acceptedOn: (stream: string) => ReadonlyArray<AcceptedRecord>
  /** Every request received (including failed ones), in arrival order. */
  readonly requests: () => ReadonlyArray<MemoryRequest>
  readonly inflight: () => number
  readonly maxInflightSeen: () => number
  readonly setBehaviour: (behaviour: Behaviour) => void
}>()("cdc-logical-replication/KinesisMemory") {}

const MiB = 1024 * 1024

/** A record with its own copy of its bytes (a Buffer stays a Buffer). */
const copyEntry = (record: PutRecordsEntry): PutRecordsEntry => ({
  partitionKey: record.partitionKey,
  body: Buffer.isBuffer(record.body) ? Buffer.from(record.body) : new Uint8Array(record.body)
})

const validation = (message: string) =>
  ErrorPolicy.fromAws({ name: "ValidationException", message })

export const make = (options: KinesisMemoryOptions = {}): KinesisMemory["Service"] => {
  const maxRecordBytes = options.maxRecordBytes ?? MiB
  const maxRequestBytes = options.maxRequestBytes ?? 10 * MiB
  let behaviour: Behaviour = options.behaviour ?? (() => Effect.succeed(accept))
  /** Per stream: its records and requests; "" is the configured stream. */
  const streams = new Map<string, { readonly accepted: Array<AcceptedRecord>; readonly requests: Array<MemoryRequest> }>()
  const stateOf = (stream: string) => {
    let state = streams.get(stream)
    if (state === undefined) streams.set(stream, state = { accepted: [], requests: [] })
    return state
  }
  const { accepted, requests } = stateOf("")
  let inflight = 0
  let maxInflightSeen = 0
  let sequence = 0

  const missing = () =>
    ErrorPolicy.fromAws({ name: "ResourceNotFoundException", message: "the stream does not exist" })

  const validate = (records: ReadonlyArray<PutRecordsEntry>): KinesisError | undefined => {
    if (records.length === 0 || records.length > 500) return validation(`${records.length} records in one request`)
    let total = 0
    for (const record of records) {
      const keyBytes = Buffer.byteLength(record.partitionKey, "utf8")
      if (record.partitionKey.length === 0 || [...record.partitionKey].length > 256) {
        return validation(`partition key of ${record.partitionKey.length} characters`)
      }
      const bytes = record.body.byteLength + keyBytes
      if (bytes > maxRecordBytes) return validation(`record of ${bytes} bytes over ${maxRecordBytes}`)
      total += bytes
    }
    if (total > maxRequestBytes) return validation(`request of ${total} bytes`)
    return undefined
  }

  const store = (
    accepted: Array<AcceptedRecord>,
    request: MemoryRequest,
    failures: ReadonlyArray<string | undefined>
  ): ReadonlyArray<PutRecordResult> =>
    request.records.map((record, i) => {
      const code = failures[i]
      if (code !== undefined) return { _tag: "Failed", errorCode: code, errorMessage: "scripted record failure" }
      const sequenceNumber = String(++sequence).padStart(20, "0")
      accepted.push({ partitionKey: record.partitionKey, data: record.body, sequenceNumber, requestIndex: request.index })
      return { _tag: "Ok" }
    })

  const putRecordsOn = (stream: string) => (records: ReadonlyArray<PutRecordsEntry>): Effect.Effect<ReadonlyArray<PutRecordResult>, KinesisError> =>
    Effect.suspend(() => {
      const { accepted, requests } = stateOf(stream)
      // the records' bytes copied, as a remote service receives them
      const request: MemoryRequest = { index: requests.length, records: records.map(copyEntry) }
      requests.push(request)
      if (isMissing(stream)) return Effect.fail(missing())
      const invalid = validate(records)
      if (invalid !== undefined) return Effect.fail(invalid)
      inflight++
      if (inflight > maxInflightSeen) maxInflightSeen = inflight
      return behaviour(request).pipe(
        Effect.flatMap((outcome): Effect.Effect<ReadonlyArray<PutRecordResult>, KinesisError> => {
          switch (outcome._tag) {
            case "Accept":
              return Effect.succeed(store(accepted, request, []))
            case "Fail":
              return Effect.fail(outcome.error)
            case "Partial":
              return Effect.succeed(store(accepted, request, outcome.failures))
          }
        }),
        Effect.ensuring(Effect.sync(() => {
          inflight--
        }))
      )
    })

  const isMissing = (stream: string): boolean =>
    stream === "" ? options.missing === true : options.missingStreams?.includes(stream) === true

  const clientOn = (stream: string): KinesisClient["Service"] => ({
    putRecords: putRecordsOn(stream),
    describeLimits: Effect.suspend(() =>
      isMissing(stream)
        ? Effect.fail(missing())
        : Effect.succeed({ maxRecordBytes: options.reportsNoLimit === true ? MiB : maxRecordBytes })
    ),
    forStream: (ref) => clientOn(ref.name)
  })
  const client = clientOn("")

  return KinesisMemory.of({
    client,
    accepted: () => accepted,
    acceptedOn: (stream) => stateOf(stream).accepted,
    requests: () => requests,
    inflight: () => inflight,
    maxInflightSeen: () => maxInflightSeen,
    setBehaviour: (next) => {
      behaviour = next
    }
  })
}

/** Provides both the fake's controls and the {@link KinesisClient} it implements. */
export const layer = (options: KinesisMemoryOptions = {}): Layer.Layer<KinesisMemory | KinesisClient> =>
  Layer.suspend(() => {
    const memory = make(options)
    return Layer.mergeAll(Layer.succeed(KinesisMemory, memory), Layer.succeed(KinesisClient, memory.client))
  })

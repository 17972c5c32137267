/** Builders for change events and configurations used by the pipeline tests, and a way to run the pipeline. */
import { Effect } from "effect"
import type { KinesisConfig, PipelineConfig } from "../../src/config/ServiceConfig.ts"
import type { Action, ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import { KinesisClient } from "../../src/kinesis/KinesisClient.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import type { ReplicationSession } from "../../src/replication/ReplicationSession.ts"

const encoder = new TextEncoder()

let nextLsn = 0x1000n

/** A row change on `public.<table>` with primary key `[pk]` and a body that names it uniquely. */
export const change = (
  pk: number | string | undefined,
  options: { readonly table?: string; readonly seq?: number; readonly bodyBytes?: number; readonly action?: Action } = {}
): ChangeEvent => {
  const lsn = (nextLsn += 0x10n)
  const tag = JSON.stringify({ pk: pk ?? null, seq: options.seq ?? Number(lsn) })
  const body = options.bodyBytes === undefined ? tag : tag.padEnd(options.bodyBytes, " ")
  return {
    lsn,
    ackLsn: lsn,
    xid: 1,
    commitLsn: lsn,
    commitIdx: 0,
    action: options.action ?? "I",
    schema: "public",
    table: options.table ?? "orders",
    pk: pk === undefined ? undefined : JSON.stringify([pk]),
    commitTimeMs: undefined,
    body: encoder.encode(body)
  }
}

export const boundary = (action: "B" | "C", ackLsn?: bigint): ChangeEvent => {
  const lsn = (nextLsn += 0x10n)
  return {
    lsn,
    ackLsn: ackLsn ?? lsn,
    xid: 1,
    commitLsn: lsn,
    commitIdx: -1,
    action,
    schema: "",
    table: "",
    pk: undefined,
    commitTimeMs: undefined,
    body: new Uint8Array(0)
  }
}

export const decode = (bytes: Uint8Array): { readonly pk: unknown; readonly seq: number } =>
  JSON.parse(new TextDecoder().decode(bytes).trim())

export const kinesisConfig = (overrides: Partial<KinesisConfig> = {}): KinesisConfig => ({
  region: "us-east-1",
  streamName: "test",
  streamArn: undefined,
  endpoint: undefined,
  maxInflight: 4,
  maxRecordBytes: undefined,
  retryBaseMs: 100,
  retryMaxMs: 10_000,
  requestTimeoutMs: 30_000,
  oversizedRecordPolicy: "drop",
  partitionKeyMode: "primary_key",
  partitionKeyFallback: "lsn",
  partitionKeyStatic: "cdc",
  ordering: "per_key",
  ...overrides
})

export const pipelineConfig = (overrides: Partial<PipelineConfig> = {}): PipelineConfig => ({
  queueMaxMessages: 100_000,
  queueMaxBytes: 64 * 1024 * 1024,
  batchMaxRecords: 500,
  batchMaxBytes: 5 * 1024 * 1024,
  batchMaxWaitMs: 20,
  shutdownTimeoutMs: 30_000,
  ...overrides
})

/** Runs one session through the {@link Pipeline.Pipeline} service, over `client`. */
export const runPipeline = (
  session: ReplicationSession,
  client: KinesisClient["Service"],
  options: { readonly kinesis: KinesisConfig; readonly pipeline: PipelineConfig; readonly stop?: Effect.Effect<void> }
) =>
  Effect.flatMap(Effect.service(Pipeline.Pipeline), (pipeline) => pipeline.run(session, { stop: options.stop })).pipe(
    Effect.provide(Pipeline.layer({ kinesis: options.kinesis, pipeline: options.pipeline })),
    Effect.provideService(KinesisClient, client)
  )

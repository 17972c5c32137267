/** A whole service configuration for in-process tests, and the in-memory layers the service runs on. */
import { Layer, Logger } from "effect"
import * as ServiceConfig from "../../src/config/ServiceConfig.ts"
import * as KinesisMemory from "../../src/kinesis/KinesisMemory.ts"
import type { Leadership } from "../../src/leader/Leadership.ts"
import * as LeadershipMemory from "../../src/leader/LeadershipMemory.ts"
import * as Health from "../../src/observability/Health.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as ReplicationMemory from "../../src/replication/ReplicationMemory.ts"
import { kinesisConfig, pipelineConfig } from "../pipeline/fixtures.ts"
import { replicationConfig } from "../replication/fixtures.ts"

export interface ConfigOverrides {
  readonly reconnectBaseMs?: number
  readonly reconnectMaxMs?: number
  readonly shutdownTimeoutMs?: number
}

export const serviceConfig = (overrides: ConfigOverrides = {}): ServiceConfig.ServiceConfig["Service"] => ({
  pg: {
    host: "127.0.0.1",
    port: 5432,
    user: "test",
    password: undefined,
    database: "test",
    sslMode: "disable",
    sslRootCert: undefined,
    connectTimeoutMs: 1_000,
    applicationName: "test"
  },
  replication: replicationConfig({
    slot: "memory_slot",
    statusIntervalMs: 1_000,
    reconnectBaseMs: overrides.reconnectBaseMs ?? 1_000,
    reconnectMaxMs: overrides.reconnectMaxMs ?? 16_000
  }),
  kinesis: kinesisConfig(),
  format: { recordFormat: "wal2json", excludeColumns: [] },
  pipeline: pipelineConfig({ shutdownTimeoutMs: overrides.shutdownTimeoutMs ?? 10_000 }),
  leader: { enabled: true, lockKey: undefined, pollIntervalMs: 1_000, watchdogIntervalMs: 1_000 },
  backfill: { initial: false, chunkRows: 500 },
  observability: { httpPort: 0, logLevel: "Info", logFormat: "json" }
})

/**
 * Every layer `Service.run` needs, in memory: the slot (ReplicationMemory), the stream
 * (KinesisMemory), the election (LeadershipMemory, unless another leadership is given), the real
 * pipeline and health; logs discarded.
 */
export const memoryLayers = (options: {
  readonly config: ServiceConfig.ServiceConfig["Service"]
  readonly leadership?: Layer.Layer<Leadership, never, Health.Health>
  readonly kinesis?: KinesisMemory.KinesisMemoryOptions
}) =>
  Pipeline.layerConfig.pipe(
    Layer.provideMerge(Layer.mergeAll(
      ReplicationMemory.layer(),
      KinesisMemory.layer(options.kinesis),
      options.leadership ?? LeadershipMemory.layer,
      ServiceConfig.layer(options.config)
    )),
    Layer.provideMerge(Health.layer()),
    Layer.provideMerge(Logger.layer([]))
  )

/**
 * The service's configuration, read from the environment. Each section is a plain record; `load`
 * reads every variable at once so that one message names every bad one.
 *
 * The variable names are a contract with existing deployments: keep them exactly.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as LogLevel from "effect/LogLevel"
import * as ColumnFilter from "../format/ColumnFilter.ts"
import * as Env from "./EnvVar.ts"
import * as Streams from "./Streams.ts"

export { parseStream, type StreamRef } from "./Streams.ts"

export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
export type ReplicationPlugin = "wal2json" | "pgoutput"
export type OversizedRecordPolicy = "drop" | "fail"
export type PartitionKeyMode = "primary_key" | "table" | "lsn" | "static"
export type PartitionKeyFallback = "lsn" | "table" | "static"
export type KinesisOrdering = "per_key" | "relaxed"
export type LogFormat = "json" | "plain"
export type RecordFormat = "wal2json" | "debezium"

/** How to reach PostgreSQL. */
export interface PgConfig {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: Redacted.Redacted<string> | undefined
  readonly database: string
  readonly sslMode: SslMode
  readonly sslRootCert: string | undefined
  readonly connectTimeoutMs: number
  readonly applicationName: string
}

/** The slot and its decoder. */
export interface ReplicationConfig {
  readonly slot: string
  readonly createSlot: boolean
  readonly plugin: ReplicationPlugin
  readonly publication: string
  readonly wal2jsonAddTables: ReadonlyArray<string>
  readonly wal2jsonFilterTables: ReadonlyArray<string>
  /** PUBLISH_TRANSACTION_RECORDS: a BEGIN and a COMMIT record around each transaction's changes. */
  readonly transactionRecords: boolean
  readonly statusIntervalMs: number
  readonly reconnectBaseMs: number
  readonly reconnectMaxMs: number
}

/** Where changes go and how they are batched and retried. */
export interface KinesisConfig {
  readonly region: string
  readonly streamName: string
  readonly streamArn: string | undefined
  /** KINESIS_STREAM_ROUTES: tables whose records go to another stream than `streamName`. */
  readonly routes?: ReadonlyArray<Streams.Route> | undefined
  readonly endpoint: string | undefined
  readonly maxInflight: number
  readonly maxRecordBytes: number | undefined
  readonly retryBaseMs: number
  readonly retryMaxMs: number
  readonly requestTimeoutMs: number
  readonly oversizedRecordPolicy: OversizedRecordPolicy
  readonly partitionKeyMode: PartitionKeyMode
  readonly partitionKeyFallback: PartitionKeyFallback
  readonly partitionKeyStatic: string
  readonly ordering: KinesisOrdering
}

/** What each record looks like: RECORD_FORMAT and EXCLUDE_COLUMNS. */
export interface FormatConfig {
  readonly recordFormat: RecordFormat
  readonly excludeColumns: ReadonlyArray<ColumnFilter.ColumnPattern>
}

/** The bounded queue and the micro-batcher. */
export interface PipelineConfig {
  readonly queueMaxMessages: number
  readonly queueMaxBytes: number
  readonly batchMaxRecords: number
  readonly batchMaxBytes: number
  readonly batchMaxWaitMs: number
  readonly shutdownTimeoutMs: number
}

/** Leader election through a PostgreSQL advisory lock. */
export interface LeaderConfig {
  readonly enabled: boolean
  readonly lockKey: bigint | undefined
  readonly pollIntervalMs: number
  readonly watchdogIntervalMs: number
}

/** Backfills (the rows that existed before the slot). */
export interface BackfillConfig {
  /** Backfill every streamed table once, when the service creates its slot. */
  readonly initial: boolean
  /** Rows per chunk at most: a chunk is published as one burst, which live changes committed after it wait behind. */
  readonly chunkRows: number
}

/** Logs, metrics and probes. */
export interface ObservabilityConfig {
  readonly httpPort: number
  readonly logLevel: LogLevel.LogLevel
  readonly logFormat: LogFormat
}

const MiB = 1024 * 1024

/** QUEUE_MAX_BYTES when unset (the benchmark measures memory against it too). */
export const DEFAULT_QUEUE_MAX_BYTES = 64 * MiB

// ---------------------------------------------------------------------------------------------
// fields

const logLevel: (raw: string) => Result.Result<LogLevel.LogLevel, string> = (raw) => {
  const levels: Record<string, LogLevel.LogLevel> = {
    trace: "Trace", debug: "Debug", info: "Info", warn: "Warn", warning: "Warn",
    error: "Error", fatal: "Fatal", none: "None", off: "None", all: "All"
  }
  const level = levels[raw.toLowerCase()]
  return level === undefined
    ? Result.fail(`must be one of TRACE | DEBUG | INFO | WARN | ERROR | FATAL | NONE, got ${JSON.stringify(raw)}`)
    : Result.succeed(level)
}

const identifier = (what: string) => (raw: string): Result.Result<string, string> =>
  /^[a-z0-9_]{1,63}$/.test(raw)
    ? Result.succeed(raw)
    : Result.fail(`${what} must be 1-63 characters of lower-case letters, digits and underscores, got ${JSON.stringify(raw)}`)

const wal2jsonVersion = (raw: string): Result.Result<2, string> =>
  raw === "2" ? Result.succeed(2) : Result.fail(`only format-version 2 is supported, got ${JSON.stringify(raw)}`)

const signed64 = (raw: string): Result.Result<bigint, string> =>
  Result.flatMap(Env.bigint(raw), (n) =>
    n >= -(2n ** 63n) && n < 2n ** 63n ? Result.succeed(n) : Result.fail("must fit in a signed 64-bit integer"))

const ms = (fallback: number, min = 1, max = 24 * 3600 * 1000) => (name: string) =>
  Env.withDefault(name, Env.integer({ min, max }), fallback)

const pgFields = {
  PGHOST: Env.required("PGHOST", Env.string),
  PGPORT: Env.withDefault("PGPORT", Env.port, 5432),
  PGUSER: Env.required("PGUSER", Env.string),
  PGPASSWORD: Env.secret("PGPASSWORD"),
  PGDATABASE: Env.required("PGDATABASE", Env.string),
  PGSSLMODE: Env.withDefault(
    "PGSSLMODE",
    Env.oneOf<SslMode>(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
    "prefer"
  ),
  PGSSLROOTCERT: Env.optional("PGSSLROOTCERT", Env.string),
  PG_CONNECT_TIMEOUT_MS: ms(10_000)("PG_CONNECT_TIMEOUT_MS"),
  PGAPPNAME: Env.withDefault("PGAPPNAME", Env.string, "cdc-logical-replication")
}

const replicationFields = {
  REPLICATION_SLOT: Env.withDefault("REPLICATION_SLOT", identifier("a slot name"), "etl_slot_wal2json"),
  REPLICATION_SLOT_CREATE: Env.withDefault("REPLICATION_SLOT_CREATE", Env.boolean, true),
  REPLICATION_PLUGIN: Env.withDefault("REPLICATION_PLUGIN", Env.oneOf<ReplicationPlugin>(["wal2json", "pgoutput"]), "wal2json"),
  PUBLICATION_NAME: Env.withDefault("PUBLICATION_NAME", identifier("a publication name"), "cdc_publication"),
  WAL2JSON_FORMAT_VERSION: Env.withDefault("WAL2JSON_FORMAT_VERSION", wal2jsonVersion, 2),
  WAL2JSON_ADD_TABLES: Env.withDefault("WAL2JSON_ADD_TABLES", Env.list, []),
  WAL2JSON_FILTER_TABLES: Env.withDefault("WAL2JSON_FILTER_TABLES", Env.list, []),
  PUBLISH_TRANSACTION_RECORDS: Env.withDefault("PUBLISH_TRANSACTION_RECORDS", Env.boolean, false),
  STATUS_INTERVAL_MS: ms(1_000, 100)("STATUS_INTERVAL_MS"),
  PG_RECONNECT_BASE_MS: ms(500)("PG_RECONNECT_BASE_MS"),
  PG_RECONNECT_MAX_MS: ms(30_000)("PG_RECONNECT_MAX_MS")
}

const kinesisFields = {
  AWS_REGION: Env.required("AWS_REGION", Env.string),
  KINESIS_STREAM: Env.required("KINESIS_STREAM", Streams.parseStream),
  KINESIS_STREAM_ROUTES: Env.withDefault("KINESIS_STREAM_ROUTES", Streams.parseRoutes, []),
  AWS_ENDPOINT_URL_KINESIS: Env.optional("AWS_ENDPOINT_URL_KINESIS", (raw) => {
    try {
      return Result.succeed(new URL(raw).toString())
    } catch {
      return Result.fail(`must be a URL, got ${JSON.stringify(raw)}`)
    }
  }),
  KINESIS_MAX_INFLIGHT: Env.withDefault("KINESIS_MAX_INFLIGHT", Env.integer({ min: 1, max: 256 }), 8),
  KINESIS_MAX_RECORD_BYTES: Env.optional("KINESIS_MAX_RECORD_BYTES", Env.integer({ min: 1024, max: 10 * MiB })),
  KINESIS_RETRY_BASE_MS: ms(100)("KINESIS_RETRY_BASE_MS"),
  KINESIS_RETRY_MAX_MS: ms(10_000)("KINESIS_RETRY_MAX_MS"),
  KINESIS_REQUEST_TIMEOUT_MS: ms(30_000, 100)("KINESIS_REQUEST_TIMEOUT_MS"),
  OVERSIZED_RECORD_POLICY: Env.withDefault("OVERSIZED_RECORD_POLICY", Env.oneOf<OversizedRecordPolicy>(["drop", "fail"]), "drop"),
  PARTITION_KEY_MODE: Env.withDefault(
    "PARTITION_KEY_MODE",
    Env.oneOf<PartitionKeyMode>(["primary_key", "table", "lsn", "static"]),
    "primary_key"
  ),
  PARTITION_KEY_FALLBACK: Env.withDefault(
    "PARTITION_KEY_FALLBACK",
    Env.oneOf<PartitionKeyFallback>(["lsn", "table", "static"]),
    "lsn"
  ),
  PARTITION_KEY_STATIC: Env.withDefault("PARTITION_KEY_STATIC", (raw) =>
    raw.length <= 256 ? Result.succeed(raw) : Result.fail("must be at most 256 characters"), "cdc"),
  KINESIS_ORDERING: Env.withDefault("KINESIS_ORDERING", Env.oneOf<KinesisOrdering>(["per_key", "relaxed"]), "per_key")
}

const formatFields = {
  RECORD_FORMAT: Env.withDefault("RECORD_FORMAT", Env.oneOf<RecordFormat>(["wal2json", "debezium"]), "wal2json"),
  EXCLUDE_COLUMNS: Env.withDefault("EXCLUDE_COLUMNS", ColumnFilter.parseList, [])
}

const pipelineFields = {
  QUEUE_MAX_MESSAGES: Env.withDefault("QUEUE_MAX_MESSAGES", Env.integer({ min: 1 }), 100_000),
  QUEUE_MAX_BYTES: Env.withDefault("QUEUE_MAX_BYTES", Env.integer({ min: 1024 }), DEFAULT_QUEUE_MAX_BYTES),
  BATCH_MAX_RECORDS: Env.withDefault("BATCH_MAX_RECORDS", Env.integer({ min: 1, max: 500 }), 500),
  BATCH_MAX_BYTES: Env.withDefault("BATCH_MAX_BYTES", Env.integer({ min: 1024, max: 10 * MiB }), 5 * MiB),
  BATCH_MAX_WAIT_MS: ms(20, 0)("BATCH_MAX_WAIT_MS"),
  SHUTDOWN_TIMEOUT_MS: ms(30_000, 0)("SHUTDOWN_TIMEOUT_MS")
}

const leaderFields = {
  LEADER_ELECTION: Env.withDefault("LEADER_ELECTION", Env.boolean, true),
  LEADER_LOCK_KEY: Env.optional("LEADER_LOCK_KEY", signed64),
  LEADER_POLL_INTERVAL_MS: ms(2_000, 10)("LEADER_POLL_INTERVAL_MS"),
  LEADER_WATCHDOG_INTERVAL_MS: ms(2_000, 10)("LEADER_WATCHDOG_INTERVAL_MS")
}

const backfillFields = {
  INITIAL_BACKFILL: Env.withDefault("INITIAL_BACKFILL", Env.boolean, false),
  BACKFILL_CHUNK_ROWS: Env.withDefault("BACKFILL_CHUNK_ROWS", Env.integer({ min: 1, max: 100_000 }), 500)
}

const observabilityFields = {
  HTTP_PORT: Env.withDefault("HTTP_PORT", Env.integer({ min: 0, max: 65535 }), 8080),
  LOG_LEVEL: Env.withDefault("LOG_LEVEL", logLevel, "Info"),
  LOG_FORMAT: Env.withDefault("LOG_FORMAT", Env.oneOf<LogFormat>(["json", "plain"]), "json")
}

// ---------------------------------------------------------------------------------------------
// sections

type Values<F> = { readonly [K in keyof F]: F[K] extends Env.Field<infer A> ? A : never }

const toPg = (v: Values<typeof pgFields>): PgConfig => ({
  host: v.PGHOST, port: v.PGPORT, user: v.PGUSER, password: v.PGPASSWORD, database: v.PGDATABASE,
  sslMode: v.PGSSLMODE, sslRootCert: v.PGSSLROOTCERT, connectTimeoutMs: v.PG_CONNECT_TIMEOUT_MS,
  applicationName: v.PGAPPNAME
})

const toReplication = (v: Values<typeof replicationFields>): ReplicationConfig => ({
  slot: v.REPLICATION_SLOT, createSlot: v.REPLICATION_SLOT_CREATE, plugin: v.REPLICATION_PLUGIN,
  publication: v.PUBLICATION_NAME, wal2jsonAddTables: v.WAL2JSON_ADD_TABLES,
  wal2jsonFilterTables: v.WAL2JSON_FILTER_TABLES, transactionRecords: v.PUBLISH_TRANSACTION_RECORDS,
  statusIntervalMs: v.STATUS_INTERVAL_MS,
  reconnectBaseMs: v.PG_RECONNECT_BASE_MS, reconnectMaxMs: v.PG_RECONNECT_MAX_MS
})

const toKinesis = (v: Values<typeof kinesisFields>): KinesisConfig => ({
  region: v.AWS_REGION, streamName: v.KINESIS_STREAM.name, streamArn: v.KINESIS_STREAM.arn,
  routes: v.KINESIS_STREAM_ROUTES,
  endpoint: v.AWS_ENDPOINT_URL_KINESIS, maxInflight: v.KINESIS_MAX_INFLIGHT, maxRecordBytes: v.KINESIS_MAX_RECORD_BYTES,
  retryBaseMs: v.KINESIS_RETRY_BASE_MS, retryMaxMs: v.KINESIS_RETRY_MAX_MS, requestTimeoutMs: v.KINESIS_REQUEST_TIMEOUT_MS,
  oversizedRecordPolicy: v.OVERSIZED_RECORD_POLICY, partitionKeyMode: v.PARTITION_KEY_MODE,
  partitionKeyFallback: v.PARTITION_KEY_FALLBACK, partitionKeyStatic: v.PARTITION_KEY_STATIC, ordering: v.KINESIS_ORDERING
})

const toFormat = (v: Values<typeof formatFields>): FormatConfig => ({
  recordFormat: v.RECORD_FORMAT, excludeColumns: v.EXCLUDE_COLUMNS
})

const toPipeline = (v: Values<typeof pipelineFields>): PipelineConfig => ({
  queueMaxMessages: v.QUEUE_MAX_MESSAGES, queueMaxBytes: v.QUEUE_MAX_BYTES, batchMaxRecords: v.BATCH_MAX_RECORDS,
  batchMaxBytes: v.BATCH_MAX_BYTES, batchMaxWaitMs: v.BATCH_MAX_WAIT_MS, shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS
})

const toLeader = (v: Values<typeof leaderFields>): LeaderConfig => ({
  enabled: v.LEADER_ELECTION, lockKey: v.LEADER_LOCK_KEY, pollIntervalMs: v.LEADER_POLL_INTERVAL_MS,
  watchdogIntervalMs: v.LEADER_WATCHDOG_INTERVAL_MS
})

const toBackfill = (v: Values<typeof backfillFields>): BackfillConfig => ({
  initial: v.INITIAL_BACKFILL, chunkRows: v.BACKFILL_CHUNK_ROWS
})

const toObservability = (v: Values<typeof observabilityFields>): ObservabilityConfig => ({
  httpPort: v.HTTP_PORT, logLevel: v.LOG_LEVEL, logFormat: v.LOG_FORMAT
})

const crossChecks = (v: { readonly retryBase: number; readonly retryMax: number; readonly reconnectBase: number; readonly reconnectMax: number }): Array<Env.ConfigProblem> => [
  ...(v.retryBase > v.retryMax
    ? [{ variable: "KINESIS_RETRY_BASE_MS", reason: `must not exceed KINESIS_RETRY_MAX_MS (${v.retryMax})` }]
    : []),
  ...(v.reconnectBase > v.reconnectMax
    ? [{ variable: "PG_RECONNECT_BASE_MS", reason: `must not exceed PG_RECONNECT_MAX_MS (${v.reconnectMax})` }]
    : [])
]

/** The whole configuration of the streaming service, as a service: layers depend on it, tests supply it directly. */
export class ServiceConfig extends Context.Service<ServiceConfig, {
  readonly pg: PgConfig
  readonly replication: ReplicationConfig
  readonly kinesis: KinesisConfig
  readonly format: FormatConfig
  readonly pipeline: PipelineConfig
  readonly leader: LeaderConfig
  readonly backfill: BackfillConfig
  readonly observability: ObservabilityConfig
}>()("cdc-logical-replication/ServiceConfig") {}

/** Reads every variable of the service; one error names every bad one. */
export const load: Effect.Effect<ServiceConfig["Service"], Env.InvalidConfig> = Env.collect({
  ...pgFields, ...replicationFields, ...kinesisFields, ...formatFields, ...pipelineFields, ...leaderFields, ...backfillFields,
  ...observabilityFields
}).pipe(
  Env.check((v) =>
    crossChecks({
      retryBase: v.KINESIS_RETRY_BASE_MS, retryMax: v.KINESIS_RETRY_MAX_MS,
      reconnectBase: v.PG_RECONNECT_BASE_MS, reconnectMax: v.PG_RECONNECT_MAX_MS
    })
  ),
  Effect.map((v) => ({
    pg: toPg(v), replication: toReplication(v), kinesis: toKinesis(v), format: toFormat(v), pipeline: toPipeline(v),
    leader: toLeader(v), backfill: toBackfill(v), observability: toObservability(v)
  }))
)

/** Reads only what the operator commands need: PostgreSQL and the slot. */
export const loadPgOnly: Effect.Effect<{ readonly pg: PgConfig; readonly replication: ReplicationConfig; readonly observability: ObservabilityConfig }, Env.InvalidConfig> =
  Env.collect({ ...pgFields, ...replicationFields, ...observabilityFields }).pipe(
    Effect.map((v) => ({ pg: toPg(v), replication: toReplication(v), observability: toObservability(v) }))
  )

/** An explicit configuration. */
export const layer = (config: ServiceConfig["Service"]): Layer.Layer<ServiceConfig> => Layer.succeed(ServiceConfig, config)

/** From the environment (or whatever ConfigProvider is installed); one error names every bad variable. */
export const layerConfig: Layer.Layer<ServiceConfig, Env.InvalidConfig> = Layer.effect(ServiceConfig, load)

import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Redacted } from "effect"
import { InvalidConfig } from "../../src/config/EnvVar.ts"
import * as ServiceConfig from "../../src/config/ServiceConfig.ts"

const base = {
  PGHOST: "db.internal",
  PGUSER: "cdc",
  PGPASSWORD: "hunter2-very-secret",
  PGDATABASE: "app",
  AWS_REGION: "us-west-2",
  KINESIS_STREAM: "changes"
}

const load = (env: Record<string, string>) =>
  ServiceConfig.load.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

const problemsOf = (env: Record<string, string>) =>
  Effect.flip(load(env)).pipe(Effect.map((e) => {
    assert.instanceOf(e, InvalidConfig)
    return e
  }))

describe("ServiceConfig", () => {
  it.effect("applies the documented defaults", () =>
    Effect.gen(function*() {
      const c = yield* load(base)
      assert.strictEqual(c.pg.port, 5432)
      assert.strictEqual(c.pg.sslMode, "prefer")
      assert.strictEqual(c.replication.slot, "etl_slot_wal2json")
      assert.strictEqual(c.replication.plugin, "wal2json")
      assert.strictEqual(c.replication.createSlot, true)
      assert.strictEqual(c.replication.publication, "cdc_publication")
      assert.deepStrictEqual(c.replication.wal2jsonAddTables, [])
      assert.strictEqual(c.kinesis.streamName, "changes")
      assert.strictEqual(c.kinesis.streamArn, undefined)
      assert.strictEqual(c.kinesis.maxRecordBytes, undefined)
      assert.strictEqual(c.kinesis.oversizedRecordPolicy, "drop")
      assert.strictEqual(c.kinesis.partitionKeyMode, "primary_key")
      assert.strictEqual(c.kinesis.ordering, "per_key")
      assert.strictEqual(c.pipeline.batchMaxRecords, 500)
      assert.strictEqual(c.pipeline.batchMaxBytes, 5 * 1024 * 1024)
      assert.strictEqual(c.observability.logLevel, "Info")
      assert.strictEqual(c.observability.logFormat, "json")
      assert.strictEqual(c.observability.httpPort, 8080)
      assert.strictEqual(c.leader.enabled, true)
      assert.strictEqual(c.backfill.chunkRows, 500)
      assert.strictEqual(Redacted.value(c.pg.password!), "hunter2-very-secret")
    }))

  it.effect("reads every variable it documents", () =>
    Effect.gen(function*() {
      const c = yield* load({
        ...base,
        PGPORT: "6543", PGSSLMODE: "verify-full", PGSSLROOTCERT: "/etc/ssl/rds.pem",
        REPLICATION_SLOT: "my_slot", REPLICATION_SLOT_CREATE: "false", REPLICATION_PLUGIN: "pgoutput",
        PUBLICATION_NAME: "pub1", WAL2JSON_FORMAT_VERSION: "2",
        WAL2JSON_ADD_TABLES: "public.a, public.b", WAL2JSON_FILTER_TABLES: "audit.*",
        KINESIS_STREAM: "arn:aws:kinesis:us-west-2:123456789012:stream/orders",
        AWS_ENDPOINT_URL_KINESIS: "http://127.0.0.1:4567", KINESIS_MAX_INFLIGHT: "4",
        KINESIS_MAX_RECORD_BYTES: "2097152", OVERSIZED_RECORD_POLICY: "FAIL", PARTITION_KEY_MODE: "table",
        PARTITION_KEY_FALLBACK: "static", PARTITION_KEY_STATIC: "all", KINESIS_ORDERING: "relaxed",
        QUEUE_MAX_MESSAGES: "10", QUEUE_MAX_BYTES: "2048", BATCH_MAX_RECORDS: "100", BATCH_MAX_BYTES: "4096",
        BATCH_MAX_WAIT_MS: "0", LEADER_LOCK_KEY: "-42", LOG_LEVEL: "debug", LOG_FORMAT: "plain", HTTP_PORT: "0",
        BACKFILL_CHUNK_ROWS: "250"
      })
      assert.strictEqual(c.backfill.chunkRows, 250)
      assert.strictEqual(c.pg.port, 6543)
      assert.strictEqual(c.pg.sslMode, "verify-full")
      assert.strictEqual(c.pg.sslRootCert, "/etc/ssl/rds.pem")
      assert.strictEqual(c.replication.createSlot, false)
      assert.strictEqual(c.replication.plugin, "pgoutput")
      assert.deepStrictEqual(c.replication.wal2jsonAddTables, ["public.a", "public.b"])
      assert.deepStrictEqual(c.replication.wal2jsonFilterTables, ["audit.*"])
      assert.strictEqual(c.kinesis.streamName, "orders")
      assert.strictEqual(c.kinesis.streamArn, "arn:aws:kinesis:us-west-2:123456789012:stream/orders")
      assert.strictEqual(c.kinesis.endpoint, "http://127.0.0.1:4567/")
      assert.strictEqual(c.kinesis.oversizedRecordPolicy, "fail")
      assert.strictEqual(c.kinesis.ordering, "relaxed")
      assert.strictEqual(c.leader.lockKey, -42n)
      assert.strictEqual(c.observability.logLevel, "Debug")
      assert.strictEqual(c.observability.httpPort, 0)
    }))

  it.effect("names every missing required variable at once", () =>
    Effect.gen(function*() {
      const e = yield* problemsOf({})
      assert.deepStrictEqual(
        e.problems.map((p) => p.variable).sort(),
        ["AWS_REGION", "KINESIS_STREAM", "PGDATABASE", "PGHOST", "PGUSER"]
      )
      for (const p of e.problems) assert.include(p.reason, "required")
    }))

  it.effect("names every bad value with the reason, and never the password", () =>
    Effect.gen(function*() {
      const e = yield* problemsOf({
        ...base,
        PGPORT: "seventy",
        PGSSLMODE: "maybe",
        WAL2JSON_FORMAT_VERSION: "1",
        REPLICATION_SLOT: "Bad-Slot",
        REPLICATION_PLUGIN: "decoderbufs",
        BATCH_MAX_RECORDS: "501",
        BATCH_MAX_BYTES: "99999999999",
        KINESIS_STREAM: "arn:aws:s3:::bucket",
        OVERSIZED_RECORD_POLICY: "ignore",
        PARTITION_KEY_MODE: "random",
        KINESIS_ORDERING: "strict",
        LOG_LEVEL: "verbose",
        LOG_FORMAT: "xml",
        REPLICATION_SLOT_CREATE: "perhaps",
        LEADER_LOCK_KEY: "99999999999999999999",
        AWS_ENDPOINT_URL_KINESIS: "not a url",
        KINESIS_RETRY_BASE_MS: "20000",
        BACKFILL_CHUNK_ROWS: "0"
      })
      const byName = new Map(e.problems.map((p) => [p.variable, p.reason]))
      assert.deepStrictEqual([...byName.keys()].sort(), [
        "AWS_ENDPOINT_URL_KINESIS", "BACKFILL_CHUNK_ROWS", "BATCH_MAX_BYTES", "BATCH_MAX_RECORDS", "KINESIS_ORDERING", "KINESIS_STREAM",
        "LEADER_LOCK_KEY", "LOG_FORMAT", "LOG_LEVEL", "OVERSIZED_RECORD_POLICY", "PARTITION_KEY_MODE", "PGPORT",
        "PGSSLMODE", "REPLICATION_PLUGIN", "REPLICATION_SLOT", "REPLICATION_SLOT_CREATE", "WAL2JSON_FORMAT_VERSION"
      ])
      assert.include(byName.get("PGPORT"), "integer")
      assert.include(byName.get("PGSSLMODE"), "disable | allow | prefer | require | verify-ca | verify-full")
      assert.include(byName.get("WAL2JSON_FORMAT_VERSION"), "only format-version 2")
      assert.include(byName.get("BATCH_MAX_RECORDS"), "<= 500")
      assert.include(byName.get("BACKFILL_CHUNK_ROWS"), ">= 1")
      assert.notInclude(e.message, "hunter2")
      for (const name of byName.keys()) assert.include(e.message, name)
    }))

  it.effect("checks related variables against each other once each is valid", () =>
    Effect.gen(function*() {
      const e = yield* problemsOf({ ...base, KINESIS_RETRY_BASE_MS: "20000", KINESIS_RETRY_MAX_MS: "1000" })
      assert.deepStrictEqual(e.problems.map((p) => p.variable), ["KINESIS_RETRY_BASE_MS"])
    }))

  it.effect("treats an empty variable as unset", () =>
    Effect.gen(function*() {
      const c = yield* load({ ...base, PGPORT: "", PGPASSWORD: "" })
      assert.strictEqual(c.pg.port, 5432)
      assert.strictEqual(c.pg.password, undefined)
    }))

  it.effect("names a variable the provider fails to read, beside every other bad one", () =>
    Effect.gen(function*() {
      const env = ConfigProvider.fromEnv({ env: { ...base, BATCH_MAX_RECORDS: "501" } })
      const failing = ConfigProvider.make((path) =>
        path[0] === "PGPORT" ? Effect.fail(new ConfigProvider.SourceError({ message: "source unavailable" })) : env.load(path)
      )
      const e = yield* Effect.flip(ServiceConfig.load.pipe(Effect.provide(ConfigProvider.layer(failing))))
      assert.instanceOf(e, InvalidConfig)
      const byName = new Map(e.problems.map((p) => [p.variable, p.reason]))
      assert.deepStrictEqual([...byName.keys()].sort(), ["BATCH_MAX_RECORDS", "PGPORT"])
      assert.include(byName.get("PGPORT"), "source unavailable")
      assert.include(e.message, "PGPORT")
    }))
})

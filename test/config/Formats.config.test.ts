/** RECORD_FORMAT, EXCLUDE_COLUMNS and KINESIS_STREAM_ROUTES as the service reads them: defaults, values, every bad one named. */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { InvalidConfig } from "../../src/config/EnvVar.ts"
import * as ServiceConfig from "../../src/config/ServiceConfig.ts"

const base = { PGHOST: "db", PGUSER: "cdc", PGDATABASE: "app", AWS_REGION: "us-west-2", KINESIS_STREAM: "changes" }

const load = (env: Record<string, string>) =>
  ServiceConfig.load.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

describe("format and routing configuration", () => {
  it.effect("defaults: wal2json records, nothing excluded, one stream", () =>
    Effect.gen(function*() {
      const c = yield* load(base)
      assert.strictEqual(c.format.recordFormat, "wal2json")
      assert.deepStrictEqual(c.format.excludeColumns, [])
      assert.deepStrictEqual(c.kinesis.routes, [])
    }))

  it.effect("reads the three variables", () =>
    Effect.gen(function*() {
      const c = yield* load({
        ...base,
        RECORD_FORMAT: "Debezium",
        EXCLUDE_COLUMNS: "public.users.password_hash, *.ssn",
        KINESIS_STREAM_ROUTES: "public.orders=orders-cdc,public.*=app-cdc"
      })
      assert.strictEqual(c.format.recordFormat, "debezium")
      assert.deepStrictEqual(c.format.excludeColumns.map((p) => p.text), ["public.users.password_hash", "*.ssn"])
      assert.deepStrictEqual(c.kinesis.routes!.map((r) => [r.pattern, r.stream.name]), [["public.orders", "orders-cdc"], ["public.*", "app-cdc"]])
    }))

  it.effect("names every bad one in one error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(load({
        ...base, RECORD_FORMAT: "avro", EXCLUDE_COLUMNS: "a.b.c.d", KINESIS_STREAM_ROUTES: "orders=x"
      }))
      assert.instanceOf(error, InvalidConfig)
      assert.deepStrictEqual(error.problems.map((p) => p.variable).sort(), ["EXCLUDE_COLUMNS", "KINESIS_STREAM_ROUTES", "RECORD_FORMAT"])
    }))
})

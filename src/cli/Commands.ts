/**
 * The operator commands: `status` (the slot, the WAL it holds, its consumer, the leader and the
 * backfills), `peek N` (the slot's next changes, not consumed) and `backfill TABLE…` (request, or
 * with --cancel cancel, backfills). They read PGHOST… and REPLICATION_SLOT like the service,
 * through a small @effect/sql-pg pool, and print text, or JSON with --json.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { loadPgOnly } from "../config/ServiceConfig.ts"
import * as ProgressView from "../backfill/ProgressView.ts"
import * as Query from "../backfill/Query.ts"
import * as Requests from "../backfill/Requests.ts"
import * as Store from "../backfill/Store.ts"
import * as Env from "../config/EnvVar.ts"
import * as LockKey from "../leader/LockKey.ts"
import type { PgError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import * as PgSession from "../postgres/PgSession.ts"
import { CliFailure } from "./CliFailure.ts"
import * as Render from "./Render.ts"
import * as SlotQueries from "./SlotQueries.ts"

/** PostgreSQL and the slot as the service would see them, plus the leader lock key. */
const loadConfig = Effect.gen(function*() {
  const config = yield* loadPgOnly
  const { LEADER_LOCK_KEY } = yield* Env.collect({ LEADER_LOCK_KEY: Env.optional("LEADER_LOCK_KEY", Env.bigint) })
  const lockKey = LockKey.resolve({ override: LEADER_LOCK_KEY, database: config.pg.database, slot: config.replication.slot })
  return { ...config, lockKey }
})

/** Turns what can go wrong talking to PostgreSQL into one clear line. */
const toFailure = (pg: PgConfig) => (error: CliFailure | SqlError | PgError): CliFailure => {
  if (error._tag === "CliFailure") return error
  const typed = error._tag === "SqlError" ? ErrorPolicy.fromSqlError(error) : error
  // the server answered (a statement failed, or it cannot serve now): the connection itself worked
  return typed.reason === "Statement" || typed.reason === "Unavailable"
    ? new CliFailure({ message: `query failed: ${typed.message}` })
    : new CliFailure({ message: `cannot connect to PostgreSQL at ${pg.host}:${pg.port} as ${pg.user}: ${typed.message}` })
}

/** Runs queries on a one-connection pool on the configured database. */
const withDatabase = <A>(pg: PgConfig, queries: Effect.Effect<A, CliFailure | SqlError | PgError, SqlClient.SqlClient>) =>
  PgSession.sessionOptions(pg, { applicationName: `${pg.applicationName}/cli` }).pipe(
    Effect.flatMap((options) => Effect.provide(queries, PgClient.layer({ ...options, maxConnections: 1 }))),
    Effect.mapError(toFailure(pg))
  )

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("Print JSON instead of text"))

const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

export const status = Command.make("status", { json }, ({ json }) =>
  Effect.gen(function*() {
    const config = yield* loadConfig
    const result = yield* withDatabase(config.pg, Effect.all({
      status: SlotQueries.slotStatus(config.replication, config.lockKey),
      backfills: Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => Store.progress(Query.ofClient(sql), config.replication.slot))
    }))
    const backfills = result.backfills.map(ProgressView.view)
    yield* json
      ? printJson({ ...result.status, backfills })
      : Console.log([Render.status(result.status), "Backfills", ...ProgressView.render(backfills)].join("\n"))
  })).pipe(Command.withDescription("Show the slot, the WAL it retains, its consumer, the current leader, the tables without a row key and the backfills"))

export const peek = Command.make("peek", {
  count: Argument.Int("count").pipe(Argument.withDescription("How many messages to show"), Argument.withDefault(10)),
  json
}, ({ count, json }) =>
  Effect.gen(function*() {
    if (count < 1) return yield* new CliFailure({ message: `count must be at least 1, got ${count}` })
    const config = yield* loadConfig
    const result = yield* withDatabase(config.pg, SlotQueries.peekChanges(config.replication, count))
    yield* json
      ? printJson({ slot: config.replication.slot, ...result })
      : Console.log(Render.peek(config.replication.slot, result.plugin, result.changes))
  })).pipe(Command.withDescription("Show the slot's next N messages without consuming them"))

const outcomeLine = (outcome: Requests.Outcome): string => {
  switch (outcome._tag) {
    case "Queued":
      return `${outcome.table}: backfill queued (request ${outcome.id}, ~${Math.max(0, outcome.estimatedRows).toLocaleString("en-US")} rows)`
    case "AlreadyOpen":
      return `${outcome.table}: already ${outcome.state} (request ${outcome.id})`
    case "Refused":
      return `${outcome.table}: refused: ${outcome.reason}`
    case "Cancelled":
      return `${outcome.table}: backfill cancelled`
    case "NothingToCancel":
      return `${outcome.table}: no queued or running backfill to cancel`
  }
}

export const backfill = Command.make("backfill", {
  tables: Argument.String("table").pipe(
    Argument.withDescription("Tables to backfill, as schema.table"),
    Argument.variadic({ min: 1 })
  ),
  cancel: Flag.Boolean("cancel").pipe(Flag.withDefault(false), Flag.withDescription("Cancel the tables' backfills instead")),
  json
}, ({ cancel, json, tables }) =>
  Effect.gen(function*() {
    const config = yield* loadConfig
    const slot = config.replication.slot
    const outcomes = yield* withDatabase(config.pg, Effect.gen(function*() {
      const query = Query.ofClient(yield* SqlClient.SqlClient)
      if (yield* Requests.isReadOnly(query)) return yield* new CliFailure({ message: `cannot ${cancel ? "cancel" : "request"} a backfill: ${Requests.readOnlyMessage}` })
      return yield* (cancel ? Requests.cancel(query, slot, tables) : Requests.request(query, slot, tables))
    }))
    yield* json ? printJson({ slot, outcomes }) : Console.log(outcomes.map(outcomeLine).join("\n"))
    if (outcomes.some((outcome) => outcome._tag === "Refused")) {
      return yield* new CliFailure({ message: "some tables were refused (see above)" })
    }
  })).pipe(Command.withDescription("Request a backfill of tables (the running leader picks it up within seconds), or cancel one with --cancel"))

export const root = Command.make("cdc-logical-replication").pipe(
  Command.withDescription("Operator commands for the PostgreSQL → Kinesis change stream"),
  Command.withSubcommands([status, peek, backfill])
)

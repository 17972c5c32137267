/**
 * The operator commands: `status` (the slot, the WAL it holds, its consumer and the leader) and
 * `peek N` (the slot's next changes, not consumed). Both read PGHOST… and REPLICATION_SLOT like the
 * service, through a small @effect/sql-pg pool, and print text, or JSON with --json.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { loadPgOnly } from "../config/ServiceConfig.ts"
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
const withDatabase = <A>(pg: PgConfig, queries: Effect.Effect<A, CliFailure | SqlError, SqlClient.SqlClient>) =>
  PgSession.sessionOptions(pg, { applicationName: `${pg.applicationName}/cli` }).pipe(
    Effect.flatMap((options) => Effect.provide(queries, PgClient.layer({ ...options, maxConnections: 1 }))),
    Effect.mapError(toFailure(pg))
  )

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("Print JSON instead of text"))

const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

export const status = Command.make("status", { json }, ({ json }) =>
  Effect.gen(function*() {
    const config = yield* loadConfig
    const result = yield* withDatabase(config.pg, SlotQueries.slotStatus(config.replication.slot, config.lockKey))
    yield* json ? printJson(result) : Console.log(Render.status(result))
  })).pipe(Command.withDescription("Show the slot, the WAL it retains, its consumer and the current leader"))

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

export const root = Command.make("cdc-logical-replication").pipe(
  Command.withDescription("Operator commands for the PostgreSQL → Kinesis change stream"),
  Command.withSubcommands([status, peek])
)

/**
 * One way to run SQL for the backfill's modules, whatever holds the session: the leader's own
 * connection (a {@link PgConnection}) or the CLI's pool (a SqlClient). Rows come back positional;
 * every value the backfill reads is cast to text in its SQL, so values are strings or null.
 */
import type * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import type { PgError } from "../Errors.ts"

export type Row = ReadonlyArray<string | null>

/** Runs one statement with `$n` parameters (sent as text). */
export type Query = (sql: string, params?: ReadonlyArray<string | null>) => Effect.Effect<ReadonlyArray<Row>, PgError>

const asText = (rows: ReadonlyArray<ReadonlyArray<unknown>>): ReadonlyArray<Row> =>
  rows.map((row) => row.map((value) => (value === null || value === undefined ? null : String(value))))

/** Over a standalone session. */
export const ofConnection = (connection: PgConnection.PgConnection): Query => (sql, params = []) =>
  connection.queryValues(sql, params, false).pipe(Effect.map(asText), Effect.mapError(ErrorPolicy.fromSqlError))

/** Over a SqlClient (the CLI's pool). */
export const ofClient = (client: SqlClient.SqlClient): Query => (sql, params = []) =>
  client.unsafe(sql, params).values.pipe(Effect.map(asText), Effect.mapError(ErrorPolicy.fromSqlError))

/** The SQLSTATE of a server error, when it is one. */
export const sqlState = (error: PgError): string | undefined => error.code

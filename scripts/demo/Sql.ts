/**
 * A small promise-facing PostgreSQL client for the demo's workload and setup, over @effect/sql-pg
 * (the project's own driver): statements with parameters, and transactions of several statements.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { SqlClient } from "effect/sql"

export interface Statement {
  readonly text: string
  readonly params?: ReadonlyArray<unknown>
}

export interface Sql {
  readonly query: <A extends object = Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) => Promise<ReadonlyArray<A>>
  /** Runs the statements in one transaction. */
  readonly transaction: (statements: ReadonlyArray<Statement>) => Promise<void>
  readonly close: () => Promise<void>
}

export interface SqlOptions {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string | undefined
  readonly database: string
  readonly ssl: boolean
  readonly maxConnections: number
}

export const openSql = async (options: SqlOptions): Promise<Sql> => {
  const runtime = ManagedRuntime.make(PgClient.layer({
    host: options.host,
    port: options.port,
    username: options.user,
    ...(options.password === undefined ? {} : { password: Redacted.make(options.password) }),
    database: options.database,
    ssl: options.ssl,
    maxConnections: options.maxConnections,
    applicationName: "cdc-demo-workload"
  }))
  const run = <A>(effect: Effect.Effect<A, unknown, SqlClient.SqlClient>): Promise<A> => runtime.runPromise(effect)
  await run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => sql.unsafe("SELECT 1")))
  return {
    query: <A extends object>(text: string, params?: ReadonlyArray<unknown>) =>
      run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => sql.unsafe<A>(text, params))),
    transaction: (statements) =>
      run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) =>
        sql.withTransaction(Effect.forEach(statements, (s) => sql.unsafe(s.text, s.params), { discard: true })))),
    close: () => runtime.dispose()
  }
}

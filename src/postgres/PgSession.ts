/**
 * Plain (non-replication) PostgreSQL sessions on @effect/sql-pg from {@link PgConfig}, for the
 * leader's lock session and the operator CLI: the connection options with the shared TLS policy
 * ({@link Tls.policy}); its `SqlError`s become {@link PgError}s through `ErrorPolicy.fromSqlError`.
 */
import * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { ConnectionOptions } from "node:tls"
import type { PgConfig } from "../config/ServiceConfig.ts"
import type { PgError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import * as Tls from "./Tls.ts"
import * as Transport from "./Transport.ts"


/** Connection options shared by `PgConnection.make` and `PgClient.make`. */
export interface SessionOptions {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly username: string
  readonly password: PgConfig["password"]
  readonly ssl: false | ConnectionOptions
  readonly connectTimeout: number
  readonly applicationName: string
}

/** The `ssl` option for @effect/sql-pg under the shared TLS policy (`false` = plaintext). */
export const tlsOptions = (pg: PgConfig): Effect.Effect<false | ConnectionOptions, PgError> =>
  Effect.flatMap(Tls.policy(pg), (policy) => {
    if (policy._tag === "Plain") return Effect.succeed(false as const)
    // @effect/sql-pg cannot fall back to plaintext itself: ask the server first for allow/prefer
    if (!policy.optional) return Effect.succeed(policy.options)
    return Effect.map(Transport.serverOffersTls(pg), (offered) => offered ? policy.options : false as const)
  })

/** Everything needed to open a session as PgConfig describes. */
export const sessionOptions = (
  pg: PgConfig,
  overrides: { readonly applicationName?: string } = {}
): Effect.Effect<SessionOptions, PgError> =>
  Effect.map(tlsOptions(pg), (ssl) => ({
    host: pg.host,
    port: pg.port,
    database: pg.database,
    username: pg.user,
    password: pg.password,
    ssl,
    connectTimeout: pg.connectTimeoutMs,
    applicationName: overrides.applicationName ?? pg.applicationName
  }))

/** A standalone session (outside any pool) that ends when the scope closes. */
export const connect = (
  pg: PgConfig,
  overrides: { readonly applicationName?: string; readonly keepAliveMs?: number } = {}
): Effect.Effect<PgConnection.PgConnection, PgError, Scope.Scope> =>
  Effect.flatMap(sessionOptions(pg, overrides), (options) =>
    PgConnection.make({
      ...options,
      ...(overrides.keepAliveMs === undefined ? {} : { keepAlive: Math.max(1000, overrides.keepAliveMs) }),
      prepare: false
    }).pipe(Effect.mapError(ErrorPolicy.fromSqlError)))

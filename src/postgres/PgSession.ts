/**
 * Plain (non-replication) PostgreSQL sessions on @effect/sql-pg from {@link PgConfig}, for the
 * leader's lock session and the operator CLI: the connection options with the shared TLS policy
 * ({@link Tls.policy}), and the mapping of its `SqlError` onto the service's typed errors.
 */
import * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { SqlError } from "effect/sql/SqlError"
import type { ConnectionOptions } from "node:tls"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { PgAuthError, PgConnectionError, PgServerError, PgTlsError } from "../Errors.ts"
import * as Tls from "./Tls.ts"
import * as Transport from "./Transport.ts"
import type { TransportError } from "./Transport.ts"

export type PgSessionError = PgConnectionError | PgAuthError | PgTlsError | PgServerError

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
export const tlsOptions = (pg: PgConfig): Effect.Effect<false | ConnectionOptions, PgTlsError | TransportError> =>
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
): Effect.Effect<SessionOptions, PgSessionError> =>
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

const tlsErrorCodes = /CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS|ERR_SSL|HOSTNAME|ALTNAME/

const causeChain = (error: unknown): ReadonlyArray<unknown> => {
  const chain: Array<unknown> = []
  let current: unknown = error
  while (current !== undefined && current !== null && chain.length < 5) {
    chain.push(current)
    current = typeof current === "object" && "cause" in current ? (current as { readonly cause?: unknown }).cause : undefined
  }
  return chain
}

const fieldOf = (u: unknown, key: string): string | undefined => {
  if (typeof u !== "object" || u === null || !(key in u)) return undefined
  const v = (u as Record<string, unknown>)[key]
  return typeof v === "string" ? v : undefined
}

/** Maps an @effect/sql-pg error onto the service's error policy (auth and TLS are fatal). */
export const classifySqlError = (error: SqlError): PgSessionError => {
  const chain = causeChain(error)
  const message = chain.map((c) => fieldOf(c, "message"))
    .reduce((acc: Array<string>, m) => m === undefined || acc.some((seen) => seen.includes(m)) ? acc : [...acc, m], [])
    .join(": ") || error.message
  if (error.reason._tag === "AuthenticationError") return new PgAuthError({ message })
  const tlsCode = chain.map((c) => fieldOf(c, "code")).find((code) => code !== undefined && tlsErrorCodes.test(code))
  if (tlsCode !== undefined || /refused TLS|does not support TLS/i.test(message)) {
    return new PgTlsError({ message: tlsCode === undefined ? message : `${message} (${tlsCode})` })
  }
  const sqlState = chain.map((c) => fieldOf(c, "code")).find((code) => code !== undefined && /^[0-9A-Z]{5}$/.test(code))
  if (sqlState !== undefined && !sqlState.startsWith("08")) {
    if (sqlState === "28P01" || sqlState === "28000") return new PgAuthError({ message })
    return new PgServerError({ code: sqlState, message })
  }
  return new PgConnectionError({ message, cause: error })
}

/** A standalone session (outside any pool) that ends when the scope closes. */
export const connect = (
  pg: PgConfig,
  overrides: { readonly applicationName?: string; readonly keepAliveMs?: number } = {}
): Effect.Effect<PgConnection.PgConnection, PgSessionError, Scope.Scope> =>
  Effect.flatMap(sessionOptions(pg, overrides), (options) =>
    PgConnection.make({
      ...options,
      ...(overrides.keepAliveMs === undefined ? {} : { keepAlive: Math.max(1000, overrides.keepAliveMs) }),
      prepare: false
    }).pipe(Effect.mapError(classifySqlError)))

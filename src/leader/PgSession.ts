/**
 * Plain (non-replication) PostgreSQL sessions from {@link PgConfig}: the connection options for
 * @effect/sql-pg with PGSSLMODE applied the way libpq applies it, and the mapping of its
 * `SqlError` onto the service's typed errors.
 *
 * PGSSLMODE: disable = plaintext; prefer = TLS when the server offers it (asked with an
 * SSLRequest first), certificate not verified; require = TLS, not verified (verified against
 * PGSSLROOTCERT when set, as libpq does); verify-ca = the chain must lead to PGSSLROOTCERT (or the
 * system roots); verify-full = verify-ca plus the host name.
 */
import * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { SqlError } from "effect/sql/SqlError"
import * as Fs from "node:fs"
import * as Net from "node:net"
import type { ConnectionOptions } from "node:tls"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { PgAuthError, PgConnectionError, PgServerError, PgTlsError } from "../Errors.ts"

export type PgSessionError = PgConnectionError | PgAuthError | PgTlsError | PgServerError

/** Connection options shared by `PgConnection.make` and `PgClient.make`. */
export interface SessionOptions {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly username: string
  readonly password: PgConfig["password"]
  readonly ssl: boolean | ConnectionOptions
  readonly connectTimeout: number
  readonly applicationName: string
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])

/** Sends an SSLRequest and reads the one-byte answer: does the server speak TLS? */
export const serverOffersTls = (host: string, port: number, timeoutMs: number): Effect.Effect<boolean, PgConnectionError> =>
  Effect.callback<boolean, PgConnectionError>((resume) => {
    const socket = Net.connect({ host, port })
    let settled = false
    const settle = (effect: Effect.Effect<boolean, PgConnectionError>) => {
      if (settled) return
      settled = true
      socket.destroy()
      resume(effect)
    }
    socket.setTimeout(timeoutMs, () =>
      settle(Effect.fail(new PgConnectionError({ message: `no answer from ${host}:${port} within ${timeoutMs} ms` }))))
    socket.once("connect", () => socket.write(SSL_REQUEST))
    socket.once("data", (chunk) => settle(Effect.succeed(chunk[0] === 0x53)))
    socket.once("error", (error) =>
      settle(Effect.fail(new PgConnectionError({ message: `cannot reach ${host}:${port}: ${error.message}`, cause: error }))))
    socket.once("close", () => settle(Effect.fail(new PgConnectionError({ message: `${host}:${port} closed the connection` }))))
    return Effect.sync(() => socket.destroy())
  })

const readRootCert = (path: string): Effect.Effect<Buffer, PgTlsError> =>
  Effect.try({
    try: () => Fs.readFileSync(path),
    catch: (error) => new PgTlsError({ message: `cannot read PGSSLROOTCERT ${path}: ${error instanceof Error ? error.message : String(error)}` })
  })

const withRootCert = (pg: PgConfig, options: ConnectionOptions): Effect.Effect<ConnectionOptions, PgTlsError> =>
  pg.sslRootCert === undefined
    ? Effect.succeed(options)
    : Effect.map(readRootCert(pg.sslRootCert), (ca) => ({ ...options, ca }))

/** The TLS settings PGSSLMODE asks for (`false` = plaintext). */
export const tlsOptions = (pg: PgConfig): Effect.Effect<boolean | ConnectionOptions, PgTlsError | PgConnectionError> => {
  const unverified: ConnectionOptions = { rejectUnauthorized: false }
  switch (pg.sslMode) {
    case "disable":
      return Effect.succeed(false)
    case "prefer":
      return Effect.map(serverOffersTls(pg.host, pg.port, pg.connectTimeoutMs), (tls) => tls ? unverified : false)
    case "require":
      return pg.sslRootCert === undefined
        ? Effect.succeed(unverified)
        : withRootCert(pg, { rejectUnauthorized: true, checkServerIdentity: () => undefined })
    case "verify-ca":
      return withRootCert(pg, { rejectUnauthorized: true, checkServerIdentity: () => undefined })
    case "verify-full":
      return withRootCert(pg, { rejectUnauthorized: true })
  }
}

/** Everything needed to open a session as PgConfig describes. */
export const sessionOptions = (
  pg: PgConfig,
  overrides: { readonly applicationName?: string } = {}
): Effect.Effect<SessionOptions, PgTlsError | PgConnectionError> =>
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

/**
 * What PGSSLMODE (and PGSSLROOTCERT) ask of a PostgreSQL connection, decided once for every
 * connection the service opens (replication, leader session, CLI), with libpq's semantics:
 *
 * - disable: plaintext.
 * - allow, prefer: TLS when the server offers it, plaintext when it does not; the certificate is
 *   not verified. (libpq's `allow` tries plaintext first; here it asks for TLS first, like prefer.)
 * - require: TLS or nothing; the certificate is not verified, unless the PGSSLROOTCERT file exists:
 *   then, as in libpq, the chain must lead to that root (verify-ca). A PGSSLROOTCERT that does not
 *   exist is ignored under require, as libpq ignores it (with a warning here).
 * - verify-ca: TLS, the chain must lead to PGSSLROOTCERT (or to the system's roots when unset);
 *   the host name is not checked.
 * - verify-full: verify-ca plus the host name (PGHOST) must match the certificate.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import type { ConnectionOptions } from "node:tls"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { PgError } from "../Errors.ts"

/** The TLS a connection must use. */
export type TlsPolicy =
  | { readonly _tag: "Plain" }
  | {
    readonly _tag: "Tls"
    /** Fall back to plaintext when the server answers the SSLRequest with N (allow, prefer). */
    readonly optional: boolean
    /** Options for node:tls (without the socket); includes the host name for SNI and checks. */
    readonly options: ConnectionOptions
  }

const readRootCert = (path: string): Effect.Effect<Buffer, PgError> =>
  Effect.try({
    try: () => Fs.readFileSync(path),
    catch: (cause) =>
      new PgError({ reason: "Tls", message: `cannot read PGSSLROOTCERT ${path}: ${cause instanceof Error ? cause.message : String(cause)}` })
  })

/** Verifies the chain (against PGSSLROOTCERT when set); the host name only when `checkHost`. */
const verifying = (pg: PgConfig, checkHost: boolean): Effect.Effect<ConnectionOptions, PgError> =>
  Effect.map(
    pg.sslRootCert === undefined ? Effect.succeed(undefined) : readRootCert(pg.sslRootCert),
    (ca): ConnectionOptions => ({
      ...(ca === undefined ? {} : { ca }),
      rejectUnauthorized: true,
      // node checks the host name by default; verify-ca (and require with a root) checks the chain only
      ...(checkHost ? {} : { checkServerIdentity: () => undefined })
    })
  )

/** The policy for a PostgreSQL configuration; fails when PGSSLROOTCERT cannot be read. */
export const policy = (pg: PgConfig): Effect.Effect<TlsPolicy, PgError> => {
  const tls = (optional: boolean) => (options: ConnectionOptions): TlsPolicy => ({
    _tag: "Tls",
    optional,
    options: { host: pg.host, ...(Net.isIP(pg.host) === 0 ? { servername: pg.host } : {}), ...options }
  })
  switch (pg.sslMode) {
    case "disable":
      return Effect.succeed({ _tag: "Plain" })
    case "allow":
    case "prefer":
      return Effect.succeed(tls(true)({ rejectUnauthorized: false }))
    case "require": {
      const unverified = Effect.succeed(tls(false)({ rejectUnauthorized: false }))
      if (pg.sslRootCert === undefined) return unverified
      if (!Fs.existsSync(pg.sslRootCert)) {
        return Effect.logWarning("tls_root_certificate_missing").pipe(
          Effect.annotateLogs({
            PGSSLROOTCERT: pg.sslRootCert,
            note: "PGSSLMODE=require without a root certificate file: the server's certificate is not verified"
          }),
          Effect.andThen(unverified)
        )
      }
      return Effect.map(verifying(pg, false), tls(false))
    }
    case "verify-ca":
      return Effect.map(verifying(pg, false), tls(false))
    case "verify-full":
      return Effect.map(verifying(pg, true), tls(false))
  }
}

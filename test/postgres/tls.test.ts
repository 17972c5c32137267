/**
 * PGSSLMODE with libpq's semantics on every kind of PostgreSQL connection the service opens (the
 * replication connection, the leader's lock session, the operator CLI), against a server whose
 * certificate is signed by a throwaway CA and valid for localhost / 127.0.0.1 only (the server
 * also listens on 127.0.0.2, a name the certificate does not carry).
 */
import * as PgConnection from "@effect/sql-pg/PgConnection"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { execFile } from "node:child_process"
import * as Path from "node:path"
import type { PgConfig, SslMode } from "../../src/config/ServiceConfig.ts"
import type { PgError } from "../../src/Errors.ts"
import * as ErrorPolicy from "../../src/ErrorPolicy.ts"
import * as PgSession from "../../src/postgres/PgSession.ts"
import * as Quote from "../../src/postgres/Quote.ts"
import * as PgReplicationConnection from "../../src/replication/PgReplicationConnection.ts"
import { type PgCluster, pgConfigOf, startPostgres } from "../../support/PostgresHarness.ts"
import {
  type CertificateAuthority,
  makeCertificateAuthority,
  makeServerCertificate,
  postgresTlsSettings,
  type ServerCertificate
} from "../../support/Tls.ts"

const SSL_IN_USE = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

/** How a connection attempt ended: connected (and whether pg_stat_ssl says encrypted), or the error. */
type Outcome = { readonly ok: true; readonly ssl: string } | { readonly ok: false; readonly tag: string; readonly message: string }

const failed = (error: PgError): Outcome => ({ ok: false, tag: `${error._tag}/${error.reason}`, message: error.message })

const viaReplication = (pg: PgConfig): Effect.Effect<Outcome> =>
  Effect.scoped(Effect.gen(function*() {
    const connection = yield* PgReplicationConnection.connect(pg)
    const { rows } = yield* connection.query(SSL_IN_USE)
    return { ok: true, ssl: rows[0]?.[0] ?? "?" } satisfies Outcome
  })).pipe(Effect.catch((error) => Effect.succeed(failed(error))))

const viaLeaderSession = (pg: PgConfig): Effect.Effect<Outcome> =>
  Effect.scoped(Effect.gen(function*() {
    const connection: PgConnection.PgConnection = yield* PgSession.connect(pg, { applicationName: "tls-test/leader" })
    const result = yield* Effect.mapError(connection.query(SSL_IN_USE, [], false), ErrorPolicy.fromSqlError)
    return { ok: true, ssl: String(result.rows[0]?.ssl ?? "?") } satisfies Outcome
  })).pipe(Effect.catch((error) => Effect.succeed(failed(error))))

const root = Path.resolve(import.meta.dirname, "..", "..")

/** The CLI as an operator runs it; `status` of a slot that does not exist proves the connection worked. */
const viaCli = (pg: PgConfig): Effect.Effect<Outcome> =>
  Effect.promise(() =>
    new Promise<Outcome>((resolve) => {
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "",
        PGHOST: pg.host,
        PGPORT: String(pg.port),
        PGUSER: pg.user,
        PGPASSWORD: pg.password === undefined ? "" : Redacted.value(pg.password),
        PGDATABASE: pg.database,
        PGSSLMODE: pg.sslMode,
        ...(pg.sslRootCert === undefined ? {} : { PGSSLROOTCERT: pg.sslRootCert }),
        REPLICATION_SLOT: "no_such_slot"
      }
      execFile(
        Path.join(root, "node_modules", ".bin", "node"),
        [Path.join(root, "src", "cli", "main.ts"), "status"],
        { env, timeout: 30_000 },
        (_error, _stdout, stderr) => {
          if (stderr.includes(`replication slot "no_such_slot" does not exist`)) resolve({ ok: true, ssl: "n/a" })
          else resolve({ ok: false, tag: "CliFailure", message: stderr })
        }
      )
    })
  )

describe("PGSSLMODE on every PostgreSQL connection (self-signed CA)", () => {
  let cluster: PgCluster
  let certificate: ServerCertificate
  let wrongCa: CertificateAuthority
  beforeAll(async () => {
    certificate = makeServerCertificate({ commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] })
    wrongCa = makeCertificateAuthority()
    const tls = postgresTlsSettings(certificate)
    cluster = await startPostgres({
      conf: { ...tls.conf, listen_addresses: "'127.0.0.1,127.0.0.2'" },
      files: tls.files,
      hba: ["host all all 127.0.0.2/32 scram-sha-256"]
    })
  })
  afterAll(async () => {
    await cluster?.stop()
    certificate?.cleanup()
    wrongCa?.cleanup()
  })

  interface Case {
    readonly sslMode: SslMode
    readonly root: "right" | "wrong" | "none" | "missing"
    readonly host: "127.0.0.1" | "127.0.0.2"
    /** `plain`/`tls`: connects (pg_stat_ssl false/true); otherwise the error message it fails with. */
    readonly expect: "plain" | "tls" | RegExp
  }
  const untrusted = /unable to verify the first certificate|self[- ]signed|UNABLE_TO_VERIFY|unable to get local issuer/i
  const wrongHost = /does not match certificate's altnames|ERR_TLS_CERT_ALTNAME_INVALID/
  const cases: ReadonlyArray<Case> = [
    { sslMode: "disable", root: "wrong", host: "127.0.0.1", expect: "plain" },
    { sslMode: "allow", root: "wrong", host: "127.0.0.2", expect: "tls" },
    { sslMode: "prefer", root: "wrong", host: "127.0.0.2", expect: "tls" },
    { sslMode: "require", root: "none", host: "127.0.0.2", expect: "tls" },
    // libpq: require with a root certificate present is verify-ca
    { sslMode: "require", root: "right", host: "127.0.0.2", expect: "tls" },
    { sslMode: "require", root: "wrong", host: "127.0.0.1", expect: untrusted },
    // libpq: a root certificate file that does not exist is no root certificate (require only)
    { sslMode: "require", root: "missing", host: "127.0.0.2", expect: "tls" },
    { sslMode: "verify-ca", root: "missing", host: "127.0.0.1", expect: /\/nonexistent\/root\.crt/ },
    { sslMode: "verify-ca", root: "right", host: "127.0.0.2", expect: "tls" },
    { sslMode: "verify-ca", root: "wrong", host: "127.0.0.1", expect: untrusted },
    { sslMode: "verify-full", root: "right", host: "127.0.0.1", expect: "tls" },
    { sslMode: "verify-full", root: "right", host: "127.0.0.2", expect: wrongHost },
    { sslMode: "verify-full", root: "wrong", host: "127.0.0.1", expect: untrusted },
    { sslMode: "verify-full", root: "none", host: "127.0.0.1", expect: untrusted }
  ]
  const configFor = (c: Case): PgConfig =>
    pgConfigOf(cluster, {
      host: c.host,
      sslMode: c.sslMode,
      sslRootCert: c.root === "right"
        ? certificate.caCertPath
        : c.root === "wrong"
        ? wrongCa.caCertPath
        : c.root === "missing"
        ? "/nonexistent/root.crt"
        : undefined
    })
  const describeCase = (c: Case) => `${c.sslMode} root=${c.root} host=${c.host}`

  const check = (kind: string, run: (pg: PgConfig) => Effect.Effect<Outcome>, sslShown: boolean) =>
    Effect.gen(function*() {
      for (const c of cases) {
        const outcome = yield* run(configFor(c))
        const label = `${kind}: ${describeCase(c)}`
        if (c.expect === "plain" || c.expect === "tls") {
          expect(outcome, label).toMatchObject({ ok: true, ...(sslShown ? { ssl: c.expect === "tls" ? "true" : "false" } : {}) })
        } else {
          expect(outcome.ok, label).toBe(false)
          if (!outcome.ok) {
            expect(outcome.message, label).toMatch(c.expect)
            // and says what to do
            if (c.expect === wrongHost) expect(outcome.message, label).toContain("PGSSLMODE=verify-ca to check the chain only")
            if (c.expect === untrusted) expect(outcome.message, label).toContain("set PGSSLROOTCERT to the CA bundle")
            // a certificate problem is a TLS error (fatal), never a retriable connection error
            if (kind !== "cli") expect(outcome.tag, label).toBe("PgError/Tls")
          }
        }
      }
    })

  it.live("the replication connection", () => check("replication", viaReplication, true))
  it.live("the leader's lock session", () => check("leader", viaLeaderSession, true))
  it.live("the operator CLI", () => check("cli", viaCli, false), 120_000)

  it.live("quoted literals and identifiers come back unchanged, whatever standard_conforming_strings says", () =>
    Effect.scoped(Effect.gen(function*() {
      const connection = yield* PgReplicationConnection.connect(pgConfigOf(cluster))
      const hostile = [`it's`, `a\\'b`, `\\`, `"q"`, `x' OR '1'='1`, "tab\there", "ünï"]
      for (const setting of ["on", "off"]) {
        yield* connection.query(`SET standard_conforming_strings = ${setting}`)
        for (const value of hostile) {
          const { rows, columns } = yield* connection.query(`SELECT ${Quote.literal(value)} AS ${Quote.identifier(value)}`)
          expect(rows, `${setting}: ${value}`).toEqual([[value]])
          expect(columns, `${setting}: ${value}`).toEqual([value])
        }
      }
    })))
})

describe("PGSSLMODE against a server without TLS", () => {
  let cluster: PgCluster
  beforeAll(async () => {
    cluster = await startPostgres()
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  const check = (kind: string, run: (pg: PgConfig) => Effect.Effect<Outcome>, sslShown: boolean) =>
    Effect.gen(function*() {
      for (const sslMode of ["allow", "prefer"] as const) {
        const outcome = yield* run(pgConfigOf(cluster, { sslMode }))
        expect(outcome, `${kind}: ${sslMode}`).toMatchObject({ ok: true, ...(sslShown ? { ssl: "false" } : {}) })
      }
      for (const sslMode of ["require", "verify-ca", "verify-full"] as const) {
        const outcome = yield* run(pgConfigOf(cluster, { sslMode }))
        expect(outcome.ok, `${kind}: ${sslMode}`).toBe(false)
        if (!outcome.ok) {
          expect(outcome.message, `${kind}: ${sslMode}`).toMatch(/TLS|SSL/)
          if (kind !== "cli") expect(outcome.tag, `${kind}: ${sslMode}`).toBe("PgError/Tls")
        }
      }
    })

  it.live("allow and prefer fall back to plaintext; require and verify-* fail as TLS errors, on every connection kind", () =>
    Effect.gen(function*() {
      yield* check("replication", viaReplication, true)
      yield* check("leader", viaLeaderSession, true)
      yield* check("cli", viaCli, false)
    }), 120_000)
})

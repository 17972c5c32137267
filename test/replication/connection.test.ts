/**
 * The replication connection against real PostgreSQL clusters: authentication methods, TLS modes,
 * typed server errors, timeouts and socket clean-up.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Redacted } from "effect"
import * as Net from "node:net"
import * as Lsn from "../../src/domain/Lsn.ts"
import * as PgReplicationConnection from "../../src/replication/PgReplicationConnection.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { makeServerCertificate, postgresTlsSettings, type ServerCertificate } from "../../support/Tls.ts"
import { eventually, pgConfig, psql } from "./fixtures.ts"

const connectAndRun = (config: Parameters<typeof PgReplicationConnection.connect>[0], sql: string) =>
  Effect.scoped(Effect.gen(function*() {
    const connection = yield* PgReplicationConnection.connect(config)
    const result = yield* connection.query(sql)
    return { connection, result }
  }))

describe("PgReplicationConnection (TLS-enabled cluster)", () => {
  let pg: PgCluster
  let certificate: ServerCertificate
  beforeAll(async () => {
    // valid for localhost and 127.0.0.1, not for 127.0.0.2 (where the server also listens)
    certificate = makeServerCertificate({ commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] })
    const tls = postgresTlsSettings(certificate)
    pg = await startPostgres({
      conf: { ...tls.conf, listen_addresses: "'127.0.0.1,127.0.0.2'" },
      files: tls.files,
      hba: [
        "host all trust_user 127.0.0.1/32 trust",
        "host all clear_user 127.0.0.1/32 password",
        "host all md5_user 127.0.0.1/32 md5",
        "host all all 127.0.0.2/32 scram-sha-256"
      ]
    })
    await pg.psql(`
      CREATE ROLE trust_user LOGIN REPLICATION;
      CREATE ROLE clear_user LOGIN REPLICATION PASSWORD 'clear-secret';
      SET password_encryption = 'md5';
      CREATE ROLE md5_user LOGIN REPLICATION PASSWORD 'md5-secret';
    `)
  })
  afterAll(async () => {
    await pg?.stop()
    certificate?.cleanup()
  })

  it.live("authenticates with SCRAM-SHA-256 in replication=database mode and runs IDENTIFY_SYSTEM and SQL", () =>
    Effect.gen(function*() {
      const { connection, result } = yield* connectAndRun(pgConfig(pg), "IDENTIFY_SYSTEM")
      expect(result.columns).toEqual(["systemid", "timeline", "xlogpos", "dbname"])
      const [row] = result.rows
      expect(row?.[1]).toBe("1")
      expect(Lsn.parse(row?.[2] ?? "")).toBeTypeOf("bigint")
      expect(row?.[3]).toBe("postgres")
      expect(connection.encrypted).toBe(false)
      expect(connection.serverMajorVersion).toBeGreaterThanOrEqual(10)
      expect(connection.backendPid).toBeGreaterThan(0)
      // plain SQL works on the same connection
      const sql = yield* connectAndRun(pgConfig(pg), "SELECT current_setting('password_encryption'), NULL::text, 'a''b'")
      expect(sql.result.rows).toEqual([["scram-sha-256", null, "a'b"]])
      // the server sees a walsender for a database
      const { result: kind } = yield* connectAndRun(pgConfig(pg), "SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid()")
      expect(kind.rows).toEqual([["walsender"]])
    }))

  it.live("authenticates with MD5, cleartext and trust", () =>
    Effect.gen(function*() {
      for (const [user, password] of [["md5_user", "md5-secret"], ["clear_user", "clear-secret"], ["trust_user", undefined]] as const) {
        const config = pgConfig(pg, { user, password: password === undefined ? undefined : Redacted.make(password) })
        const { result } = yield* connectAndRun(config, "SELECT current_user")
        expect(result.rows).toEqual([[user]])
      }
      // the hba method really was md5 for md5_user
      expect(yield* psql(pg, "SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'md5_user'")).toBe("t")
    }))

  it.live("fails with PgError Authentication on a wrong password, without the password in the message", () =>
    Effect.gen(function*() {
      for (const user of ["postgres", "md5_user", "clear_user"]) {
        const error = yield* Effect.flip(connectAndRun(pgConfig(pg, { user, password: Redacted.make("not-the-password") }), "SELECT 1"))
        expect(error).toMatchObject({ _tag: "PgError", reason: "Authentication" })
        expect(error.message).toContain(user)
        expect(error.message).not.toContain("not-the-password")
      }
      const missing = yield* Effect.flip(connectAndRun(pgConfig(pg, { password: undefined }), "SELECT 1"))
      expect(missing).toMatchObject({ _tag: "PgError", reason: "Authentication" })
      expect(missing.message).toContain("PGPASSWORD is not set")
    }))

  it.live("turns an ErrorResponse into a PgError with its SQLSTATE, and the connection stays usable", () =>
    Effect.scoped(Effect.gen(function*() {
      const connection = yield* PgReplicationConnection.connect(pgConfig(pg))
      const error = yield* Effect.flip(connection.query("SELECT * FROM no_such_table"))
      expect(error).toMatchObject({ _tag: "PgError", reason: "Statement" })
      expect(error.code).toBe("42P01")
      expect(error.message).toContain("no_such_table")
      expect(error.retriable).toBe(false)
      expect((yield* connection.query("SELECT 42")).rows).toEqual([["42"]])
      const unknownDb = yield* Effect.flip(connectAndRun(pgConfig(pg, { database: "nope" }), "SELECT 1"))
      expect(unknownDb).toMatchObject({ _tag: "PgError", reason: "Statement", code: "3D000" })
    })))

  // the PGSSLMODE matrix (right CA, wrong CA, wrong host name) is in test/postgres/tls.test.ts, for every connection kind
  it.live("fails with a Tls PgError naming an unreadable root certificate", () =>
    Effect.gen(function*() {
      const unreadable = yield* Effect.flip(
        connectAndRun(pgConfig(pg, { sslMode: "verify-ca", sslRootCert: "/nonexistent/root.crt" }), "SELECT 1")
      )
      expect(unreadable).toMatchObject({ _tag: "PgError", reason: "Tls" })
      expect(unreadable.message).toContain("/nonexistent/root.crt")
    }))

  it.live("closes the socket when the scope is interrupted", () =>
    Effect.gen(function*() {
      const appName = "cdc-interrupt-test"
      const fiber = yield* Effect.forkChild(Effect.scoped(
        Effect.andThen(PgReplicationConnection.connect(pgConfig(pg, { applicationName: appName })), Effect.never)
      ))
      const count = psql(pg, `SELECT count(*) FROM pg_stat_activity WHERE application_name = '${appName}'`)
      yield* eventually("the connection to appear", Effect.map(count, (n) => (n === "1" ? true : undefined)))
      yield* Fiber.interrupt(fiber)
      yield* eventually("the connection to go away", Effect.map(count, (n) => (n === "0" ? true : undefined)), { timeoutMs: 5000 })
    }))
})

describe("PgReplicationConnection (plain cluster, no TLS)", () => {
  let pg: PgCluster
  beforeAll(async () => {
    pg = await startPostgres()
  })
  afterAll(async () => {
    await pg?.stop()
  })

  it.live("prefer falls back to plain when the server says N; require and verify-full fail with a Tls PgError", () =>
    Effect.gen(function*() {
      const { connection } = yield* connectAndRun(pgConfig(pg, { sslMode: "prefer" }), "SELECT 1")
      expect(connection.encrypted).toBe(false)
      for (const sslMode of ["require", "verify-full"] as const) {
        const error = yield* Effect.flip(connectAndRun(pgConfig(pg, { sslMode }), "SELECT 1"))
        expect(error).toMatchObject({ _tag: "PgError", reason: "Tls" })
        expect(error.message).toContain("does not accept TLS")
      }
    }))

  it.live("fails with a retriable Connection PgError when nobody listens, and times out a silent server", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.flip(connectAndRun(pgConfig(pg, { port: 1 }), "SELECT 1"))
      expect(refused).toMatchObject({ _tag: "PgError", reason: "Connection" })
      expect(refused.retriable).toBe(true)

      const silent = Net.createServer(() => undefined)
      yield* Effect.addFinalizer(() => Effect.sync(() => silent.close()))
      yield* Effect.callback<void>((resume) => {
        silent.listen(0, "127.0.0.1", () => resume(Effect.void))
      })
      const address = silent.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const started = Date.now()
      const timedOut = yield* Effect.flip(connectAndRun(pgConfig(pg, { port, sslMode: "prefer", connectTimeoutMs: 300 }), "SELECT 1"))
      expect(timedOut).toMatchObject({ _tag: "PgError", reason: "Connection" })
      expect(timedOut.message).toContain("timed out")
      expect(Date.now() - started).toBeLessThan(5000)
    }))
})

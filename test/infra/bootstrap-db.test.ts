/**
 * infra/stacks/cdc_logical_replication_dev/bootstrap_db.sh: shellcheck-clean, and, run twice
 * against a throwaway PostgreSQL, it leaves the replication user able to open a replication
 * connection and create a logical slot, on both of its paths:
 *   - RDS path: a role named rds_replication exists, so the user is made a member of it;
 *   - fallback: no such role, so the user gets the REPLICATION attribute.
 */
import { execFile as execFileCb, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"

const execFile = promisify(execFileCb)

const TIMEOUT = 60_000

const script = Path.resolve(import.meta.dirname, "..", "..", "infra", "stacks", "cdc_logical_replication_dev", "bootstrap_db.sh")

describe("bootstrap_db.sh static checks", () => {
  it("passes shellcheck", () => {
    // shellcheck is a required tool here and in CI (apt-get install shellcheck): no skipping.
    const version = spawnSync("shellcheck", ["--version"], { encoding: "utf8" })
    expect(version.error, "shellcheck must be installed (apt-get install shellcheck)").toBeUndefined()
    expect(version.status).toBe(0)
    const result = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "--enable=all", script], { encoding: "utf8" })
    expect(result.stdout + result.stderr).toBe("")
    expect(result.status).toBe(0)
  }, TIMEOUT)

  it("is strict, executable, and never puts a secret on a command line", () => {
    const text = Fs.readFileSync(script, "utf8")
    expect(text.startsWith("#!/usr/bin/env bash\n")).toBe(true)
    expect(text).toMatch(/^set -euo pipefail$/m)
    expect(Fs.statSync(script).mode & 0o111).not.toBe(0)
    // secrets are only checked for presence and exported; psql reads them with \getenv, docker with -e NAME
    const secretUses = text.split("\n").filter((l) => /\$\{?(PGPASSWORD|REPLICATION_PASSWORD)\b/.test(l))
    expect(secretUses.every((l) => /^: "\$\{(PGPASSWORD|REPLICATION_PASSWORD):\?/.test(l)), secretUses.join("\n")).toBe(true)
    expect(text).toContain("\\getenv repl_password REPLICATION_PASSWORD")
    expect(text).toContain('PGSSLMODE="${PGSSLMODE:-require}"')
    // identifiers and literals only through psql variables
    expect(text).toContain(`CREATE ROLE :"repl_user" WITH LOGIN PASSWORD :'repl_password';`)
    expect(text).toContain(`ALTER ROLE :"repl_user" WITH LOGIN PASSWORD :'repl_password';`)
  }, TIMEOUT)
})

describe("bootstrap_db.sh against PostgreSQL", () => {
  let pg: PgCluster

  beforeAll(async () => {
    pg = await startPostgres()
  }, TIMEOUT)

  afterAll(async () => {
    await pg?.stop()
  }, TIMEOUT)

  /** Runs the script as Terraform would: everything in the environment, nothing in argv. */
  const bootstrap = async (env: {
    readonly database: string
    readonly masterUser: string
    readonly masterPassword: string
    readonly replicationUser: string
    readonly replicationPassword: string
  }): Promise<{ stdout: string; stderr: string }> =>
    execFile("bash", [script], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        PGHOST: pg.host,
        PGPORT: String(pg.port),
        PGDATABASE: env.database,
        PGUSER: env.masterUser,
        PGPASSWORD: env.masterPassword,
        PGSSLMODE: "disable", // the throwaway cluster has no TLS; RDS runs use the default, require
        REPLICATION_USERNAME: env.replicationUser,
        REPLICATION_PASSWORD: env.replicationPassword,
        BOOTSTRAP_PSQL: "native",
        BOOTSTRAP_CONNECT_ATTEMPTS: "3",
        BOOTSTRAP_CONNECT_DELAY_SECONDS: "1"
      }
    })

  /**
   * Opens a replication connection as the user and creates (and at once, being temporary, drops) a
   * logical slot with test_decoding. Returns psql's output, or throws with its error.
   */
  const createSlotAs = async (user: string, password: string, database: string): Promise<string> => {
    const slot = "bootstrap_check_" + Math.random().toString(36).slice(2, 10)
    const { stdout } = await execFile(
      "psql",
      ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", "replication=database", "-c", `CREATE_REPLICATION_SLOT ${slot} TEMPORARY LOGICAL test_decoding`],
      {
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          PGHOST: pg.host,
          PGPORT: String(pg.port),
          PGDATABASE: database,
          PGUSER: user,
          PGPASSWORD: password,
          PGSSLMODE: "disable"
        }
      }
    )
    expect(stdout).toContain(slot)
    expect(stdout).toContain("test_decoding")
    return stdout
  }

  const role = async (name: string) => {
    const row = await pg.psql(
      `SELECT rolcanlogin, rolreplication, rolsuper FROM pg_roles WHERE rolname = ${literal(name)}`
    )
    if (row === "") return undefined
    const [login, replication, superuser] = row.split("|")
    return { login: login === "t", replication: replication === "t", superuser: superuser === "t" }
  }

  const isMemberOf = async (member: string, group: string): Promise<boolean> =>
    (await pg.psql(
      `SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE r.rolname = ${literal(group)} AND u.rolname = ${literal(member)})`
    )) === "t"

  /** An explicit CONNECT grant to the user in the database's ACL (PUBLIC's is revoked in setup). */
  const hasExplicitConnect = async (user: string, database: string): Promise<boolean> =>
    (await pg.psql(
      `SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles g ON g.oid = a.grantee
        WHERE d.datname = ${literal(database)} AND g.rolname = ${literal(user)} AND a.privilege_type = 'CONNECT')`
    )) === "t"

  const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`
  const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`

  /** A database owned by `owner` that PUBLIC may not connect to, as on a hardened instance. */
  const createDatabase = async (name: string, owner: string) => {
    await pg.psql(`CREATE DATABASE ${ident(name)} OWNER ${ident(owner)}`)
    await pg.psql(`REVOKE CONNECT ON DATABASE ${ident(name)} FROM PUBLIC`)
  }

  // Both paths share one cluster; the fallback runs first, before any rds_replication role exists.

  it("fallback path (no rds_replication role): creates the user with REPLICATION; a second run is a no-op apart from the new password", async () => {
    const database = "cdc"
    const user = "cdc_replication"
    await createDatabase(database, pg.user)
    expect(await pg.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'rds_replication'")).toBe("0")
    expect(await role(user)).toBeUndefined()

    const first = await bootstrap({ database, masterUser: pg.user, masterPassword: pg.password, replicationUser: user, replicationPassword: "first-pass" })
    expect(first.stdout).toContain("creating user")
    expect(first.stdout).toContain("setting the REPLICATION attribute")
    expect(await role(user)).toEqual({ login: true, replication: true, superuser: false })
    expect(await hasExplicitConnect(user, database)).toBe(true)
    await createSlotAs(user, "first-pass", database)

    const second = await bootstrap({ database, masterUser: pg.user, masterPassword: pg.password, replicationUser: user, replicationPassword: "second-pass" })
    expect(second.stdout).toContain("user exists")
    expect(await role(user)).toEqual({ login: true, replication: true, superuser: false })
    expect(await hasExplicitConnect(user, database)).toBe(true)
    expect(await pg.psql(`SELECT count(*) FROM pg_roles WHERE rolname = ${literal(user)}`)).toBe("1")
    await createSlotAs(user, "second-pass", database)
    await expect(createSlotAs(user, "first-pass", database)).rejects.toThrow(/password authentication failed/)
  }, TIMEOUT)

  it("RDS path (rds_replication exists): grants membership, not the attribute; works as a non-superuser master, with awkward names", async () => {
    // Emulate RDS: a NOLOGIN role named rds_replication, and a master user that is not a superuser
    // but may create roles and owns the database (like rds_superuser's master user).
    const database = "cdc rds"
    const master = "cdc_admin"
    const masterPassword = "admin-pass"
    const user = `Cdc "Repl" user` // needs quoting as an identifier
    const password = `it's a "pass" with \\ and $HOME`
    await pg.psql("CREATE ROLE rds_replication NOLOGIN")
    await pg.psql(`CREATE ROLE ${master} LOGIN CREATEROLE PASSWORD ${literal(masterPassword)}`)
    await pg.psql(`GRANT rds_replication TO ${master} WITH ADMIN OPTION`)
    await createDatabase(database, master)

    for (const run of [1, 2]) {
      const { stdout } = await bootstrap({ database, masterUser: master, masterPassword, replicationUser: user, replicationPassword: password })
      expect(stdout).toContain(run === 1 ? "creating user" : "user exists")
      expect(stdout).toContain("granting rds_replication")
      expect(await isMemberOf(user, "rds_replication")).toBe(true)
      // the script took the RDS path: it did not set the attribute itself
      expect(await role(user)).toEqual({ login: true, replication: false, superuser: false })
      expect(await hasExplicitConnect(user, database)).toBe(true)
    }

    // On RDS, membership in rds_replication is what lets a user replicate. On vanilla PostgreSQL a
    // plain role of that name confers nothing (role attributes are not inherited), so the user is
    // still refused here...
    await expect(createSlotAs(user, password, database)).rejects.toThrow(/must be superuser or replication role/)
    // ...and to exercise the connection we grant what RDS would effectively give, then check that
    // the user, its password and its CONNECT grant work for a replication connection and a slot.
    await pg.psql(`ALTER ROLE ${ident(user)} REPLICATION`)
    await createSlotAs(user, password, database)
  }, TIMEOUT)

  it("refuses to run without a required variable, and never uses the master user as the replication user", async () => {
    await expect(
      bootstrap({ database: "cdc", masterUser: pg.user, masterPassword: pg.password, replicationUser: "", replicationPassword: "x" })
    ).rejects.toThrow(/REPLICATION_USERNAME must be set/)
    await expect(
      bootstrap({ database: "cdc", masterUser: pg.user, masterPassword: pg.password, replicationUser: pg.user.toUpperCase(), replicationPassword: "x" })
    ).rejects.toThrow(/must differ from the master user/)
    expect(await role(pg.user)).toMatchObject({ superuser: true })
  }, TIMEOUT)
})

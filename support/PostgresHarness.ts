/**
 * A throwaway PostgreSQL cluster for tests and the benchmark: initdb + pg_ctl from the installed
 * server binaries, on a free port, wal_level=logical, SCRAM passwords; run as the `postgres` OS user
 * when the process is root (PostgreSQL refuses to run as root). Torn down by `stop()`.
 */
import { execFile as execFileCb, execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { promisify } from "node:util"
import { Redacted } from "effect"
import type { PgConfig } from "../src/config/ServiceConfig.ts"
import { freePort } from "./Ports.ts"

const execFile = promisify(execFileCb)

/** Where Debian puts the server binaries; PG_BINDIR overrides. */
export const findBinDir = (): string => {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR
  const root = "/usr/lib/postgresql"
  const versions = Fs.existsSync(root)
    ? Fs.readdirSync(root).filter((v) => Fs.existsSync(Path.join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a))
    : []
  if (versions.length === 0) throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
  return Path.join(root, versions[0]!, "bin")
}

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** Runs a server binary, as the postgres user when we are root. */
const runAsOwner = async (bin: string, args: ReadonlyArray<string>): Promise<string> => {
  if (isRoot()) {
    const command = [bin, ...args].map(shellQuote).join(" ")
    const { stdout } = await execFile("su", ["postgres", "-s", "/bin/sh", "-c", command], { maxBuffer: 64 * 1024 * 1024 })
    return stdout
  }
  const { stdout } = await execFile(bin, [...args], { maxBuffer: 64 * 1024 * 1024 })
  return stdout
}

export interface StartOptions {
  /** Extra postgresql.conf settings. */
  readonly conf?: Readonly<Record<string, string | number>>
  /** Lines placed before initdb's pg_hba.conf entries. */
  readonly hba?: ReadonlyArray<string>
  /** Files to copy into the data directory before start (e.g. server.crt, server.key). */
  readonly files?: Readonly<Record<string, string>>
}

export interface PgCluster {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
  readonly dataDir: string
  readonly binDir: string
  /** libpq-style connection URL. */
  readonly url: string
  /** Environment variables (PG*) pointing at this cluster as the superuser. */
  readonly env: Readonly<Record<string, string>>
  /** Runs SQL through psql; returns the unaligned, tuples-only output. */
  readonly psql: (sql: string, options?: { readonly database?: string; readonly user?: string; readonly password?: string }) => Promise<string>
  readonly restart: () => Promise<void>
  readonly stopServer: (mode?: "fast" | "immediate") => Promise<void>
  readonly startServer: () => Promise<void>
  readonly stop: () => Promise<void>
}

export const startPostgres = async (options: StartOptions = {}): Promise<PgCluster> => {
  const binDir = findBinDir()
  const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-pg-"))
  const dataDir = Path.join(root, "data")
  const socketDir = Path.join(root, "sock")
  Fs.mkdirSync(socketDir)
  const password = "test-" + Math.random().toString(36).slice(2)
  const pwFile = Path.join(root, "pw")
  Fs.writeFileSync(pwFile, password + "\n")
  if (isRoot()) execFileSync("chown", ["-R", "postgres", root])
  Fs.chmodSync(root, 0o755)

  await runAsOwner(Path.join(binDir, "initdb"), [
    "-D", dataDir, "-U", "postgres", "--auth=scram-sha-256", `--pwfile=${pwFile}`, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"
  ])
  const port = await freePort()
  const conf: Record<string, string | number> = {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${socketDir}'`,
    wal_level: "logical",
    max_replication_slots: 20,
    max_wal_senders: 20,
    max_connections: 100,
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    shared_buffers: "'128MB'",
    log_min_messages: "warning",
    ...options.conf
  }
  Fs.appendFileSync(
    Path.join(dataDir, "postgresql.conf"),
    "\n" + Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n"
  )
  if (options.hba && options.hba.length > 0) {
    const hbaPath = Path.join(dataDir, "pg_hba.conf")
    Fs.writeFileSync(hbaPath, options.hba.join("\n") + "\n" + Fs.readFileSync(hbaPath, "utf8"))
  }
  for (const [name, content] of Object.entries(options.files ?? {})) {
    const target = Path.join(dataDir, name)
    Fs.writeFileSync(target, content, { mode: 0o600 })
    if (isRoot()) execFileSync("chown", ["postgres", target])
  }
  const logFile = Path.join(root, "server.log")
  if (isRoot()) {
    Fs.writeFileSync(logFile, "")
    execFileSync("chown", ["postgres", logFile])
  }
  const pgCtl = Path.join(binDir, "pg_ctl")
  const startServer = async () => {
    await runAsOwner(pgCtl, ["-D", dataDir, "-l", logFile, "-w", "-t", "60", "start"])
  }
  const stopServer = async (mode: "fast" | "immediate" = "fast") => {
    await runAsOwner(pgCtl, ["-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"])
  }
  await startServer()

  const host = "127.0.0.1"
  const user = "postgres"
  const database = "postgres"
  const env = { PGHOST: host, PGPORT: String(port), PGUSER: user, PGPASSWORD: password, PGDATABASE: database, PGSSLMODE: "disable" }
  const psql: PgCluster["psql"] = async (sql, o = {}) => {
    const { stdout } = await execFile("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", o.database ?? database, "-c", sql], {
      env: { ...process.env, ...env, PGUSER: o.user ?? user, PGPASSWORD: o.password ?? password },
      maxBuffer: 256 * 1024 * 1024
    })
    return stdout.trimEnd()
  }
  let stopped = false
  return {
    host, port, user, password, database, dataDir, binDir, env, psql,
    url: `postgres://${user}:${encodeURIComponent(password)}@${host}:${port}/${database}`,
    startServer,
    stopServer,
    restart: async () => {
      await stopServer("fast")
      await startServer()
    },
    stop: async () => {
      if (stopped) return
      stopped = true
      await stopServer("immediate").catch(() => undefined)
      Fs.rmSync(root, { recursive: true, force: true })
    }
  }
}

/** The service's PostgreSQL configuration pointing at a cluster as its superuser, without TLS. */
export const pgConfigOf = (cluster: PgCluster, overrides: Partial<PgConfig> = {}): PgConfig => ({
  host: cluster.host,
  port: cluster.port,
  user: cluster.user,
  password: Redacted.make(cluster.password),
  database: cluster.database,
  sslMode: "disable",
  sslRootCert: undefined,
  connectTimeoutMs: 10_000,
  applicationName: "cdc-test",
  ...overrides
})

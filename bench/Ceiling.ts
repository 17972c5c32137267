/**
 * The ceiling: how fast PostgreSQL itself streams a slot on this machine, and at what CPU cost to
 * the client. Times `pg_recvlogical` draining a slot up to a given end LSN with the plugin options
 * the service uses (wal2json, or pgoutput with its publication), and takes its user + system CPU
 * time; a wal2json output is then read to count the changes (I/U/D), their bytes, and the end LSN of
 * the last transaction. And the latency floor: pg_recvlogical streaming a slot under a live load,
 * each change's arrival timed against its commit timestamp.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import type { PgCluster } from "../support/PostgresHarness.ts"
import { reapedChildrenCpuSeconds } from "../support/ProcessStats.ts"
import { parsePgTimestamp } from "./KinesisLimits.ts"

export type Plugin = "wal2json" | "pgoutput"

/** The options the service starts wal2json with (src/replication/Wal2JsonDecoder.ts). */
export const wal2jsonOptions = [
  "format-version=2", "include-lsn=1", "include-pk=1", "include-timestamp=1", "include-transaction=1", "include-xids=1"
]

/** The options the service starts pgoutput with (src/replication/PgOutputDecoder.ts). */
export const pgoutputOptions = (publication: string): ReadonlyArray<string> =>
  ["proto_version=1", `publication_names=${publication}`, "messages=true"]

export interface SlotOutput {
  readonly changes: number
  readonly byAction: Readonly<Record<string, number>>
  /** Bytes of the change bodies (I/U/D messages), as the service would publish them. */
  readonly bodyBytes: number
  readonly transactions: number
  /** The end LSN ("nextlsn") of the last commit in the output. */
  readonly lastCommitEndLsn: string | undefined
}

/** Counts a pg_recvlogical output file (one wal2json v2 message per line). */
export const readSlotOutput = async (file: string): Promise<SlotOutput> => {
  const byAction: Record<string, number> = {}
  let changes = 0
  let bodyBytes = 0
  let transactions = 0
  let lastCommitEndLsn: string | undefined
  const lines = Readline.createInterface({ input: Fs.createReadStream(file), crlfDelay: Infinity })
  for await (const line of lines) {
    const action = /^\{"action":"(.)"/.exec(line)?.[1]
    if (action === undefined) continue
    byAction[action] = (byAction[action] ?? 0) + 1
    if (action === "I" || action === "U" || action === "D") {
      changes++
      bodyBytes += Buffer.byteLength(line)
    } else if (action === "C") {
      transactions++
      lastCommitEndLsn = /"nextlsn":"([0-9A-F]+\/[0-9A-F]+)"/.exec(line)?.[1] ?? lastCommitEndLsn
    }
  }
  return { changes, byAction, bodyBytes, transactions, lastCommitEndLsn }
}

export interface RecvlogicalRun {
  readonly seconds: number
  /** pg_recvlogical's user + system CPU time. */
  readonly cpuSeconds: number
  /** Its output file (one message per line for wal2json); the caller removes it. */
  readonly file: string
}

/**
 * Drains `slot` with pg_recvlogical up to `endLsn` (there must be WAL after it) into a file, and
 * times it. Its CPU time is read as this process's reaped children's: nothing else may exit meanwhile.
 */
export const recvlogical = async (
  pg: PgCluster,
  options: { readonly slot: string; readonly plugin: Plugin; readonly publication: string; readonly endLsn: string; readonly workDir: string }
): Promise<RecvlogicalRun> => {
  const file = Path.join(options.workDir, `${options.slot}.out`)
  const pluginOptions = options.plugin === "wal2json" ? wal2jsonOptions : pgoutputOptions(options.publication)
  const args = [
    "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database,
    "--slot", options.slot, "--start", "--endpos", options.endLsn, "--no-loop", "-F", "0", "-f", file,
    ...pluginOptions.flatMap((o) => ["-o", o])
  ]
  const cpuBefore = reapedChildrenCpuSeconds()
  const started = performance.now()
  let stderr = ""
  const child = spawn(Path.join(pg.binDir, "pg_recvlogical"), args, {
    env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" },
    stdio: ["ignore", "ignore", "pipe"]
  })
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
  const timer = setTimeout(() => child.kill("SIGKILL"), 600_000)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject)
    child.once("exit", (exitCode) => resolve(exitCode))
  })
  clearTimeout(timer)
  const seconds = (performance.now() - started) / 1000
  const cpuSeconds = reapedChildrenCpuSeconds() - cpuBefore
  if (code !== 0) throw new Error(`pg_recvlogical (slot ${options.slot}) exited with ${code}: ${stderr.trim()}`)
  return { seconds, cpuSeconds, file }
}

/** A running pg_recvlogical whose wal2json output this process reads as it arrives. */
export interface RecvlogicalStream {
  /** Receipt time (epoch ms, sub-millisecond) minus commit timestamp, one per change (I/U/D) received. */
  readonly samples: () => ReadonlyArray<number>
  readonly stop: () => Promise<void>
}

/**
 * The latency floor: pg_recvlogical streaming `slot` with the service's wal2json options to this
 * process's pipe, each change timed as its line arrives against its commit timestamp, as the bench
 * endpoint times the service's records. No client can receive a change sooner on this machine.
 */
export const recvlogicalStream = (pg: PgCluster, options: { readonly slot: string }): RecvlogicalStream => {
  const args = [
    "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database,
    "--slot", options.slot, "--start", "-F", "0", "-f", "-",
    ...wal2jsonOptions.flatMap((o) => ["-o", o])
  ]
  const child = spawn(Path.join(pg.binDir, "pg_recvlogical"), args, {
    env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const samples: Array<number> = []
  let partial = ""
  child.stdout.setEncoding("latin1").on("data", (chunk: string) => {
    const receivedMs = performance.timeOrigin + performance.now()
    const lines = (partial + chunk).split("\n")
    partial = lines.pop()!
    for (const line of lines) {
      if (!/^\{"action":"[IUD]"/.test(line)) continue
      const text = /"timestamp":"([^"]{1,40})"/.exec(line)?.[1]
      const commitMs = text === undefined ? undefined : parsePgTimestamp(text)
      if (commitMs !== undefined) samples.push(receivedMs - commitMs)
    }
  })
  return {
    samples: () => samples,
    stop: async () => {
      child.kill("SIGINT")
      const code = await exited
      // SIGINT is how pg_recvlogical is told to stop; anything else is a failure
      if (code !== 0 && code !== null && code !== 130) throw new Error(`pg_recvlogical (slot ${options.slot}) exited with ${code}: ${stderr.trim()}`)
    }
  }
}

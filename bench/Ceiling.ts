/**
 * The ceiling: how fast PostgreSQL itself streams a slot on this machine. Times `pg_recvlogical`
 * draining a slot with the wal2json options the service uses, up to a given end LSN, then reads its
 * output to count the changes (I/U/D), their bytes, and the end LSN of the last transaction.
 */
import { execFile as execFileCb } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { promisify } from "node:util"
import type { PgCluster } from "../test/support/PostgresHarness.ts"

const execFile = promisify(execFileCb)

/** The options the service starts wal2json with (src/replication/Wal2JsonDecoder.ts). */
export const wal2jsonOptions = [
  "format-version=2", "include-lsn=1", "include-pk=1", "include-timestamp=1", "include-transaction=1", "include-xids=1"
]

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

export interface CeilingResult extends SlotOutput {
  readonly seconds: number
}

/** Drains `slot` with pg_recvlogical up to `endLsn` (there must be WAL after it) and times it. */
export const measureCeiling = async (pg: PgCluster, slot: string, endLsn: string, workDir: string): Promise<CeilingResult> => {
  const file = Path.join(workDir, `${slot}.jsonl`)
  const args = [
    "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database,
    "--slot", slot, "--start", "--endpos", endLsn, "--no-loop", "-F", "0", "-f", file,
    ...wal2jsonOptions.flatMap((o) => ["-o", o])
  ]
  const started = performance.now()
  await execFile(Path.join(pg.binDir, "pg_recvlogical"), args, {
    env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" },
    timeout: 600_000
  })
  const seconds = (performance.now() - started) / 1000
  const output = await readSlotOutput(file)
  Fs.rmSync(file, { force: true })
  return { ...output, seconds }
}

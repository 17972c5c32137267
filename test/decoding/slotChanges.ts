/**
 * Reads a logical slot through the SQL functions with the very options a decoder passes to
 * START_REPLICATION; the `lsn` column equals the XLogData start the stream would carry.
 */
import * as Lsn from "../../src/domain/Lsn.ts"
import type { PgCluster } from "../../support/PostgresHarness.ts"

export interface SlotRow {
  readonly lsn: Lsn.Lsn
  readonly xid: number
  /** Text for a text plugin; hex for a binary one. */
  readonly data: string
}

const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`

/** `("a" 'x', "b" 'y')` → `'a', 'x', 'b', 'y'` (the variadic options of pg_logical_slot_*_changes). */
export const optionArguments = (clause: string): string => {
  const pairs = [...clause.matchAll(/"((?:[^"]|"")*)" '((?:[^']|'')*)'/g)]
  if (pairs.length === 0) throw new Error(`no options in ${clause}`)
  return pairs.map((m) => `${literal(m[1]!.replaceAll(`""`, `"`))}, ${literal(m[2]!.replaceAll("''", "'"))}`).join(", ")
}

/** Waits until everything written is flushed: logical decoding only reads flushed WAL (synchronous_commit is off). */
export const awaitWalFlushed = async (pg: PgCluster, timeoutMs = 10_000): Promise<void> => {
  const target = await pg.psql("SELECT pg_current_wal_insert_lsn()")
  const deadline = Date.now() + timeoutMs
  while ((await pg.psql(`SELECT pg_current_wal_flush_lsn() >= '${target}'::pg_lsn`)) !== "t") {
    if (Date.now() > deadline) throw new Error(`WAL not flushed up to ${target} within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export const readChanges = async (
  pg: PgCluster,
  slot: string,
  startOptions: string,
  options: { readonly binary?: boolean; readonly peek?: boolean; readonly timeZone?: string } = {}
): Promise<ReadonlyArray<SlotRow>> => {
  await awaitWalFlushed(pg)
  const fn = `pg_logical_slot_${options.peek ? "peek" : "get"}_${options.binary ? "binary_" : ""}changes`
  const data = options.binary ? "encode(data, 'hex')" : "data"
  const setZone = options.timeZone ? `SET TimeZone = ${literal(options.timeZone)}; ` : ""
  const out = await pg.psql(`${setZone}SELECT lsn, xid, ${data} FROM ${fn}(${literal(slot)}, NULL, NULL, ${optionArguments(startOptions)})`)
  if (out === "") return []
  return out.split("\n").map((line) => {
    const first = line.indexOf("|")
    const second = line.indexOf("|", first + 1)
    const lsn = Lsn.parse(line.slice(0, first))
    if (lsn === undefined) throw new Error(`bad row ${line.slice(0, 100)}`)
    return { lsn, xid: Number(line.slice(first + 1, second)), data: line.slice(second + 1) }
  })
}

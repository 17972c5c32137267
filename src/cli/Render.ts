/** Human-readable text for the operator commands' results. */
import type { Backend, PeekedChange, SlotStatus } from "./SlotQueries.ts"

const orDash = (v: string | number | null): string => v === null || v === "" ? "-" : String(v)

const size = (pretty: string | null, bytes: number | null): string =>
  pretty === null || bytes === null ? "-" : `${pretty} (${bytes.toLocaleString("en-US")} bytes)`

const backend = (b: Backend): string =>
  [
    `pid ${b.pid}`,
    `user ${orDash(b.user)}`,
    `application ${orDash(b.applicationName)}`,
    `client ${b.clientAddr ?? "local socket"}`,
    `state ${orDash(b.replicationState ?? b.state)}`,
    ...(b.backendStart === null ? [] : [`since ${b.backendStart}`])
  ].join(", ")

const table = (rows: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `  ${(k + ":").padEnd(width + 1)} ${v}`)
}

export const status = (s: SlotStatus): string =>
  [
    `Replication slot "${s.slot.slot}"`,
    ...table([
      ["plugin", `${s.slot.plugin} (${s.slot.slotType}${s.slot.temporary ? ", temporary" : ""})`],
      ["database", orDash(s.slot.database)],
      ["active", s.slot.active ? `yes (pid ${orDash(s.slot.activePid)})` : "no"],
      ["wal status", orDash(s.slot.walStatus)],
      ["restart LSN", orDash(s.slot.restartLsn)],
      ["confirmed flush LSN", orDash(s.slot.confirmedFlushLsn)],
      ["current WAL LSN", s.slot.currentLsn],
      ["WAL retained", size(s.slot.retainedPretty, s.slot.retainedBytes)],
      ["not yet confirmed", size(s.slot.unflushedPretty, s.slot.unflushedBytes)]
    ]),
    "Consumer",
    `  ${s.consumer === null ? "none" : backend(s.consumer)}`,
    `Leader (advisory lock ${s.leader.lockKey})`,
    `  ${s.leader.holder === null ? "none" : backend(s.leader.holder)}`,
    "Tables without a row key (changes not kept in per-row order; see README)",
    ...(s.tablesWithoutRowKey.length === 0
      ? ["  none"]
      : s.tablesWithoutRowKey.map((entry) => `  ${entry.table}: ${entry.reason}`))
  ].join("\n")

export const peek = (slot: string, plugin: string, changes: ReadonlyArray<PeekedChange>): string =>
  [
    `Next ${changes.length} message(s) of slot "${slot}" (${plugin}; peeked, not consumed)`,
    ...changes.map((c) => `${c.lsn}  xid ${c.xid}  ${c.data}`)
  ].join("\n")

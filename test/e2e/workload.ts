/**
 * Helpers for the end-to-end streaming tests: replication slots (create, position, twin read-back
 * with the decoder's own options), the service's environment, and the checks run on what the
 * stream holds (per-key order, the README's consumer dedupe rule).
 */
import * as Lsn from "../../src/domain/Lsn.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import * as Consumer from "../contract/Consumer.ts"
import { readChanges } from "../decoding/slotChanges.ts"
import type { Kinesalite, StoredRecord } from "../../support/KinesaliteHarness.ts"
import type { PgCluster } from "../../support/PostgresHarness.ts"
import { serviceEnvFor } from "../../support/ServiceProcess.ts"

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** The options the service's wal2json decoder starts replication with (no table filters). */
export const wal2jsonOptions = Wal2JsonDecoder.startOptions({ addTables: [], filterTables: [] })

/** Creates wal2json slots one right after the other (no writes in between: they see the same changes). */
export const createSlots = async (pg: PgCluster, ...slots: ReadonlyArray<string>): Promise<void> => {
  await pg.psql(slots.map((slot) => `SELECT pg_create_logical_replication_slot('${slot}', 'wal2json');`).join(" "))
}

export const dropSlot = (pg: PgCluster, slot: string): Promise<string> =>
  pg.psql(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${slot}'`)

/** The slot's confirmed_flush_lsn. */
export const confirmedFlush = async (pg: PgCluster, slot: string): Promise<Lsn.Lsn> => {
  const text = await pg.psql(`SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '${slot}'`)
  const lsn = Lsn.parse(text)
  if (lsn === undefined) throw new Error(`slot ${slot}: no confirmed_flush_lsn (${JSON.stringify(text)})`)
  return lsn
}

/** Whether a slot is held by a walsender. */
export const slotActive = async (pg: PgCluster, slot: string): Promise<boolean> =>
  (await pg.psql(`SELECT active FROM pg_replication_slots WHERE slot_name = '${slot}'`)) === "t"

/** One change as wal2json writes it: its `lsn` field and the body text. */
export interface Change {
  readonly lsn: Lsn.Lsn
  readonly action: string
  readonly body: string
}

const lsnField = (body: string): Lsn.Lsn => {
  const parsed = JSON.parse(body) as { readonly lsn?: unknown }
  const lsn = typeof parsed.lsn === "string" ? Lsn.parse(parsed.lsn) : undefined
  if (lsn === undefined) throw new Error(`no lsn field in ${body.slice(0, 200)}`)
  return lsn
}

/**
 * Every change a slot holds, consumed with pg_logical_slot_get_changes (or peeked) and the
 * decoder's options, in WAL order; transaction boundaries (B/C) left out, as the service does.
 */
export const slotChanges = async (
  pg: PgCluster,
  slot: string,
  options: { readonly peek?: boolean } = {}
): Promise<ReadonlyArray<Change>> => {
  const rows = await readChanges(pg, slot, wal2jsonOptions, options)
  return rows.flatMap((row) => {
    const action = (JSON.parse(row.data) as { readonly action: string }).action
    return action === "B" || action === "C" ? [] : [{ lsn: lsnField(row.data), action, body: row.data }]
  })
}

/**
 * A stream record: `body` is the server's JSON (the record's data without the position the service
 * puts at its start), `lsn` its `lsn` field, `commitLsn`/`commitIdx` the record's position.
 */
export interface StreamedChange {
  readonly shardId: string
  readonly partitionKey: string
  readonly body: string
  readonly lsn: Lsn.Lsn
  readonly commitLsn: Lsn.Lsn
  readonly commitIdx: number
  /** The record's data as sent. */
  readonly data: string
}

const positionPrefix = /^\{"commit_lsn":"([0-9A-F]+\/[0-9A-F]+)","commit_idx":(0|[1-9][0-9]*),/

export const streamedChanges = async (kinesis: Kinesalite, stream: string): Promise<ReadonlyArray<StreamedChange>> =>
  (await kinesis.readAll(stream)).map((record: StoredRecord) => {
    const data = utf8.decode(record.data)
    const m = positionPrefix.exec(data)
    if (m === null) throw new Error(`record without a position: ${data.slice(0, 200)}`)
    const body = "{" + data.slice(m[0].length)
    return {
      shardId: record.shardId, partitionKey: record.partitionKey, body, lsn: lsnField(body),
      commitLsn: Lsn.parse(m[1]!)!, commitIdx: Number(m[2]), data
    }
  })

/** Whether `a`'s position is above `b`'s. */
const above = (a: StreamedChange, b: StreamedChange): boolean =>
  a.commitLsn > b.commitLsn || (a.commitLsn === b.commitLsn && a.commitIdx > b.commitIdx)

const positionText = (r: StreamedChange): string => `${Lsn.format(r.commitLsn)}:${r.commitIdx}`

/** Groups by partition key, keeping stream order (readAll returns each shard in sequence order). */
export const byKey = <A extends { readonly partitionKey: string }>(records: ReadonlyArray<A>): Map<string, Array<A>> => {
  const groups = new Map<string, Array<A>>()
  for (const record of records) {
    const group = groups.get(record.partitionKey)
    if (group === undefined) groups.set(record.partitionKey, [record])
    else group.push(record)
  }
  return groups
}

/**
 * Per-key order violations: keys on more than one shard, and records whose position is not
 * strictly above the previous record of the same key. Empty when the stream keeps per-key order.
 */
export const orderViolations = (records: ReadonlyArray<StreamedChange>): Array<string> => {
  const problems: Array<string> = []
  for (const [key, group] of byKey(records)) {
    const shards = new Set(group.map((r) => r.shardId))
    if (shards.size > 1) problems.push(`${key} on shards ${[...shards].join(", ")}`)
    for (let i = 1; i < group.length; i++) {
      if (!above(group[i]!, group[i - 1]!)) problems.push(`${key}: ${positionText(group[i]!)} after ${positionText(group[i - 1]!)}`)
    }
  }
  return problems
}

/**
 * The consumer of the README: per key (read shard by shard, in order), skip a record whose position
 * is not above the highest applied for that key. Returns what it keeps (server bodies), per key, in order.
 */
export const dedupeConsumer = (records: ReadonlyArray<StreamedChange>): Map<string, Array<string>> => {
  const applied: Consumer.Applied = new Map()
  const kept = new Map<string, Array<string>>()
  for (const record of records) {
    if (!Consumer.shouldApply(applied, record.partitionKey, JSON.parse(record.data) as Consumer.RecordBody)) continue
    const list = kept.get(record.partitionKey)
    if (list === undefined) kept.set(record.partitionKey, [record.body])
    else list.push(record.body)
  }
  return kept
}

/** Sorted copy, for comparing multisets. */
export const sorted = (values: ReadonlyArray<string>): Array<string> => [...values].sort()

/** The environment of a service process streaming from `pg` into `kinesis`. */
export const serviceEnv = (
  pg: PgCluster,
  kinesis: Kinesalite,
  options: { readonly stream: string; readonly slot: string; readonly extra?: Readonly<Record<string, string>> }
): Record<string, string> => ({ ...serviceEnvFor(pg, kinesis, options), ...options.extra })

/**
 * What the operator commands read from PostgreSQL: the slot and the WAL it holds back, who consumes
 * it, who holds the leader lock, and the slot's next changes without consuming them (read with the
 * plugin options the service streams with, from StartOptions).
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { ReplicationConfig } from "../config/ServiceConfig.ts"
import * as LockKey from "../leader/LockKey.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import * as KeyCatalog from "../replication/KeyCatalog.ts"
import * as Publication from "../replication/Publication.ts"
import * as Wal2JsonDecoder from "../replication/Wal2JsonDecoder.ts"
import * as StartOptions from "../replication/StartOptions.ts"
import { CliFailure } from "./CliFailure.ts"
import * as PgOutputPeek from "./PgOutputPeek.ts"

export interface SlotInfo {
  readonly slot: string
  readonly plugin: string
  readonly slotType: string
  readonly database: string | null
  readonly active: boolean
  readonly activePid: number | null
  readonly temporary: boolean
  readonly walStatus: string | null
  readonly restartLsn: string | null
  readonly confirmedFlushLsn: string | null
  readonly currentLsn: string
  /** current WAL position minus restart_lsn: the WAL the slot keeps on disk. */
  readonly retainedBytes: number | null
  readonly retainedPretty: string | null
  /** current WAL position minus confirmed_flush_lsn: what the consumer has not confirmed yet. */
  readonly unflushedBytes: number | null
  readonly unflushedPretty: string | null
}

export interface Backend {
  readonly pid: number
  readonly user: string | null
  readonly applicationName: string | null
  readonly clientAddr: string | null
  readonly state: string | null
  readonly backendStart: string | null
  /** The walsender's state (streaming, catchup, …) when the backend is one. */
  readonly replicationState: string | null
}

export interface SlotStatus {
  readonly slot: SlotInfo
  readonly consumer: Backend | null
  readonly leader: { readonly lockKey: string; readonly holder: Backend | null }
  /** Streamed tables whose rows cannot be followed by partition key, and why (the service's start warning). */
  readonly tablesWithoutRowKey: ReadonlyArray<KeyCatalog.Unidentified>
}

export interface PeekedChange {
  readonly lsn: string
  readonly xid: string
  /** The change as wal2json format-version 2 JSON (pgoutput messages decoded into that shape). */
  readonly data: string
}

const missingSlot = (slot: string) =>
  Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => sql<{ readonly db: string }>`SELECT current_database() AS db`).pipe(
    Effect.flatMap((rows) =>
      Effect.fail(
        new CliFailure({
          message: `replication slot "${slot}" does not exist in database "${rows[0]?.db ?? "?"}" ` +
            `(check REPLICATION_SLOT and PGDATABASE; the service creates it when REPLICATION_SLOT_CREATE=true)`
        })
      )
    )
  )

const toNumber = (v: string | null): number | null => v === null ? null : Number(v)

const backendSql = `a.pid, a.usename AS user, a.application_name, host(a.client_addr) AS client_addr, a.state,
  a.backend_start::text AS backend_start, r.state AS replication_state`

interface BackendRow {
  readonly pid: number
  readonly user: string | null
  readonly application_name: string | null
  readonly client_addr: string | null
  readonly state: string | null
  readonly backend_start: string | null
  readonly replication_state: string | null
}

const toBackend = (row: BackendRow | undefined): Backend | null =>
  row === undefined ? null : {
    pid: Number(row.pid),
    user: row.user,
    applicationName: row.application_name,
    clientAddr: row.client_addr,
    state: row.state,
    backendStart: row.backend_start,
    replicationState: row.replication_state
  }

/** The slot, its consumer, the current leader and the streamed tables without a row key. */
export const slotStatus = (
  replication: Pick<ReplicationConfig, "slot" | "publication" | "wal2jsonAddTables" | "wal2jsonFilterTables">,
  lockKey: bigint
): Effect.Effect<SlotStatus, CliFailure | SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const slot = replication.slot
    const rows = yield* sql<{
      readonly slot_name: string
      readonly plugin: string
      readonly slot_type: string
      readonly database: string | null
      readonly active: boolean
      readonly active_pid: number | null
      readonly temporary: boolean
      readonly wal_status: string | null
      readonly restart_lsn: string | null
      readonly confirmed_flush_lsn: string | null
      readonly current_lsn: string
      readonly retained_bytes: string | null
      readonly retained_pretty: string | null
      readonly unflushed_bytes: string | null
      readonly unflushed_pretty: string | null
    }>`
      SELECT slot_name, plugin, slot_type, database, active, active_pid, temporary, wal_status,
        restart_lsn::text AS restart_lsn, confirmed_flush_lsn::text AS confirmed_flush_lsn,
        pg_current_wal_lsn()::text AS current_lsn,
        pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained_bytes,
        pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained_pretty,
        pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS unflushed_bytes,
        pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) AS unflushed_pretty
      FROM pg_replication_slots WHERE slot_name = ${slot}`
    const row = rows[0]
    if (row === undefined) return yield* missingSlot(slot)

    const consumerRows = row.active_pid === null ? [] : yield* sql<BackendRow>`
      SELECT ${sql.literal(backendSql)}
      FROM pg_stat_activity a LEFT JOIN pg_stat_replication r ON r.pid = a.pid
      WHERE a.pid = ${row.active_pid}`

    const tag = LockKey.toLockTag(lockKey)
    const leaderRows = yield* sql<BackendRow>`
      SELECT ${sql.literal(backendSql)}
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid LEFT JOIN pg_stat_replication r ON r.pid = a.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.classid = ${String(tag.classid)}::bigint::oid AND l.objid = ${String(tag.objid)}::bigint::oid
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

    return {
      slot: {
        slot: row.slot_name,
        plugin: row.plugin,
        slotType: row.slot_type,
        database: row.database,
        active: row.active,
        activePid: row.active_pid === null ? null : Number(row.active_pid),
        temporary: row.temporary,
        walStatus: row.wal_status,
        restartLsn: row.restart_lsn,
        confirmedFlushLsn: row.confirmed_flush_lsn,
        currentLsn: row.current_lsn,
        retainedBytes: toNumber(row.retained_bytes),
        retainedPretty: row.retained_pretty,
        unflushedBytes: toNumber(row.unflushed_bytes),
        unflushedPretty: row.unflushed_pretty
      },
      consumer: toBackend(consumerRows[0]),
      leader: { lockKey: lockKey.toString(), holder: toBackend(leaderRows[0]) },
      tablesWithoutRowKey: yield* tablesWithoutRowKey(sql, row.plugin, replication)
    }
  })

/** The tables the slot's plugin streams whose rows cannot be followed by key, as the service warns at start. */
const tablesWithoutRowKey = (
  sql: SqlClient.SqlClient,
  plugin: string,
  replication: Pick<ReplicationConfig, "publication" | "wal2jsonAddTables" | "wal2jsonFilterTables">
) =>
  Effect.gen(function*() {
    const keys = yield* rowKeys(sql)
    const covered = plugin === "pgoutput"
      ? yield* Publication.tables(textQuery(sql), replication.publication).pipe(
        Effect.mapError((error) => new CliFailure({ message: `cannot read the publication's tables: ${error.message}` }))
      )
      : Wal2JsonDecoder.covers({ addTables: replication.wal2jsonAddTables, filterTables: replication.wal2jsonFilterTables })
    return KeyCatalog.unidentified(keys, covered)
  })

/** Runs one statement and returns its rows as text, as the replication connection's query does. */
const textQuery = (sql: SqlClient.SqlClient): KeyCatalog.Query => (text) =>
  sql.unsafe(text).values.pipe(
    Effect.map((rows) => rows.map((row) => row.map((value) => (value === null ? null : String(value))))),
    Effect.mapError(ErrorPolicy.fromSqlError)
  )

/** The tables' row keys, read as the service reads them. */
const rowKeys = (sql: SqlClient.SqlClient) =>
  KeyCatalog.load(textQuery(sql)).pipe(
    Effect.mapError((error) => new CliFailure({ message: `cannot read the tables' keys: ${error.message}` }))
  )

/**
 * The next `count` changes of a pgoutput slot, decoded. PostgreSQL counts relation messages too
 * and stops only at a transaction's end, so ask for `count` rows, then twice as many, … until
 * enough changes are decoded or the slot has no more.
 */
const peekPgOutput = (
  sql: SqlClient.SqlClient,
  replication: Pick<ReplicationConfig, "slot" | "publication">,
  count: number
): Effect.Effect<ReadonlyArray<PeekedChange>, CliFailure | SqlError> =>
  Effect.gen(function*() {
    const keys = yield* rowKeys(sql)
    for (let upto = count;; upto *= 2) {
      const messages = yield* sql.unsafe<PgOutputPeek.PeekedMessage>(
        `SELECT lsn::text AS lsn, xid::text AS xid, encode(data, 'hex') AS data
         FROM pg_logical_slot_peek_binary_changes($1, NULL, $2::int, ${StartOptions.sqlArguments(StartOptions.pgoutput(replication))})`,
        [replication.slot, upto]
      )
      const decoded = PgOutputPeek.decode(messages, { publication: replication.publication, keys })
      if (Result.isFailure(decoded)) return yield* new CliFailure({ message: decoded.failure.message })
      if (decoded.success.length >= count || messages.length < upto) return decoded.success.slice(0, count)
    }
  })

/**
 * The slot's next `count` changes (begin/commit included), read with the peek functions so the
 * slot does not move; pgoutput messages are decoded into wal2json's JSON. Fails when the slot is
 * missing or in use by a walsender.
 */
export const peekChanges = (
  replication: Pick<ReplicationConfig, "slot" | "publication" | "wal2jsonAddTables" | "wal2jsonFilterTables">,
  count: number
): Effect.Effect<{ readonly plugin: string; readonly changes: ReadonlyArray<PeekedChange> }, CliFailure | SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const slots = yield* sql<{ readonly plugin: string; readonly active_pid: number | null }>`
      SELECT plugin, active_pid FROM pg_replication_slots WHERE slot_name = ${replication.slot}`
    const slot = slots[0]
    if (slot === undefined) return yield* missingSlot(replication.slot)
    if (slot.active_pid !== null) {
      return yield* new CliFailure({
        message: `replication slot "${replication.slot}" is in use by pid ${slot.active_pid}; PostgreSQL cannot peek a slot while it streams`
      })
    }
    const changes = slot.plugin === "pgoutput"
      ? yield* peekPgOutput(sql, replication, count)
      : yield* sql.unsafe<PeekedChange>(
        `SELECT lsn::text AS lsn, xid::text AS xid, data
         FROM pg_logical_slot_peek_changes($1, NULL, $2::int, ${StartOptions.sqlArguments(StartOptions.forConfig({ ...replication, plugin: "wal2json" }))})
         LIMIT $2::int`,
        [replication.slot, count]
      )
    return { plugin: slot.plugin, changes }
  })

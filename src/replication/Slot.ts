/**
 * The logical replication slot: make sure it exists with the configured output plugin, is not in
 * use by another connection and was not invalidated, before streaming from it. Works on the
 * replication connection itself (replication=database accepts plain SQL in simple-query mode).
 */
import * as Effect from "effect/Effect"
import * as Lsn from "../domain/Lsn.ts"
import { type PgError, SlotError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import * as Quote from "../postgres/Quote.ts"
import type { PgReplicationConnection } from "./PgReplicationConnection.ts"

export interface SlotOptions {
  readonly slot: string
  readonly plugin: "wal2json" | "pgoutput"
  /** Create the slot when it is missing (REPLICATION_SLOT_CREATE). */
  readonly createSlot: boolean
}

/** The slot as streaming starts from it. */
export interface SlotInfo {
  readonly slot: string
  readonly plugin: string
  /** The slot's confirmed flush position: streaming resumes after it, and we never report less. */
  readonly confirmedFlush: Lsn.Lsn
  /** Whether this call created the slot. */
  readonly created: boolean
}

/** One row of pg_replication_slots, as far as the checks need it. */
export interface SlotRow {
  readonly plugin: string | null
  readonly slotType: string
  readonly database: string | null
  readonly active: boolean
  readonly activePid: number | undefined
  readonly confirmedFlush: Lsn.Lsn | undefined
  /** `lost` once the slot's WAL was removed (PostgreSQL 13+). */
  readonly walStatus: string | null
  /** Why the slot was invalidated (PostgreSQL 17+); null otherwise. */
  readonly invalidationReason: string | null
}

/**
 * Reads the slot's row. Columns that only newer servers have (wal_status, invalidation_reason) are
 * read through to_jsonb so the statement works on every version.
 */
export const inspect = (
  connection: PgReplicationConnection,
  slot: string
): Effect.Effect<SlotRow | undefined, PgError> =>
  Effect.map(
    connection.query(
      "SELECT s.plugin, s.slot_type, s.database, s.active::text, s.active_pid::text, s.confirmed_flush_lsn::text, " +
        "to_jsonb(s) ->> 'wal_status', to_jsonb(s) ->> 'invalidation_reason' " +
        `FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = ${Quote.literal(slot)}`
    ),
    ({ rows }): SlotRow | undefined => {
      const row = rows[0]
      if (row === undefined) return undefined
      const [plugin, slotType, database, active, activePid, confirmedFlush, walStatus, invalidationReason] = row
      return {
        plugin: plugin ?? null,
        slotType: slotType ?? "",
        database: database ?? null,
        active: active === "true",
        activePid: activePid == null ? undefined : Number(activePid),
        confirmedFlush: confirmedFlush == null ? undefined : Lsn.parse(confirmedFlush),
        walStatus: walStatus ?? null,
        invalidationReason: invalidationReason ?? null
      }
    }
  )

/** Creates the slot; the consistent point is where its stream begins. */
const create = (connection: PgReplicationConnection, options: SlotOptions) =>
  Effect.gen(function*() {
    const { rows } = yield* connection.query(
      `CREATE_REPLICATION_SLOT ${Quote.identifier(options.slot)} LOGICAL ${Quote.identifier(options.plugin)} NOEXPORT_SNAPSHOT`
    )
    const consistentPoint = Lsn.parse(rows[0]?.[1] ?? "") ?? Lsn.zero
    yield* Effect.logWarning("slot_created").pipe(Effect.annotateLogs({
      slot: options.slot,
      plugin: options.plugin,
      consistentPoint: Lsn.format(consistentPoint),
      note: "changes committed before the consistent point are not streamed"
    }))
    return consistentPoint
  }).pipe(Effect.mapError((error) => ErrorPolicy.slotErrorOf({ ...options, creating: true }, error)))

/** Checks a slot that exists; fails with the matching slot error. */
const check = (row: SlotRow, options: SlotOptions): Effect.Effect<Lsn.Lsn, SlotError> => {
  if (row.slotType !== "logical" || row.plugin !== options.plugin) {
    return Effect.fail(
      SlotError.pluginMismatch({
        slot: options.slot,
        expected: options.plugin,
        actual: row.slotType === "logical" ? row.plugin ?? "unknown" : `${row.slotType} (not a logical slot)`
      })
    )
  }
  if (row.invalidationReason !== null || row.walStatus === "lost") {
    return Effect.fail(SlotError.invalidated(options.slot, row.invalidationReason ?? "wal_status = lost"))
  }
  if (row.active) return Effect.fail(SlotError.active(options.slot, row.activePid))
  return Effect.succeed(row.confirmedFlush ?? Lsn.zero)
}

/**
 * Makes sure the slot exists and can be streamed from: creates it when missing (if allowed), and
 * fails with the matching {@link SlotError} (Missing, PluginMismatch, Invalidated, Active) otherwise.
 */
export const ensure = (connection: PgReplicationConnection, options: SlotOptions): Effect.Effect<SlotInfo, SlotError | PgError> =>
  Effect.gen(function*() {
    const row = yield* inspect(connection, options.slot)
    if (row !== undefined) {
      const confirmedFlush = yield* check(row, options)
      return { slot: options.slot, plugin: options.plugin, confirmedFlush, created: false }
    }
    if (!options.createSlot) return yield* SlotError.missing(options.slot)
    const created = yield* create(connection, options).pipe(
      Effect.map((lsn) => ({ lsn, created: true })),
      Effect.catch((error) =>
        Effect.gen(function*() {
          // another instance created it a moment ago: check that one instead
          if (error._tag !== "PgError" || error.code !== ErrorPolicy.SqlState.duplicateObject) return yield* error
          const again = yield* inspect(connection, options.slot)
          if (again === undefined) return yield* SlotError.missing(options.slot)
          return { lsn: yield* check(again, options), created: false }
        })
      )
    )
    return { slot: options.slot, plugin: options.plugin, confirmedFlush: created.lsn, created: created.created }
  })

/**
 * Requesting and cancelling backfills (the CLI's `backfill` command, and INITIAL_BACKFILL): each
 * table is checked first (it exists, it has a key to page by), the request table is created when
 * first needed, and a table already queued or running is not queued twice. A read-only server
 * (a hot standby) is refused with what to do instead.
 */
import * as Effect from "effect/Effect"
import type { PgError } from "../Errors.ts"
import * as OwnSchema from "./OwnSchema.ts"
import type { Query } from "./Query.ts"
import * as Store from "./Store.ts"
import * as TableShape from "./TableShape.ts"

/** What happened to one table of a request. */
export type Outcome =
  | { readonly _tag: "Queued"; readonly table: string; readonly id: string; readonly estimatedRows: number }
  | { readonly _tag: "AlreadyOpen"; readonly table: string; readonly id: string; readonly state: Store.State }
  | { readonly _tag: "Refused"; readonly table: string; readonly reason: string }
  | { readonly _tag: "Cancelled"; readonly table: string }
  | { readonly _tag: "NothingToCancel"; readonly table: string }

/** The message for a server that cannot take writes. */
export const readOnlyMessage =
  "the server is read-only (a hot standby): a backfill writes its progress into " +
  `${Store.TABLE} and emits watermark messages (pg_logical_emit_message), which only the primary can do; ` +
  "point PGHOST at the primary"

/** Whether the server is in recovery (a standby). */
export const isReadOnly = (query: Query): Effect.Effect<boolean, PgError> =>
  Effect.map(query(`SELECT pg_is_in_recovery()::text`), (rows) => rows[0]?.[0] === "true")

/** The refusal of a name that does not denote a table. */
const notATable = (name: string): Outcome => ({
  _tag: "Refused",
  table: name,
  reason: `not a table name: ${JSON.stringify(name)} (use schema.table)`
})

/** Queues a backfill of each table (names as `schema.table`). */
export const request = (
  query: Query,
  slot: string,
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Outcome>, PgError> =>
  Effect.gen(function*() {
    const outcomes: Array<Outcome> = []
    let ensured = false
    for (const name of names) {
      const parsed = TableShape.parseName(name)
      if (parsed === undefined) {
        outcomes.push(notATable(name))
        continue
      }
      const table = TableShape.qualified(parsed.schema, parsed.table)
      if (parsed.schema === OwnSchema.SCHEMA) {
        outcomes.push({ _tag: "Refused", table, reason: `${OwnSchema.SCHEMA} is the service's own schema and is never streamed` })
        continue
      }
      const shape = yield* TableShape.read(query, parsed.schema, parsed.table).pipe(
        Effect.catchTags({
          TableMissing: (error) => Effect.succeed(error.message),
          PartitionedTable: (error) => Effect.succeed(error.message),
          NoUsableKey: (error) => Effect.succeed(error.message)
        })
      )
      if (typeof shape === "string") {
        outcomes.push({ _tag: "Refused", table, reason: shape })
        continue
      }
      if (!ensured) {
        yield* Store.ensure(query)
        ensured = true
      }
      const open = yield* Store.open(query, slot, parsed.schema, parsed.table)
      if (open !== undefined) {
        outcomes.push({ _tag: "AlreadyOpen", table, id: open.id, state: open.state })
        continue
      }
      const queued = yield* Store.enqueue(query, slot, parsed.schema, parsed.table)
      outcomes.push({ _tag: "Queued", table, id: queued.id, estimatedRows: shape.estimatedRows })
    }
    return outcomes
  })

/** Cancels the open backfill of each table. */
export const cancel = (
  query: Query,
  slot: string,
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Outcome>, PgError> =>
  Effect.gen(function*() {
    const outcomes: Array<Outcome> = []
    const stored = yield* Store.exists(query)
    for (const name of names) {
      const parsed = TableShape.parseName(name)
      if (parsed === undefined) {
        outcomes.push(notATable(name))
        continue
      }
      const table = TableShape.qualified(parsed.schema, parsed.table)
      const cancelled = stored && (yield* Store.cancel(query, slot, parsed.schema, parsed.table))
      outcomes.push(cancelled ? { _tag: "Cancelled", table } : { _tag: "NothingToCancel", table })
    }
    return outcomes
  })

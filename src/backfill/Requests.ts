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

/**
 * Each name's outcome, in order: a name that does not denote a table is refused; each table is
 * handed on as its schema, its name and `schema.table`.
 */
const perTable = <E>(
  names: ReadonlyArray<string>,
  handle: (schema: string, name: string, table: string) => Effect.Effect<Outcome, E>
): Effect.Effect<ReadonlyArray<Outcome>, E> =>
  Effect.forEach(names, (text) => {
    const parsed = TableShape.parseName(text)
    return parsed === undefined
      ? Effect.succeed<Outcome>({ _tag: "Refused", table: text, reason: `not a table name: ${JSON.stringify(text)} (use schema.table)` })
      : handle(parsed.schema, parsed.table, TableShape.qualified(parsed.schema, parsed.table))
  })

/** Queues a backfill of each table (names as `schema.table`). */
export const request = (
  query: Query,
  slot: string,
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Outcome>, PgError> =>
  Effect.suspend(() => {
    let ensured = false
    return perTable(names, (schema, name, table) =>
      Effect.gen(function*() {
        if (schema === OwnSchema.SCHEMA) {
          return { _tag: "Refused", table, reason: `${OwnSchema.SCHEMA} is the service's own schema and is never streamed` } as const
        }
        const shape = yield* TableShape.read(query, schema, name).pipe(
          Effect.catchTags({
            TableMissing: (error) => Effect.succeed(error.message),
            PartitionedTable: (error) => Effect.succeed(error.message),
            NoUsableKey: (error) => Effect.succeed(error.message)
          })
        )
        if (typeof shape === "string") return { _tag: "Refused", table, reason: shape } as const
        if (!ensured) {
          yield* Store.ensure(query)
          ensured = true
        }
        const open = yield* Store.open(query, slot, schema, name)
        if (open !== undefined) return { _tag: "AlreadyOpen", table, id: open.id, state: open.state } as const
        const queued = yield* Store.enqueue(query, slot, schema, name)
        return { _tag: "Queued", table, id: queued.id, estimatedRows: shape.estimatedRows } as const
      }))
  })

/** Cancels the open backfill of each table. */
export const cancel = (
  query: Query,
  slot: string,
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Outcome>, PgError> =>
  Effect.flatMap(Store.exists(query), (stored) =>
    perTable(names, (schema, name, table) =>
      Effect.map(
        stored ? Store.cancel(query, slot, schema, name) : Effect.succeed(false),
        (cancelled): Outcome => (cancelled ? { _tag: "Cancelled", table } : { _tag: "NothingToCancel", table })
      )))

/**
 * Backfill requests and their progress, in one small table of the service's own schema
 * (`cdc_logical_replication.backfills`), created when first needed. A request is one table for one
 * slot; it goes `queued` → `running` → `done` | `cancelled` | `failed`. The leader takes the
 * oldest running request (resuming it) or else the oldest queued one, so a request made while
 * another runs waits its turn. `cursor` is the paging key of the last row acknowledged (a JSON array
 * of text values): a resumed backfill starts after it.
 */
import * as Effect from "effect/Effect"
import type { PgError } from "../Errors.ts"
import * as OwnSchema from "./OwnSchema.ts"
import type { Query } from "./Query.ts"
import { sqlState } from "./Query.ts"

export type State = "queued" | "running" | "done" | "cancelled" | "failed"
export const states: ReadonlyArray<State> = ["queued", "running", "done", "cancelled", "failed"]

export const TABLE = `${OwnSchema.SCHEMA}.backfills`

const CREATE_SQL = [
  `CREATE SCHEMA IF NOT EXISTS ${OwnSchema.SCHEMA}`,
  `CREATE TABLE IF NOT EXISTS ${TABLE} (
    id bigserial PRIMARY KEY,
    slot text NOT NULL,
    table_schema text NOT NULL,
    table_name text NOT NULL,
    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    cursor jsonb,
    rows_done bigint NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error text
  )`
]

/** A request as stored. */
export interface Request {
  readonly id: string
  readonly schema: string
  readonly table: string
  readonly state: State
  /** The paging key of the last acknowledged row, text values; undefined before the first chunk. */
  readonly cursor: ReadonlyArray<string | null> | undefined
  readonly rowsDone: number
}

/** A request with what `cli status` shows. */
export interface Progress extends Request {
  /** pg_class.reltuples of the table now; undefined when unknown (never analyzed, or dropped). */
  readonly estimatedRows: number | undefined
  readonly requestedAt: string
  readonly startedAt: string | undefined
  readonly finishedAt: string | undefined
  /** Seconds from start to the last progress (or to now while running). */
  readonly elapsedSeconds: number | undefined
  readonly error: string | undefined
}

/** Whether the table exists (without creating anything). */
export const exists = (query: Query): Effect.Effect<boolean, PgError> =>
  Effect.map(query(`SELECT to_regclass($1)::text`, [TABLE]), (rows) => rows[0]?.[0] != null)

/** Creates the schema and table when missing (two instances at once: the loser sees it made). */
export const ensure = (query: Query): Effect.Effect<void, PgError> =>
  Effect.gen(function*() {
    if (yield* exists(query)) return
    for (const statement of CREATE_SQL) {
      yield* query(statement).pipe(
        // concurrent CREATE … IF NOT EXISTS can still collide on the catalog's unique indexes
        Effect.catchIf((error) => sqlState(error) === "23505" || sqlState(error) === "42P06" || sqlState(error) === "42P07", () =>
          Effect.succeed([]))
      )
    }
  })

const toRequest = (row: ReadonlyArray<string | null>): Request => ({
  id: row[0] ?? "",
  schema: row[1] ?? "",
  table: row[2] ?? "",
  state: (row[3] ?? "queued") as State,
  cursor: row[4] == null ? undefined : JSON.parse(row[4]) as ReadonlyArray<string | null>,
  rowsDone: Number(row[5] ?? 0)
})

const REQUEST_COLUMNS = `id::text, table_schema, table_name, state, cursor::text, rows_done::text`

/** The open request (queued or running) for a table, if any. */
export const open = (query: Query, slot: string, schema: string, table: string): Effect.Effect<Request | undefined, PgError> =>
  Effect.map(
    query(
      `SELECT ${REQUEST_COLUMNS} FROM ${TABLE}
        WHERE slot = $1 AND table_schema = $2 AND table_name = $3 AND state IN ('queued', 'running') ORDER BY id LIMIT 1`,
      [slot, schema, table]
    ),
    (rows) => (rows[0] === undefined ? undefined : toRequest(rows[0]))
  )

/** Queues a request; returns it. */
export const enqueue = (query: Query, slot: string, schema: string, table: string): Effect.Effect<Request, PgError> =>
  Effect.map(
    query(
      `INSERT INTO ${TABLE} (slot, table_schema, table_name) VALUES ($1, $2, $3) RETURNING ${REQUEST_COLUMNS}`,
      [slot, schema, table]
    ),
    (rows) => toRequest(rows[0]!)
  )

/** Cancels the open request for a table; returns whether there was one. */
export const cancel = (query: Query, slot: string, schema: string, table: string): Effect.Effect<boolean, PgError> =>
  Effect.map(
    query(
      `UPDATE ${TABLE} SET state = 'cancelled', finished_at = now(), updated_at = now()
        WHERE slot = $1 AND table_schema = $2 AND table_name = $3 AND state IN ('queued', 'running') RETURNING id::text`,
      [slot, schema, table]
    ),
    (rows) => rows.length > 0
  )

/** The request to work on: the oldest running one (to resume), else the oldest queued one. */
export const next = (query: Query, slot: string): Effect.Effect<Request | undefined, PgError> =>
  Effect.map(
    query(
      `SELECT ${REQUEST_COLUMNS} FROM ${TABLE} WHERE slot = $1 AND state IN ('queued', 'running')
        ORDER BY state = 'running' DESC, id LIMIT 1`,
      [slot]
    ),
    (rows) => (rows[0] === undefined ? undefined : toRequest(rows[0]))
  )

/** The request's state now (undefined when the row is gone). */
export const stateOf = (query: Query, id: string): Effect.Effect<State | undefined, PgError> =>
  Effect.map(query(`SELECT state FROM ${TABLE} WHERE id = $1::bigint`, [id]), (rows) => (rows[0]?.[0] ?? undefined) as State | undefined)

/** Marks the request running (keeps its first start time); false when it was cancelled meanwhile. */
export const start = (query: Query, id: string): Effect.Effect<boolean, PgError> =>
  Effect.map(
    query(
      `UPDATE ${TABLE} SET state = 'running', started_at = coalesce(started_at, now()), updated_at = now()
        WHERE id = $1::bigint AND state IN ('queued', 'running') RETURNING id::text`,
      [id]
    ),
    (rows) => rows.length > 0
  )

/** Records an acknowledged chunk; false when the request is no longer running (cancelled). */
export const advance = (
  query: Query,
  id: string,
  cursor: ReadonlyArray<string | null>,
  rows: number
): Effect.Effect<boolean, PgError> =>
  Effect.map(
    query(
      `UPDATE ${TABLE} SET cursor = $2::jsonb, rows_done = rows_done + $3::bigint, updated_at = now()
        WHERE id = $1::bigint AND state = 'running' RETURNING id::text`,
      [id, JSON.stringify(cursor), String(rows)]
    ),
    (updated) => updated.length > 0
  )

/** Ends a running request as done or failed (a cancelled one stays cancelled). */
export const finish = (
  query: Query,
  id: string,
  state: "done" | "failed",
  error?: string
): Effect.Effect<void, PgError> =>
  Effect.asVoid(query(
    `UPDATE ${TABLE} SET state = $2, error = $3, finished_at = now(), updated_at = now()
      WHERE id = $1::bigint AND state = 'running'`,
    [id, state, error ?? null]
  ))

/** How many requests of the slot are in each state. */
export const counts = (query: Query, slot: string): Effect.Effect<ReadonlyMap<State, number>, PgError> =>
  Effect.map(
    query(`SELECT state, count(*)::text FROM ${TABLE} WHERE slot = $1 GROUP BY state`, [slot]),
    (rows) => new Map(rows.map(([state, count]) => [state as State, Number(count)]))
  )

/**
 * The slot's requests for `cli status`: every open one, and the latest finished one per table
 * (at most `limit` in all), with the table's current estimated size.
 */
export const progress = (query: Query, slot: string, limit = 50): Effect.Effect<ReadonlyArray<Progress>, PgError> =>
  Effect.gen(function*() {
    if (!(yield* exists(query))) return []
    const rows = yield* query(
      `SELECT b.id::text, b.table_schema, b.table_name, b.state, b.cursor::text, b.rows_done::text, c.reltuples::bigint::text, b.requested_at::text, b.started_at::text, b.finished_at::text,
              extract(epoch FROM (CASE WHEN b.state = 'running' THEN now() ELSE b.updated_at END) - b.started_at)::text, b.error
         FROM ${TABLE} b
         LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = b.table_schema
         LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = b.table_name
        WHERE b.slot = $1 AND (b.state IN ('queued', 'running') OR b.id = (
          SELECT max(l.id) FROM ${TABLE} l WHERE l.slot = b.slot AND l.table_schema = b.table_schema AND l.table_name = b.table_name))
        ORDER BY b.id DESC LIMIT $2::int`,
      [slot, String(limit)]
    )
    return rows.map((row): Progress => {
      const estimate = row[6] == null ? undefined : Number(row[6])
      return {
        ...toRequest(row),
        estimatedRows: estimate === undefined || estimate < 0 ? undefined : estimate,
        requestedAt: row[7] ?? "",
        startedAt: row[8] ?? undefined,
        finishedAt: row[9] ?? undefined,
        elapsedSeconds: row[10] == null ? undefined : Number(row[10]),
        error: row[11] ?? undefined
      }
    }).reverse()
  })

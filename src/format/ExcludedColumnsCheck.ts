/**
 * The start-time check of EXCLUDE_COLUMNS against the catalog: a pattern that matches no column of
 * any table is most likely a typo that would let the column it meant through, so each is named in
 * a warning (`exclude_columns_unmatched`), once per process. Not fatal: the table may be created later.
 */
import * as Effect from "effect/Effect"
import type { ServiceError } from "../Errors.ts"
import * as ColumnFilter from "./ColumnFilter.ts"

/** Runs one SQL statement and returns its rows as text. */
export type Query = (sql: string) => Effect.Effect<ReadonlyArray<ReadonlyArray<string | null>>, ServiceError>

/** Every column of every user table, view excluded. */
export const catalogColumns = (query: Query): Effect.Effect<Array<ColumnFilter.CatalogColumn>, ServiceError> =>
  Effect.map(
    query(
      `SELECT n.nspname, c.relname, a.attname
         FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`
    ),
    (rows) => rows.flatMap(([schema, table, column]) =>
      schema == null || table == null || column == null ? [] : [[schema, table, column] as const])
  )

/**
 * Warns about each pattern that matches nothing and is not yet in `warned` (the patterns already
 * warned about, kept by the replication source for the process's life: a reconnect does not repeat
 * the warning); returns the unmatched patterns.
 */
export const warnUnmatched = (
  query: Query,
  patterns: ReadonlyArray<ColumnFilter.ColumnPattern>,
  warned: Set<string>
): Effect.Effect<ReadonlyArray<ColumnFilter.ColumnPattern>, ServiceError> =>
  patterns.length === 0 ? Effect.succeed([]) : Effect.gen(function*() {
    const unmatched = ColumnFilter.unmatched(patterns, yield* catalogColumns(query))
    const fresh = unmatched.filter((pattern) => !warned.has(pattern.text))
    for (const pattern of fresh) warned.add(pattern.text)
    yield* Effect.forEach(fresh, (pattern) =>
      Effect.logWarning("exclude_columns_unmatched").pipe(Effect.annotateLogs({
        variable: "EXCLUDE_COLUMNS",
        pattern: pattern.text,
        note: "no column of any table matches it now; nothing is excluded by it"
      })), { discard: true })
    return unmatched
  })

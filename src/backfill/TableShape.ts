/**
 * What the backfill needs to know about a table, read from the catalog: its columns (with the type
 * names and value rules the records use), the key it is read by (keyset pagination) and the key
 * its live changes are published under.
 *
 * - The paging key: the primary key (immediate or deferrable), else a unique index over columns that
 *   are all NOT NULL (the replica-identity index first, then the narrowest). Without one a table
 *   cannot be read in chunks by key, and the request is refused with {@link NoUsableKey}.
 * - The stream key: the row key of {@link KeyCatalog} (the replica-identity index with `USING
 *   INDEX`, else the primary key, else none), in table column order; a backfilled row's `pk` is
 *   rendered from it as the decoders render a live change's, so both land on one partition key.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type { PgError } from "../Errors.ts"
import * as Quote from "../postgres/Quote.ts"
import type * as KeyCatalog from "../replication/KeyCatalog.ts"
import * as PgOutputValues from "../replication/PgOutputValues.ts"
import type { Query } from "./Query.ts"

export interface Column {
  readonly name: string
  /** The type name as records print it and as a text value is cast to in SQL (format_type, with typmod). */
  readonly type: string
  readonly typeOid: number
  readonly kind: PgOutputValues.ValueKind
}

export interface TableShape {
  readonly schema: string
  readonly table: string
  /** Every column, in table order. */
  readonly columns: ReadonlyArray<Column>
  /** Indexes into `columns` of the paging key, in index order. */
  readonly pageKey: ReadonlyArray<number>
  /** Indexes into `columns` of the stream key, in table order; empty when live changes have none. */
  readonly streamKey: ReadonlyArray<number>
  /** The table's estimated row count (pg_class.reltuples; -1 never analyzed). */
  readonly estimatedRows: number
}

/** The table does not exist (or is not a table). */
export class TableMissing extends Data.TaggedError("TableMissing")<{ readonly table: string }> {
  override get message(): string {
    return `table ${this.table} does not exist`
  }
}

/** A partitioned table: its rows live, and their changes stream, under its partitions' names. */
export class PartitionedTable extends Data.TaggedError("PartitionedTable")<{ readonly table: string }> {
  override get message(): string {
    return `table ${this.table} is partitioned: its changes stream under its partitions' names, so backfill each partition instead`
  }
}

/** The table has no key the backfill can page by. */
export class NoUsableKey extends Data.TaggedError("NoUsableKey")<{ readonly table: string }> {
  override get message(): string {
    return `table ${this.table} has no primary key and no unique index over NOT NULL columns: it cannot be read in chunks by key ` +
      `(add a primary key, or a unique index on NOT NULL columns, then request it again)`
  }
}

/** `schema.table` for messages and metric labels. */
export const qualified = (schema: string, table: string): string => `${schema}.${table}`

/** `"schema"."table"` for SQL. */
export const sqlName = (shape: Pick<TableShape, "schema" | "table">): string =>
  `${Quote.identifier(shape.schema)}.${Quote.identifier(shape.table)}`

/**
 * Splits `schema.table` (or `table`, meaning public) the way the CLI takes it; double quotes keep
 * dots and case: `"My.Schema"."T"`.
 */
export const parseName = (text: string): { readonly schema: string; readonly table: string } | undefined => {
  const parts: Array<string> = []
  let i = 0
  while (i <= text.length) {
    if (text[i] === `"`) {
      let part = ""
      i++
      while (i < text.length) {
        if (text[i] === `"`) {
          if (text[i + 1] === `"`) {
            part += `"`
            i += 2
            continue
          }
          break
        }
        part += text[i++]
      }
      if (text[i] !== `"`) return undefined
      i++
      parts.push(part)
    } else {
      const end = text.indexOf(".", i)
      const part = text.slice(i, end < 0 ? text.length : end)
      if (part.length === 0) return undefined
      parts.push(part)
      i = end < 0 ? text.length : end
    }
    if (i === text.length) break
    if (text[i] !== ".") return undefined
    i++
  }
  if (parts.length === 1) return { schema: "public", table: parts[0]! }
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! }
  return undefined
}

const COLUMNS_SQL = `
SELECT a.attnum::text, a.attname::text, a.atttypid::text, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
       c.reltuples::bigint::text, c.relkind::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
 ORDER BY a.attnum`

/** Unique, valid, non-partial indexes over plain columns: their columns in index order. */
const INDEXES_SQL = `
SELECT i.indisprimary::text, i.indisreplident::text, c.relreplident::text, array_to_string(i.indkey, ' ')
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indisvalid
   AND i.indpred IS NULL AND i.indexprs IS NULL
 ORDER BY i.indisprimary DESC, i.indisreplident DESC, i.indnatts, i.indexrelid`

/** Reads the table's shape; fails with TableMissing or NoUsableKey. */
export const read = (
  query: Query,
  schema: string,
  table: string
): Effect.Effect<TableShape, TableMissing | PartitionedTable | NoUsableKey | PgError> =>
  Effect.gen(function*() {
    const name = qualified(schema, table)
    const columnRows = yield* query(COLUMNS_SQL, [schema, table])
    if (columnRows.length === 0) return yield* new TableMissing({ table: name })
    if (columnRows[0]![6] === "p") return yield* new PartitionedTable({ table: name })
    const attnums: Array<number> = []
    const notNull: Array<boolean> = []
    const columns: Array<Column> = []
    let estimatedRows = -1
    for (const [attnum, attname, typeOid, type, attnotnull, reltuples] of columnRows) {
      const oid = Number(typeOid)
      attnums.push(Number(attnum))
      notNull.push(attnotnull === "true")
      columns.push({
        name: attname ?? "",
        type: type ?? "",
        typeOid: oid,
        kind: PgOutputValues.valueKind(oid)
      })
      estimatedRows = Number(reltuples ?? -1)
    }
    const indexOf = (attnum: number): number => attnums.indexOf(attnum)
    const indexRows = yield* query(INDEXES_SQL, [schema, table])
    let pageKey: ReadonlyArray<number> | undefined
    let primaryKey: ReadonlyArray<number> = []
    let identityKey: ReadonlyArray<number> = []
    for (const [primary, replident, relreplident, indkey] of indexRows) {
      const keyColumns = (indkey ?? "").split(" ").filter((s) => s !== "").map((n) => indexOf(Number(n)))
      if (keyColumns.length === 0 || keyColumns.some((i) => i < 0)) continue
      const isPrimary = primary === "true"
      if (isPrimary) primaryKey = [...keyColumns].sort((a, b) => a - b)
      if (replident === "true" && relreplident === "i") identityKey = [...keyColumns].sort((a, b) => a - b)
      if (pageKey === undefined && (isPrimary || keyColumns.every((i) => notNull[i]))) pageKey = keyColumns
    }
    if (pageKey === undefined) return yield* new NoUsableKey({ table: name })
    // the row key of KeyCatalog: the replica-identity index with USING INDEX, else the primary key
    const streamKey = identityKey.length > 0 ? identityKey : primaryKey
    return { schema, table, columns, pageKey, streamKey, estimatedRows }
  })

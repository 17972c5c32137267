/**
 * Row keys from the catalog: for each table, the columns that identify a row across its changes
 * (its partition key) and its replica identity. Both decoders need it where the plugin does not
 * say: wal2json's `pk` omits a deferrable primary key and says nothing of a replica-identity index;
 * pgoutput marks replica-identity columns only (all of them with FULL, none with NOTHING).
 *
 * The row key is the replica-identity index's columns with `REPLICA IDENTITY USING INDEX`, else
 * the primary key's (immediate or deferrable), else none. Tables whose old rows PostgreSQL does not
 * identify (identity NOTHING, or DEFAULT without an immediate primary key), and tables with no row
 * key, are listed by `unidentified` for the warning at start and `cli status`.
 */
import * as Effect from "effect/Effect"
import type { ServiceError } from "../Errors.ts"

/** Runs one SQL statement (simple query) and returns its rows as text. */
export type Query = (sql: string) => Effect.Effect<ReadonlyArray<ReadonlyArray<string | null>>, ServiceError>

/** Replica identity: d default, n nothing, f full, i index. */
export type Identity = "d" | "n" | "f" | "i"

export interface TableKey {
  readonly schema: string
  readonly table: string
  readonly identity: Identity
  /** The row key's columns, in table order; empty when the table has none. */
  readonly columns: ReadonlyArray<string>
  /** The primary key's columns when it is immediate (what wal2json writes as `pk`), in table order; else empty. */
  readonly immediatePrimaryKey: ReadonlyArray<string>
  /** Whether the primary key is deferrable (PostgreSQL then logs no old key under identity DEFAULT). */
  readonly deferrablePrimaryKey: boolean
}

/** Keyed `schema.table`. */
export type KeyCatalog = ReadonlyMap<string, TableKey>

export const empty: KeyCatalog = new Map()

export const lookup = (catalog: KeyCatalog, schema: string, table: string): TableKey | undefined =>
  catalog.get(`${schema}.${table}`)

const keyColumns = (predicate: string) =>
  `(SELECT json_agg(a.attname ORDER BY a.attnum)::text
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = c.oid AND ${predicate})`

/** Ordinary and partitioned tables outside the system schemas (partitions stream under their own names). */
export const statement = `SELECT n.nspname, c.relname, c.relreplident::text,
       ${keyColumns("i.indisreplident")},
       ${keyColumns("i.indisprimary")},
       (SELECT (NOT i.indimmediate)::text FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`

const isIdentity = (value: string | null): value is Identity => value === "d" || value === "n" || value === "f" || value === "i"

/** The catalog from the rows of `statement`. */
export const fromRows = (rows: ReadonlyArray<ReadonlyArray<string | null>>): KeyCatalog => {
  const catalog = new Map<string, TableKey>()
  for (const [schema, table, identity, identityColumns, primaryKey, deferrable] of rows) {
    if (schema == null || table == null || !isIdentity(identity ?? null)) continue
    const index = identityColumns == null ? [] : JSON.parse(identityColumns) as Array<string>
    const pk = primaryKey == null ? [] : JSON.parse(primaryKey) as Array<string>
    const deferrablePrimaryKey = deferrable === "true"
    catalog.set(`${schema}.${table}`, {
      schema,
      table,
      identity: identity as Identity,
      columns: identity === "i" && index.length > 0 ? index : pk,
      immediatePrimaryKey: deferrablePrimaryKey ? [] : pk,
      deferrablePrimaryKey
    })
  }
  return catalog
}

/** Reads the catalog. */
export const load = (query: Query): Effect.Effect<KeyCatalog, ServiceError> => Effect.map(query(statement), fromRows)

/** A table the stream cannot follow row by row, and why. */
export interface Unidentified {
  readonly table: string
  readonly reason: string
}

/** Why a table's rows cannot be followed by key; `undefined` when they can. */
export const problem = (key: TableKey): string | undefined => {
  if (key.identity === "n") return "REPLICA IDENTITY NOTHING: updates and deletes carry no old key"
  if (key.identity === "d" && key.deferrablePrimaryKey) {
    return "deferrable primary key with REPLICA IDENTITY DEFAULT: PostgreSQL logs no old key for updates and deletes"
  }
  if (key.columns.length === 0) return "no primary key or replica identity index: changes use PARTITION_KEY_FALLBACK"
  return undefined
}

/** The tables `covered` selects whose rows cannot be followed by key, sorted by name. */
export const unidentified = (
  catalog: KeyCatalog,
  covered: (schema: string, table: string) => boolean = () => true
): Array<Unidentified> => {
  const found: Array<Unidentified> = []
  for (const [name, key] of catalog) {
    if (!covered(key.schema, key.table)) continue
    const reason = problem(key)
    if (reason !== undefined) found.push({ table: name, reason })
  }
  return found.sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0))
}

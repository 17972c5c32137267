/**
 * The tables INITIAL_BACKFILL backfills: every table the slot streams. For pgoutput, the tables of
 * the publication; for wal2json, every user table that WAL2JSON_ADD_TABLES (when set) lets through
 * and WAL2JSON_FILTER_TABLES does not filter (patterns as wal2json reads them: `schema.table`,
 * `*` for a whole part): partitions, not their partitioned parents, since changes stream under the
 * partitions' names. The service's own schema is never one of them.
 */
import * as Effect from "effect/Effect"
import type { ReplicationConfig } from "../config/ServiceConfig.ts"
import type { PgError } from "../Errors.ts"
import * as Quote from "../postgres/Quote.ts"
import * as OwnSchema from "./OwnSchema.ts"
import type { Query } from "./Query.ts"

/** Splits a wal2json table pattern at its unescaped dot; backslashes escape. */
const parts = (pattern: string): readonly [string, string] => {
  let schema = ""
  let i = 0
  for (; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === "\\" && i + 1 < pattern.length) schema += pattern[++i]
    else if (c === ".") break
    else schema += c
  }
  let table = ""
  for (i++; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === "\\" && i + 1 < pattern.length) table += pattern[++i]
    else table += c
  }
  return [schema, table]
}

const matches = (pattern: string, schema: string, table: string): boolean => {
  const [s, t] = parts(pattern)
  return (s === "*" || s === schema) && (t === "*" || t === table)
}

/** `schema.table` names, quoted where needed, of the streamed tables. */
export const list = (
  query: Query,
  replication: Pick<ReplicationConfig, "plugin" | "publication" | "wal2jsonAddTables" | "wal2jsonFilterTables">
): Effect.Effect<ReadonlyArray<string>, PgError> =>
  Effect.map(
    replication.plugin === "pgoutput"
      ? query(`SELECT schemaname::text, tablename::text FROM pg_catalog.pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`, [
        replication.publication
      ])
      : query(
        `SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND c.relpersistence = 'p'
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          ORDER BY 1, 2`
      ),
    (rows) =>
      rows.flatMap(([schema, table]) => {
        if (schema == null || table == null || schema === OwnSchema.SCHEMA) return []
        if (replication.plugin === "wal2json") {
          if (replication.wal2jsonAddTables.length > 0 && !replication.wal2jsonAddTables.some((p) => matches(p, schema, table))) return []
          if (replication.wal2jsonFilterTables.some((p) => matches(p, schema, table))) return []
        }
        return [`${Quote.identifier(schema)}.${Quote.identifier(table)}`]
      })
  )

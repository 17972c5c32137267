/**
 * Installs the record format on a replication session's decoder: checks EXCLUDE_COLUMNS against
 * the catalog (warning about patterns that match nothing), reads what Debezium's `source` block
 * names (the database) and, for wal2json, the domains' base types, and wraps the decoder so each
 * decoded batch is formatted.
 */
import * as Effect from "effect/Effect"
import type { FormatConfig } from "../config/ServiceConfig.ts"
import type { ServiceError } from "../Errors.ts"
import type { DecoderFactory, Query } from "../replication/ReplicationReader.ts"
import * as ColumnFilter from "./ColumnFilter.ts"
import * as ExcludedColumnsCheck from "./ExcludedColumnsCheck.ts"
import * as RecordFormat from "./RecordFormat.ts"

/** Every user-defined domain: its name as format_type prints it, to its base type's name. */
export const domainBaseTypes = (query: Query): Effect.Effect<ReadonlyMap<string, string>, ServiceError> =>
  Effect.map(
    query(
      `SELECT format_type(t.oid, NULL), format_type(t.typbasetype, t.typtypmod)
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`
    ),
    (rows) => new Map(rows.flatMap(([domain, base]) => (domain == null || base == null ? [] : [[domain, base] as const])))
  )

/** The decoder factory with the configured format around its decoder. */
export const around = (
  factory: DecoderFactory,
  format: FormatConfig | undefined,
  names: { readonly slot: string },
  /** Unmatched EXCLUDE_COLUMNS patterns already warned about (kept across sessions). */
  warned: Set<string>
): DecoderFactory =>
(query) =>
  Effect.gen(function*() {
    const decoder = yield* factory(query)
    if (format === undefined) return decoder
    yield* ExcludedColumnsCheck.warnUnmatched(query, format.excludeColumns, warned)
    const debezium = format.recordFormat === "debezium"
    const database = debezium ? (yield* query("SELECT current_database()"))[0]?.[0] ?? "" : ""
    // wal2json names a domain column by the domain (pgoutput by its base type): convert it alike
    const domains = debezium && decoder.plugin === "wal2json" ? yield* domainBaseTypes(query) : undefined
    return RecordFormat.wrapDecoder(decoder, RecordFormat.make({
      recordFormat: format.recordFormat,
      exclude: ColumnFilter.make(format.excludeColumns),
      source: { name: names.slot, db: database },
      domains
    }))
  })

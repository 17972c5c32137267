/**
 * Installs the record format on a replication session's decoder: checks EXCLUDE_COLUMNS against
 * the catalog (warning about patterns that match nothing), reads what Debezium's `source` block
 * names (the database), and wraps the decoder so each decoded batch is formatted.
 */
import * as Effect from "effect/Effect"
import type { FormatConfig } from "../config/ServiceConfig.ts"
import type { DecoderFactory } from "../replication/ReplicationReader.ts"
import * as ColumnFilter from "./ColumnFilter.ts"
import * as ExcludedColumnsCheck from "./ExcludedColumnsCheck.ts"
import * as RecordFormat from "./RecordFormat.ts"

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
    const database = format.recordFormat === "debezium"
      ? (yield* query("SELECT current_database()"))[0]?.[0] ?? ""
      : ""
    return RecordFormat.wrapDecoder(decoder, RecordFormat.make({
      recordFormat: format.recordFormat,
      exclude: ColumnFilter.make(format.excludeColumns),
      source: { name: names.slot, db: database }
    }))
  })

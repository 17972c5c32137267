/**
 * The output plugin's options, decided in one place for every reader of a slot: the service's
 * START_REPLICATION and `cli peek`'s pg_logical_slot_peek_*changes get the same pairs from the
 * same configuration (REPLICATION_PLUGIN, PUBLICATION_NAME, WAL2JSON_ADD_TABLES, …).
 */
import type { ReplicationConfig } from "../config/ServiceConfig.ts"
import * as OwnSchema from "../backfill/OwnSchema.ts"
import * as Quote from "../postgres/Quote.ts"

/** Option name/value pairs, in the order they are sent. */
export type Pairs = ReadonlyArray<readonly [string, string]>

/**
 * wal2json format-version 2 with everything the decoder reads, and the table filters; the
 * service's own schema is always filtered (it never reaches the stream).
 */
export const wal2json = (options: {
  /** wal2json `add-tables`: only these tables (`schema.table`, `*` wildcards); empty for all. */
  readonly addTables: ReadonlyArray<string>
  /** wal2json `filter-tables`: never these tables (beside the service's own schema); empty for none. */
  readonly filterTables: ReadonlyArray<string>
}): Pairs => [
  ["format-version", "2"],
  ["include-lsn", "1"],
  ["include-pk", "1"],
  ["include-timestamp", "1"],
  ["include-transaction", "1"],
  ["include-xids", "1"],
  ...(options.addTables.length > 0 ? [["add-tables", options.addTables.join(",")] as const] : []),
  ["filter-tables", [...options.filterTables, OwnSchema.wal2jsonFilter].join(",")]
]

/** pgoutput protocol 1 on the publication, with logical messages. */
export const pgoutput = (options: { readonly publication: string }): Pairs => [
  ["proto_version", "1"],
  ["publication_names", options.publication],
  ["messages", "true"]
]

/** The pairs for the configured plugin. */
export const forConfig = (
  replication: Pick<ReplicationConfig, "plugin" | "publication" | "wal2jsonAddTables" | "wal2jsonFilterTables">
): Pairs =>
  replication.plugin === "pgoutput"
    ? pgoutput(replication)
    : wal2json({ addTables: replication.wal2jsonAddTables, filterTables: replication.wal2jsonFilterTables })

/** START_REPLICATION's options clause: `("name" 'value', …)`. */
export const clause = (pairs: Pairs): string =>
  `(${pairs.map(([name, value]) => `${Quote.identifier(name)} ${Quote.replicationLiteral(value)}`).join(", ")})`

/** The variadic option arguments of pg_logical_slot_peek_changes and friends: `'name', 'value', …`. */
export const sqlArguments = (pairs: Pairs): string =>
  pairs.map(([name, value]) => `${Quote.literal(name)}, ${Quote.literal(value)}`).join(", ")

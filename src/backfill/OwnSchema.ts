/**
 * The service's own schema in the streamed database, and the prefix of its own logical messages.
 * The schema holds the backfill requests and their progress; it never reaches the stream (wal2json
 * filters it on the server, the pgoutput decoder skips its relations), and messages with the prefix
 * are consumed by the service, never published.
 */

/** The schema the service creates (when first needed) for its own tables. */
export const SCHEMA = "cdc_logical_replication"

/** wal2json `filter-tables` pattern for every table of {@link SCHEMA}. */
export const wal2jsonFilter = `${SCHEMA}.*`

/** The prefix of the backfill's watermark messages (pg_logical_emit_message). */
export const WATERMARK_PREFIX = "cdc-logical-replication/backfill"

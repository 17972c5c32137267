/**
 * The server settings the replication reader checks once at start, on its own connection:
 * `server_encoding` (refused when the plugin cannot stream it as UTF-8 faithfully) and
 * `wal_sender_timeout` (STATUS_INTERVAL_MS is kept below half of it).
 *
 * Encodings: the replication connection's client_encoding is UTF8 (the StartupMessage of
 * `@effect/sql-pg`'s codec always asks for it). pgoutput converts every
 * name and value to it, so with pgoutput any server encoding but SQL_ASCII streams values equal to
 * what psql shows with client_encoding=UTF8. wal2json writes the database's own bytes unconverted:
 * only UTF8 is UTF-8 there. SQL_ASCII stores bytes without an encoding: wal2json's records carry
 * them as stored; pgoutput's rendering would have to guess, so it is refused.
 */
import * as Effect from "effect/Effect"
import { type PgError, SlotError } from "../Errors.ts"

export type Plugin = "wal2json" | "pgoutput"

export interface Settings {
  readonly serverEncoding: string
  /** wal_sender_timeout in milliseconds; 0 when disabled. */
  readonly walSenderTimeoutMs: number
}

/** One statement for both (pg_settings gives the timeout in its unit, milliseconds). */
export const query = "SELECT current_setting('server_encoding'), " +
  "(SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout')"

export const read = (
  run: (sql: string) => Effect.Effect<ReadonlyArray<ReadonlyArray<string | null>>, PgError>
): Effect.Effect<Settings, PgError> =>
  Effect.map(run(query), (rows) => ({
    serverEncoding: rows[0]?.[0] ?? "",
    walSenderTimeoutMs: Number(rows[0]?.[1] ?? 0)
  }))

/** Fails with SlotError UnsupportedEncoding when `plugin` cannot stream `encoding` faithfully. */
export const checkEncoding = (encoding: string, plugin: Plugin): Effect.Effect<void, SlotError> => {
  if (encoding === "UTF8") return Effect.void
  if (plugin === "wal2json" && encoding !== "SQL_ASCII") {
    return Effect.fail(SlotError.unsupportedEncoding({
      encoding,
      plugin,
      hint: `wal2json writes the database's ${encoding} bytes unconverted, and records are UTF-8 JSON. ` +
        `Set REPLICATION_PLUGIN=pgoutput (the server converts to UTF-8), or stream a UTF8 database`
    }))
  }
  if (plugin === "pgoutput" && encoding === "SQL_ASCII") {
    return Effect.fail(SlotError.unsupportedEncoding({
      encoding,
      plugin,
      hint: "a SQL_ASCII database stores bytes without an encoding, which pgoutput's values cannot be rendered from faithfully. " +
        "Set REPLICATION_PLUGIN=wal2json (records then carry the bytes as stored)"
    }))
  }
  return Effect.void
}

/**
 * The status interval to use: `configuredMs`, or a third of wal_sender_timeout when `configuredMs`
 * is not below half of it (a status update must reach the server well before it times the
 * walsender out). A timeout of 0 disables it: no clamp.
 */
export const statusIntervalMs = (configuredMs: number, walSenderTimeoutMs: number): number =>
  walSenderTimeoutMs > 0 && configuredMs >= walSenderTimeoutMs / 2
    ? Math.max(1, Math.floor(walSenderTimeoutMs / 3))
    : configuredMs

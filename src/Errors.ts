/**
 * The service's errors, grouped by what failed: PostgreSQL ({@link PgError}), the replication slot
 * and its plugin ({@link SlotError}), a change that cannot be decoded or published
 * ({@link DecodeError}), Kinesis ({@link KinesisError}) and the configuration
 * ({@link InvalidConfig}). Each carries a `reason` from a closed set and a `retriable` flag that
 * follows from the reason alone, declared here beside it.
 *
 * Retriable errors are retried with capped, jittered exponential backoff (for ever where data would
 * otherwise be lost); fatal ones stop the service with one message that says what to do, leaving
 * the slot where it was. Which reason a foreign error (SQLSTATE, @effect/sql's SqlError, an AWS SDK
 * error) gets is decided in one place: `ErrorPolicy.ts`.
 */
import * as Data from "effect/Data"
import { InvalidConfig } from "./config/EnvVar.ts"
import * as Lsn from "./domain/Lsn.ts"
import * as Quote from "./postgres/Quote.ts"

export { InvalidConfig }

/**
 * What went wrong talking to PostgreSQL:
 * - `Connection`: the TCP connection failed, dropped or timed out (SQLSTATE class 08) — retriable;
 * - `Unavailable`: the server cannot serve now (shutting down or starting, out of connections or
 *   resources, a lock or serialization conflict, an object in use) — retriable;
 * - `Tls`: TLS cannot be set up as PGSSLMODE demands (refused, untrusted certificate, wrong host);
 * - `Authentication`: the login was refused, or asks for a method we do not speak;
 * - `Statement`: the server rejected a statement (permissions, a missing database or object, …).
 */
export type PgErrorReason = "Connection" | "Unavailable" | "Tls" | "Authentication" | "Statement"

const pgRetriable: Readonly<Record<PgErrorReason, boolean>> = {
  Connection: true,
  Unavailable: true,
  Tls: false,
  Authentication: false,
  Statement: false
}

/** A PostgreSQL connection, session or statement failed. */
export class PgError extends Data.TaggedError("PgError")<{
  readonly reason: PgErrorReason
  readonly message: string
  /** The SQLSTATE, when the server answered with an ErrorResponse. */
  readonly code?: string | undefined
  readonly detail?: string | undefined
  readonly hint?: string | undefined
  readonly cause?: unknown
}> {
  get retriable(): boolean {
    return pgRetriable[this.reason]
  }
}

/**
 * What is wrong with the replication slot or its output plugin:
 * - `Active`: another connection streams it (usually the previous leader, for a moment) — retriable;
 * - `Missing`: it does not exist and REPLICATION_SLOT_CREATE=false;
 * - `PluginMismatch`: it exists with another plugin (or is not logical);
 * - `Invalidated`: its WAL was removed, it can never stream again;
 * - `PluginUnavailable`: the plugin is not installed, or the publication is missing and cannot be created;
 * - `UnsupportedEncoding`: the database's server_encoding is one the plugin cannot stream as UTF-8 faithfully.
 */
export type SlotErrorReason = "Active" | "Missing" | "PluginMismatch" | "Invalidated" | "PluginUnavailable" | "UnsupportedEncoding"

/** The slot cannot be streamed from. Build with the static constructors: they write the message. */
export class SlotError extends Data.TaggedError("SlotError")<{
  readonly reason: SlotErrorReason
  /** The slot, when the error is about one (a missing publication is not). */
  readonly slot: string | undefined
  readonly message: string
  /** The walsender holding the slot, for `Active`. */
  readonly pid?: number | undefined
}> {
  get retriable(): boolean {
    return this.reason === "Active"
  }

  static active(slot: string, pid?: number): SlotError {
    return new SlotError({
      reason: "Active",
      slot,
      pid,
      message: `replication slot "${slot}" is active on another connection${pid === undefined ? "" : ` (pid ${pid})`}`
    })
  }

  static missing(slot: string): SlotError {
    return new SlotError({
      reason: "Missing",
      slot,
      message: `replication slot "${slot}" does not exist and REPLICATION_SLOT_CREATE=false: changes since it vanished are lost. ` +
        `Check why it was dropped (failover, manual drop), then set REPLICATION_SLOT_CREATE=true once to create it again`
    })
  }

  static pluginMismatch(options: { readonly slot: string; readonly expected: string; readonly actual: string }): SlotError {
    return new SlotError({
      reason: "PluginMismatch",
      slot: options.slot,
      message: `replication slot "${options.slot}" uses plugin ${options.actual}, but the service is configured for ${options.expected}: ` +
        `set REPLICATION_PLUGIN=${options.actual}, or use another REPLICATION_SLOT`
    })
  }

  static invalidated(slot: string, why: string): SlotError {
    return new SlotError({
      reason: "Invalidated",
      slot,
      message: `replication slot "${slot}" is invalidated (${why}): the WAL it needed was removed and changes were lost. ` +
        `Drop it (SELECT pg_drop_replication_slot(${Quote.literal(slot)})), re-snapshot consumers, and start again; ` +
        `raise max_slot_wal_keep_size or keep the service running to avoid it`
    })
  }

  static pluginUnavailable(message: string, slot?: string): SlotError {
    return new SlotError({ reason: "PluginUnavailable", slot, message })
  }

  /** `hint` says what to do (which plugin can stream it, or how to convert the database). */
  static unsupportedEncoding(options: { readonly encoding: string; readonly plugin: string; readonly hint: string }): SlotError {
    return new SlotError({
      reason: "UnsupportedEncoding",
      slot: undefined,
      message: `the database's server_encoding is ${options.encoding}, which the service cannot stream with ${options.plugin}: ${options.hint}`
    })
  }
}

/**
 * Why a change cannot go on (both fatal; nothing at or after its LSN is acknowledged):
 * - `Malformed`: the decoder cannot read the message;
 * - `Oversized`: the change is over the per-record limit and OVERSIZED_RECORD_POLICY=fail.
 */
export type DecodeErrorReason = "Malformed" | "Oversized"

/** A change from the slot that cannot become a record. Build with the static constructors. */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly reason: DecodeErrorReason
  readonly lsn: Lsn.Lsn
  readonly message: string
  /** `schema.table`, when known. */
  readonly table?: string | undefined
}> {
  get retriable(): boolean {
    return false
  }

  static malformed(lsn: Lsn.Lsn, what: string): DecodeError {
    return new DecodeError({ reason: "Malformed", lsn, message: `cannot decode the change at LSN ${Lsn.format(lsn)}: ${what}` })
  }

  static oversized(options: { readonly lsn: Lsn.Lsn; readonly table: string; readonly bytes: number; readonly limit: number }): DecodeError {
    return new DecodeError({
      reason: "Oversized",
      lsn: options.lsn,
      table: options.table,
      message: `the change at LSN ${Lsn.format(options.lsn)} on ${options.table} is ${options.bytes} bytes, ` +
        `over the per-record limit of ${options.limit}: set OVERSIZED_RECORD_POLICY=drop to skip such changes, ` +
        `or raise the stream's maximum record size`
    })
  }
}

/**
 * What a failed Kinesis request (or record) means:
 * - `Throttled`, `ServerError`, `Network`: Kinesis is busy, failing on its side, or unreachable — retriable;
 * - `CredentialsUnavailable`: the credential provider could not supply credentials for now (IMDS or
 *   STS unreachable, a token expired during a refresh) — retriable;
 * - `InvalidCredentials`: AWS does not accept the credentials (unknown key, bad signature);
 * - `AccessDenied`: the credentials are valid but may not write to the stream;
 * - `KmsUnusable`: the stream's KMS key is disabled, missing or forbidden;
 * - `StreamMissing`: the stream does not exist;
 * - `InvalidRequest`: Kinesis rejected the request as invalid;
 * - `Unknown`: an error nothing above describes, not retried so that it is seen.
 */
export type KinesisErrorReason =
  | "Throttled"
  | "ServerError"
  | "Network"
  | "CredentialsUnavailable"
  | "InvalidCredentials"
  | "AccessDenied"
  | "KmsUnusable"
  | "StreamMissing"
  | "InvalidRequest"
  | "Unknown"

const kinesisRetriable: Readonly<Record<KinesisErrorReason, boolean>> = {
  Throttled: true,
  ServerError: true,
  Network: true,
  CredentialsUnavailable: true,
  InvalidCredentials: false,
  AccessDenied: false,
  KmsUnusable: false,
  StreamMissing: false,
  InvalidRequest: false,
  Unknown: false
}

/** A failed Kinesis request, with the code AWS (or the socket) gave. */
export class KinesisError extends Data.TaggedError("KinesisError")<{
  readonly reason: KinesisErrorReason
  readonly code: string
  readonly message: string
}> {
  get retriable(): boolean {
    return KinesisError.retriableReason(this.reason)
  }

  static retriableReason(reason: KinesisErrorReason): boolean {
    return kinesisRetriable[reason]
  }
}

/**
 * This instance lost the leader lock (or its connection): streaming stops, campaigning resumes.
 * Not a failure of the service, so not in a group: it is always retried.
 */
export class LeadershipLost extends Data.TaggedError("LeadershipLost")<{ readonly message: string }> {
  readonly retriable = true
}

/** Any error of the service. */
export type ServiceError = InvalidConfig | PgError | SlotError | DecodeError | KinesisError | LeadershipLost

/**
 * The service's typed errors and its one error policy.
 *
 * Every error carries `retriable`: retriable errors (network, throttling, slot busy, 5xx) are
 * retried with capped exponential backoff and jitter, for ever where data would otherwise be lost;
 * fatal ones (auth, missing stream, plugin or slot, invalid input) stop the service with one clear
 * message that says what to do, and leave the slot where it was.
 */
import * as Data from "effect/Data"
import { InvalidConfig } from "./config/EnvVar.ts"
import * as Lsn from "./domain/Lsn.ts"

export { InvalidConfig }

/** The TCP/TLS connection to PostgreSQL failed or dropped. */
export class PgConnectionError extends Data.TaggedError("PgConnectionError")<{
  readonly message: string
  readonly cause?: unknown
}> {
  readonly retriable = true
}

/** TLS could not be set up as PGSSLMODE demands (server refused TLS, certificate not trusted, wrong host). */
export class PgTlsError extends Data.TaggedError("PgTlsError")<{ readonly message: string }> {
  readonly retriable = false
}

/** Authentication failed or asked for a method we do not speak. */
export class PgAuthError extends Data.TaggedError("PgAuthError")<{ readonly message: string }> {
  readonly retriable = false
}

/** SQLSTATE classes worth retrying: connection exceptions, resources, operator intervention, object in use. */
const retriableSqlState = (code: string): boolean =>
  code.startsWith("08") || code.startsWith("53") || code.startsWith("57P") || code === "55006" ||
  code === "40001" || code === "40P01" || code === "55P03"

/** An ErrorResponse from the server, with its SQLSTATE. */
export class PgServerError extends Data.TaggedError("PgServerError")<{
  readonly code: string
  readonly message: string
  readonly detail?: string | undefined
  readonly hint?: string | undefined
}> {
  get retriable(): boolean {
    return retriableSqlState(this.code)
  }
}

/** The slot is in use by another connection (usually the previous leader's walsender, for a moment). */
export class SlotActive extends Data.TaggedError("SlotActive")<{ readonly slot: string; readonly pid?: number | undefined }> {
  readonly retriable = true
  override get message(): string {
    return `replication slot "${this.slot}" is active on another connection${this.pid === undefined ? "" : ` (pid ${this.pid})`}`
  }
}

/** The slot does not exist and REPLICATION_SLOT_CREATE=false. */
export class SlotMissing extends Data.TaggedError("SlotMissing")<{ readonly slot: string }> {
  readonly retriable = false
  override get message(): string {
    return `replication slot "${this.slot}" does not exist and REPLICATION_SLOT_CREATE=false: changes since it vanished are lost. ` +
      `Check why it was dropped (failover, manual drop), then set REPLICATION_SLOT_CREATE=true once to create it again`
  }
}

/** The slot exists with another output plugin. */
export class SlotPluginMismatch extends Data.TaggedError("SlotPluginMismatch")<{
  readonly slot: string
  readonly expected: string
  readonly actual: string
}> {
  readonly retriable = false
  override get message(): string {
    return `replication slot "${this.slot}" uses plugin ${this.actual}, but the service is configured for ${this.expected}: ` +
      `set REPLICATION_PLUGIN=${this.actual}, or use another REPLICATION_SLOT`
  }
}

/** The slot was invalidated (its WAL was removed): it can never stream again. */
export class SlotInvalidated extends Data.TaggedError("SlotInvalidated")<{
  readonly slot: string
  readonly reason: string
}> {
  readonly retriable = false
  override get message(): string {
    return `replication slot "${this.slot}" is invalidated (${this.reason}): the WAL it needed was removed and changes were lost. ` +
      `Drop it (SELECT pg_drop_replication_slot('${this.slot}')), re-snapshot consumers, and start again; raise max_slot_wal_keep_size or keep the service running to avoid it`
  }
}

/** The output plugin is not installed on the server, or the publication is missing and cannot be created. */
export class PluginUnavailable extends Data.TaggedError("PluginUnavailable")<{ readonly message: string }> {
  readonly retriable = false
}

/** A message from the slot that the decoder cannot read. Nothing at or after `lsn` is acknowledged. */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly lsn: Lsn.Lsn
  readonly reason: string
}> {
  readonly retriable = false
  override get message(): string {
    return `cannot decode the change at LSN ${Lsn.format(this.lsn)}: ${this.reason}`
  }
}

/** A failed Kinesis request, classified by its error code. */
export class KinesisError extends Data.TaggedError("KinesisError")<{
  readonly code: string
  readonly message: string
  readonly retriable: boolean
}> {}

/** A change over the per-record limit with OVERSIZED_RECORD_POLICY=fail. */
export class OversizedRecord extends Data.TaggedError("OversizedRecord")<{
  readonly lsn: Lsn.Lsn
  readonly table: string
  readonly bytes: number
  readonly limit: number
}> {
  readonly retriable = false
  override get message(): string {
    return `the change at LSN ${Lsn.format(this.lsn)} on ${this.table} is ${this.bytes} bytes, over the per-record limit of ${this.limit}: ` +
      `set OVERSIZED_RECORD_POLICY=drop to skip such changes, or raise the stream's maximum record size`
  }
}

/** The database's server_encoding is one the configured plugin cannot stream as UTF-8 faithfully. */
export class UnsupportedEncoding extends Data.TaggedError("UnsupportedEncoding")<{
  readonly encoding: string
  readonly plugin: string
  readonly hint: string
}> {
  readonly retriable = false
  override get message(): string {
    return `the database's server_encoding is ${this.encoding}, which the service cannot stream with ${this.plugin}: ${this.hint}`
  }
}

/** This instance lost the leader lock (or its connection): streaming stops, campaigning resumes. */
export class LeadershipLost extends Data.TaggedError("LeadershipLost")<{ readonly reason: string }> {
  readonly retriable = true
}

/** Any error of the service. */
export type ServiceError =
  | InvalidConfig
  | PgConnectionError
  | PgTlsError
  | PgAuthError
  | PgServerError
  | SlotActive
  | SlotMissing
  | SlotPluginMismatch
  | SlotInvalidated
  | PluginUnavailable
  | DecodeError
  | KinesisError
  | OversizedRecord
  | UnsupportedEncoding
  | LeadershipLost

/** The one retry decision: does waiting and trying again have a chance? */
export const isRetriable = (error: { readonly retriable: boolean }): boolean => error.retriable

/** Errors that restart the pipeline from the acknowledged position rather than stop the service. */
export const isRestartable = (error: ServiceError): boolean => error.retriable

/**
 * The contract between the replication reader and the pipeline: a pull of decoded changes and one
 * way to say "every change up to LSN X is handled".
 */
import type * as Effect from "effect/Effect"
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import type { Lsn } from "../domain/Lsn.ts"
import type { ServiceError } from "../Errors.ts"

export interface ReplicationSession {
  /** The slot's name and the LSN streaming started from. */
  readonly slot: string
  readonly startLsn: Lsn
  /** Whether opening the session created the slot (INITIAL_BACKFILL acts on it). */
  readonly slotCreated?: boolean | undefined
  /**
   * Waits for the next read and returns every change decoded from it, in WAL order (B/C boundaries
   * included). Not calling it stops reading the socket (back-pressure reaches the server through
   * TCP) while status updates keep the connection alive.
   */
  readonly take: Effect.Effect<ReadonlyArray<ChangeEvent>, ServiceError>
  /**
   * Every change up to `lsn` is handled: it becomes the flush position of the next status update.
   * Monotonic: an older LSN is ignored. Pass a commit's `ackLsn`.
   */
  readonly acknowledge: (lsn: Lsn) => Effect.Effect<void>
  /** The flush position last sent to the server (never goes backwards). */
  readonly flushed: Effect.Effect<Lsn>
  /** The server's WAL end as last reported (keepalives and XLogData), for lag metrics. */
  readonly serverWalEnd: Effect.Effect<Lsn>
  /** Sends a status update now with the acknowledged position (used at shutdown). */
  readonly sendStatusNow: Effect.Effect<void, ServiceError>
}

/**
 * How long to wait before retrying a PutRecords: the service's {@link Backoff} from
 * KINESIS_RETRY_BASE_MS to KINESIS_RETRY_MAX_MS, without a limit on attempts while the error is
 * retriable; a fatal error stops the schedule at once.
 */
import type * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import * as Backoff from "../Backoff.ts"
import type { KinesisError } from "../Errors.ts"

export interface RetryOptions {
  readonly baseMs: number
  readonly maxMs: number
}

/** The schedule for `Effect.retry` over a request that fails with {@link KinesisError}. */
export const schedule = (options: RetryOptions): Schedule.Schedule<Duration.Duration, KinesisError> =>
  Backoff.schedule({ baseMs: options.baseMs, maxMs: options.maxMs }).pipe(
    Schedule.setInputType<KinesisError>(),
    Schedule.while(({ input }) => input.retriable)
  )

/**
 * How long to wait before retrying a PutRecords: exponential from KINESIS_RETRY_BASE_MS (×2 each
 * time), jittered (×0.8…1.2), never above KINESIS_RETRY_MAX_MS, and without a limit on attempts
 * while the error is retriable; a fatal error stops the schedule at once.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { KinesisError } from "../Errors.ts"

export interface RetryOptions {
  readonly baseMs: number
  readonly maxMs: number
}

/** The schedule for `Effect.retry` over a request that fails with {@link KinesisError}. */
export const schedule = (options: RetryOptions): Schedule.Schedule<Duration.Duration, KinesisError> => {
  const cap = Duration.millis(options.maxMs)
  return Schedule.exponential(Duration.millis(options.baseMs), 2).pipe(
    Schedule.jittered,
    // the cap applies after the jitter, so no delay ever exceeds KINESIS_RETRY_MAX_MS
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, cap))),
    Schedule.setInputType<KinesisError>(),
    Schedule.while(({ input }) => input.retriable)
  )
}

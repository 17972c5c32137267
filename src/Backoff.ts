/**
 * The one backoff every retry site uses: exponential from a base (×2 per attempt), jittered
 * (×0.8…1.2), then capped, so that no delay ever exceeds the cap. Retries go on for as long as the
 * caller's schedule lets them (the Kinesis retry stops at a fatal error; the pipeline restart loop
 * starts a fresh backoff after a healthy period of streaming).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

export interface BackoffOptions {
  /** The first delay, in milliseconds. */
  readonly baseMs: number
  /** No delay is longer than this, in milliseconds, jitter included. */
  readonly maxMs: number
}

/** Delays of `baseMs`, `2 × baseMs`, `4 × baseMs`, … each jittered, then capped at `maxMs`. Never stops by itself. */
export const schedule = (options: BackoffOptions): Schedule.Schedule<Duration.Duration> => {
  const cap = Duration.millis(options.maxMs)
  return Schedule.exponential(Duration.millis(options.baseMs), 2).pipe(
    Schedule.jittered,
    // the cap applies after the jitter: no delay exceeds maxMs
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, cap)))
  )
}

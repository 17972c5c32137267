import { assert, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { KinesisError } from "../../src/Errors.ts"
import * as RetryPolicy from "../../src/pipeline/RetryPolicy.ts"

const throttled = new KinesisError({ reason: "Throttled", code: "ThrottlingException", message: "throttled" })
const denied = new KinesisError({ reason: "AccessDenied", code: "AccessDeniedException", message: "denied" })

describe("RetryPolicy.schedule", () => {
  it.effect("delays grow ×2 from the base, jittered within ±20%, never above the cap, without a limit", () =>
    Effect.gen(function*() {
      const step = yield* Schedule.toStep(RetryPolicy.schedule({ baseMs: 100, maxMs: 5_000 }))
      const delays: Array<number> = []
      for (let i = 0; i < 200; i++) {
        const [, delay] = yield* step(0, throttled)
        delays.push(Duration.toMillis(delay))
      }
      delays.forEach((delay, n) => {
        const nominal = 100 * 2 ** n
        expect(delay).toBeGreaterThanOrEqual(Math.min(nominal * 0.8, 5_000))
        expect(delay).toBeLessThanOrEqual(Math.min(nominal * 1.2, 5_000))
      })
      // the cap is reached and held: 200 retries and the schedule still continues
      expect(delays.slice(-10).every((delay) => delay === 5_000)).toBe(true)
      // jitter is real: the early delays are not exactly the nominal ones
      expect(delays.slice(0, 5).some((delay, n) => delay !== 100 * 2 ** n)).toBe(true)
    }))

  it.effect("retries a retriable failure until it succeeds, on virtual time", () =>
    Effect.gen(function*() {
      let attempts = 0
      const request = Effect.suspend(() => (++attempts <= 30 ? Effect.fail(throttled) : Effect.succeed("ok")))
      const fiber = yield* request.pipe(Effect.retry(RetryPolicy.schedule({ baseMs: 10, maxMs: 1_000 })), Effect.forkChild)
      yield* Effect.yieldNow
      assert.strictEqual(attempts, 1)
      // first retry is due within 8..12 ms
      yield* TestClock.adjust("7 millis")
      assert.strictEqual(attempts, 1)
      yield* TestClock.adjust("5 millis")
      assert.strictEqual(attempts, 2)
      // 30 retries at most 1 s each
      yield* TestClock.adjust("40 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), "ok")
      assert.strictEqual(attempts, 31)
    }))

  it.effect("stops at once on a fatal error", () =>
    Effect.gen(function*() {
      let attempts = 0
      const request = Effect.suspend(() => (++attempts < 3 ? Effect.fail(throttled) : Effect.fail(denied)))
      const fiber = yield* request.pipe(Effect.retry(RetryPolicy.schedule({ baseMs: 10, maxMs: 1_000 })), Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.code, "AccessDeniedException")
      assert.strictEqual(attempts, 3)
    }))
})

import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import * as Backoff from "../../src/Backoff.ts"

describe("Backoff.schedule", () => {
  it.effect("doubles from the base, jittered within ±20%, and the cap holds with the jitter included", () =>
    Effect.gen(function*() {
      for (let run = 0; run < 20; run++) {
        const step = yield* Schedule.toStep(Backoff.schedule({ baseMs: 500, maxMs: 3_000 }))
        for (let n = 0; n < 12; n++) {
          const [, delay] = yield* step(0, undefined)
          const ms = Duration.toMillis(delay)
          const nominal = 500 * 2 ** n
          expect(ms).toBeLessThanOrEqual(3_000)
          expect(ms).toBeGreaterThanOrEqual(Math.min(nominal * 0.8, 3_000))
          expect(ms).toBeLessThanOrEqual(nominal * 1.2)
        }
      }
    }))
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Signal from "../../src/pipeline/Signal.ts"

const yieldTimes = (n: number) => Effect.gen(function*() {
  for (let i = 0; i < n; i++) yield* Effect.yieldNow
})

describe("Signal", () => {
  it.effect("waitSince returns at once after a notify it has not seen, else waits for the next", () =>
    Effect.gen(function*() {
      const signal = Signal.make()
      const seen = signal.version()
      signal.notify()
      yield* signal.waitSince(seen)
      const waiting = yield* signal.waitSince(signal.version()).pipe(Effect.forkChild)
      yield* yieldTimes(10)
      assert.isUndefined(waiting.pollUnsafe(), "no notify yet")
      signal.notify()
      yield* Fiber.join(waiting)
    }))

  it.effect("waitAny wakes on whichever signal moves, once, and leaves no waiter behind", () =>
    Effect.gen(function*() {
      const a = Signal.make()
      const b = Signal.make()
      let woken = 0
      const waiting = yield* Signal.waitAny([[a, a.version()], [b, b.version()]]).pipe(
        Effect.tap(() => Effect.sync(() => woken++)),
        Effect.forkChild
      )
      yield* yieldTimes(10)
      assert.isUndefined(waiting.pollUnsafe())
      b.notify()
      yield* Fiber.join(waiting)
      a.notify()
      yield* yieldTimes(10)
      assert.strictEqual(woken, 1)
      // onNotify: one call, at the next notify only
      let calls = 0
      assert.isDefined(a.onNotify(a.version(), () => calls++))
      a.notify()
      a.notify()
      assert.strictEqual(calls, 1, "onNotify calls its function once")
    }))

  it.effect("waitAny returns at once when any version already moved", () =>
    Effect.gen(function*() {
      const a = Signal.make()
      const b = Signal.make()
      const seenB = b.version()
      b.notify()
      yield* Signal.waitAny([[a, a.version()], [b, seenB]])
      assert.isUndefined(b.onNotify(seenB, () => {}), "a moved version registers nothing")
    }))

  it.effect("an interrupted waitAny unregisters from every signal", () =>
    Effect.gen(function*() {
      const a = Signal.make()
      const b = Signal.make()
      let resumed = false
      const waiting = yield* Signal.waitAny([[a, a.version()], [b, b.version()]]).pipe(
        Effect.tap(() => Effect.sync(() => (resumed = true))),
        Effect.forkChild
      )
      yield* yieldTimes(10)
      yield* Fiber.interrupt(waiting)
      a.notify()
      b.notify()
      yield* yieldTimes(10)
      assert.isFalse(resumed)
    }))
})

import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { EventEmitter } from "node:events"
import * as SecondSignal from "../../src/SecondSignal.ts"

/** A process stand-in: signals are emitted by the test, exits recorded. */
const fakeHost = () => {
  const emitter = new EventEmitter()
  const exits: Array<number> = []
  const host: SecondSignal.SignalHost = {
    on: (signal, listener) => emitter.on(signal, listener),
    off: (signal, listener) => emitter.off(signal, listener),
    exit: (code) => void exits.push(code)
  }
  return { emitter, exits, host }
}

describe("SecondSignal", () => {
  it.effect("the first signal is left to the runtime; a second one, SIGTERM or SIGINT, exits with 130", () =>
    Effect.gen(function*() {
      const { emitter, exits, host } = fakeHost()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* SecondSignal.make(host)
        emitter.emit("SIGTERM")
        expect(exits).toEqual([])
        emitter.emit("SIGINT")
        expect(exits).toEqual([130])
      }))
    }))

  it.effect("its listeners are removed when the scope closes", () =>
    Effect.gen(function*() {
      const { emitter, exits, host } = fakeHost()
      yield* Effect.scoped(SecondSignal.make(host))
      expect(emitter.listenerCount("SIGTERM") + emitter.listenerCount("SIGINT")).toBe(0)
      emitter.emit("SIGTERM")
      emitter.emit("SIGTERM")
      expect(exits).toEqual([])
    }))
})

import { describe, expect, it } from "vitest"
import * as DeferredKeys from "../../src/replication/DeferredKeys.ts"

const image = (values: Record<string, string>) => new Map(Object.entries(values))

describe("DeferredKeys.TransactionKeys", () => {
  it("lets records of the row a key holds through, and leaves out the old holder's", () => {
    const keys = new DeferredKeys.TransactionKeys()
    // untracked keys: every record concerns the row
    expect(keys.concerns("t:[1]", image({ id: "1", v: "\"a\"" }), "departed")).toBe(true)
    // row A takes key 2 while row B still holds it
    keys.arrived("t:[2]", image({ id: "2", v: "\"a\"" }))
    expect(keys.concerns("t:[2]", image({ id: "2", v: "\"b\"" }), { updated: image({ v: "\"b2\"" }) })).toBe(false)
    expect(keys.concerns("t:[2]", image({ id: "2", v: "\"b\"" }), "departed")).toBe(false)
    // A's own update is merged; its departure then matches its new values
    expect(keys.concerns("t:[2]", image({ id: "2", v: "\"a\"" }), { updated: image({ v: "\"a2\"" }) })).toBe(true)
    expect(keys.concerns("t:[2]", image({ id: "2", v: "\"a\"" }), "departed")).toBe(false)
    expect(keys.concerns("t:[2]", image({ id: "2", v: "\"a2\"" }), "departed")).toBe(true)
    // once it left, the key is untracked again
    expect(keys.concerns("t:[2]", image({ id: "2", v: "\"b\"" }), "departed")).toBe(true)
    // a column absent from one side (an unchanged TOAST value) is not compared
    keys.arrived("t:[3]", image({ id: "3" }))
    expect(keys.concerns("t:[3]", image({ id: "3", big: "\"x\"" }), "departed")).toBe(true)
  })

  it("forgets everything at a new transaction, and tracks at most MAX_TRACKED keys", () => {
    const keys = new DeferredKeys.TransactionKeys()
    keys.arrived("t:[1]", image({ v: "1" }))
    keys.reset()
    expect(keys.concerns("t:[1]", image({ v: "2" }), "departed")).toBe(true)
    for (let i = 0; i < DeferredKeys.MAX_TRACKED; i++) keys.arrived(`t:[${i}]`, image({ v: "1" }))
    keys.arrived("t:[beyond]", image({ v: "1" }))
    expect(keys.concerns("t:[beyond]", image({ v: "2" }), "departed")).toBe(true)
    expect(keys.concerns("t:[0]", image({ v: "2" }), "departed")).toBe(false)
  })
})

import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { hashOf, KeyTable } from "../../src/pipeline/KeyTable.ts"

/** Operations on keys drawn from `keys` distinct ones: add (or replace) a value, remove, look up. */
const operations = (keys: number) =>
  fc.array(
    fc.record({ op: fc.constantFrom("set", "remove", "get"), key: fc.integer({ min: 0, max: keys - 1 }), burst: fc.integer({ min: 1, max: 400 }) }),
    { minLength: 1, maxLength: 60 }
  )

/** Applies operations (each on `burst` consecutive keys) to a table and to a Map; they must agree throughout. */
const agreesWithMap = (table: KeyTable<number>, ops: ReadonlyArray<{ op: string; key: number; burst: number }>, keys: number) => {
  const model = new Map<string, number>()
  let n = 0
  for (const { op, key, burst } of ops) {
    for (let b = 0; b < burst; b++) {
      const k = `public.t:[${(key + b) % keys}]`
      const hash = table.hash(k)
      const slot = table.lookup(k, hash)
      assert.strictEqual(slot >= 0, model.has(k), `presence of ${k}`)
      if (slot >= 0) assert.strictEqual(table.valueAt(slot), model.get(k))
      if (op === "set") {
        n++
        if (slot >= 0) table.setAt(slot, n)
        else table.insert(slot, k, hash, n)
        model.set(k, n)
      } else if (op === "remove" && slot >= 0) {
        table.removeAt(slot)
        model.delete(k)
      }
      assert.strictEqual(table.size, model.size)
    }
  }
  // every key still present is found with its value; every other one is absent
  for (let i = 0; i < keys; i++) {
    const k = `public.t:[${i}]`
    const slot = table.lookup(k, table.hash(k))
    assert.strictEqual(slot >= 0 ? table.valueAt(slot) : undefined, model.get(k))
  }
}

describe("KeyTable", () => {
  it("agrees with a Map under random additions and removals, across growth and shrinking", () =>
    fc.assert(fc.property(operations(5_000), (ops) => agreesWithMap(new KeyTable<number>(), ops, 5_000)), { numRuns: 40 }))

  it("agrees with a Map when hashes collide (every key in one of 3 hashes, runs across the table's end)", () =>
    fc.assert(
      fc.property(operations(600), (ops) =>
        agreesWithMap(new KeyTable<number>((key) => (key.length % 3) * 0x3ff + 1_022), ops, 600)),
      { numRuns: 40 }
    ))

  it("the hash depends on the seed and on every character", () => {
    assert.notStrictEqual(hashOf("public.t:[1]", 1), hashOf("public.t:[1]", 2))
    assert.notStrictEqual(hashOf("public.t:[12]", 7), hashOf("public.t:[21]", 7))
    assert.notStrictEqual(hashOf("a".repeat(200) + "b", 7), hashOf("a".repeat(200) + "c", 7))
  })

  it("grows with the keys present and shrinks back once they are gone", () => {
    const table = new KeyTable<number>()
    const capacity = () => (table as unknown as { readonly keys: ReadonlyArray<unknown> }).keys.length
    assert.strictEqual(capacity(), 1_024)
    for (let i = 0; i < 20_000; i++) {
      const k = `k${i}`
      const hash = table.hash(k)
      table.insert(table.lookup(k, hash), k, hash, i)
    }
    assert.strictEqual(table.size, 20_000)
    assert.isAtLeast(capacity(), 40_000)
    for (let i = 0; i < 20_000; i++) {
      const k = `k${i}`
      table.removeAt(table.lookup(k, table.hash(k)))
    }
    assert.strictEqual(table.size, 0)
    assert.strictEqual(capacity(), 1_024)
  })
})

import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import * as BatchScheduler from "../../src/pipeline/BatchScheduler.ts"

/** A record of key `key`, `n`-th added, of `bytes` recordBytes (only what the scheduler reads). */
const record = (key: number, n: number, bytes: number): BatchScheduler.Outgoing =>
  ({ partitionKey: `k${key}`, recordBytes: bytes, arrivedAt: n, n }) as unknown as BatchScheduler.Outgoing
const indexOf = (r: BatchScheduler.Outgoing): number => (r as unknown as { readonly n: number }).n

/**
 * Random runs: records added in bursts (thousands in all, so the FIFOs' rings wrap and grow), batches
 * taken within random limits, and in-flight batches acknowledged in a random order.
 */
const runs = fc.record({
  keys: fc.integer({ min: 1, max: 3000 }),
  bursts: fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 25 }),
  maxRecords: fc.integer({ min: 1, max: 500 }),
  maxBytes: fc.integer({ min: 1, max: 4000 }),
  maxInflight: fc.integer({ min: 1, max: 8 }),
  seed: fc.integer()
})

type Scenario = typeof runs extends fc.Arbitrary<infer A> ? A : never

/** Runs a scenario; returns the batches in the order they were taken, and the records added. */
const simulate = (ordering: "per_key" | "relaxed", s: Scenario) => {
  let seed = s.seed | 0
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0
    return (seed >>> 8) / 16_777_216
  }
  const scheduler = BatchScheduler.make(ordering)
  const limits = { maxRecords: s.maxRecords, maxBytes: s.maxBytes }
  const added: Array<BatchScheduler.Outgoing> = []
  const batches: Array<ReadonlyArray<BatchScheduler.Outgoing>> = []
  const inflight: Array<ReadonlyArray<BatchScheduler.Outgoing>> = []
  const flying = new Set<string>()
  const step = () => {
    while (inflight.length < s.maxInflight && scheduler.readyCount() > 0) {
      const ready = scheduler.readyCount()
      const batch = scheduler.next(limits)
      assert.isAbove(batch.length, 0)
      assert.isAtMost(batch.length, s.maxRecords)
      assert.strictEqual(scheduler.readyCount(), ready - batch.length)
      let bytes = 0
      for (const r of batch) bytes += r.recordBytes
      if (batch.length > 1) assert.isAtMost(bytes, s.maxBytes)
      // as large as the limits allow: a ready record left out did not fit (its arrivedAt is its index)
      if (batch.length < s.maxRecords && scheduler.readyCount() > 0) {
        assert.isAbove(bytes + added[scheduler.oldestReady()!]!.recordBytes, s.maxBytes, "a ready record that fit was left out")
      }
      if (ordering === "per_key") {
        for (const r of batch) {
          assert.isFalse(flying.has(r.partitionKey), "two records of one key in flight")
          flying.add(r.partitionKey)
        }
      }
      inflight.push(batch)
      batches.push(batch)
    }
    if (inflight.length === 0) return false
    const [batch] = inflight.splice(Math.floor(random() * inflight.length), 1)
    for (const r of batch!) flying.delete(r.partitionKey)
    scheduler.done(batch!)
    // acknowledged again, once the key moved on: ignored
    if (random() < 0.1) scheduler.done(batch!)
    return true
  }
  for (const burst of s.bursts) {
    for (let i = 0; i < burst; i++) {
      const r = record(Math.floor(random() * s.keys), added.length, 1 + Math.floor(random() * 300))
      added.push(r)
      scheduler.add(r)
    }
    const steps = Math.floor(random() * 4)
    for (let i = 0; i < steps; i++) step()
  }
  while (step());
  assert.strictEqual(scheduler.waiting(), 0)
  assert.strictEqual(scheduler.readyCount(), 0)
  return { added, batches }
}

describe("BatchScheduler", () => {
  it("per_key: every record goes out once, within the limits, one per key in flight, each key's in order", () =>
    fc.assert(
      fc.property(runs, (s) => {
        const { added, batches } = simulate("per_key", s)
        const sent = batches.flat()
        assert.strictEqual(sent.length, added.length)
        assert.strictEqual(new Set(sent).size, added.length)
        const lastOf = new Map<string, number>()
        for (const r of sent) {
          const before = lastOf.get(r.partitionKey) ?? -1
          assert.isAbove(indexOf(r), before, `key ${r.partitionKey} out of order`)
          lastOf.set(r.partitionKey, indexOf(r))
        }
      }),
      { numRuns: 60 }
    ))

  it("relaxed: every record goes out once, in the order added, within the limits", () =>
    fc.assert(
      fc.property(runs, (s) => {
        const { added, batches } = simulate("relaxed", s)
        assert.deepStrictEqual(batches.flat().map(indexOf), added.map(indexOf))
      }),
      { numRuns: 60 }
    ))

  it("a batch is as large as the limits allow: it stops only at maxRecords, maxBytes or the last ready record", () => {
    const scheduler = BatchScheduler.make("per_key")
    for (let i = 0; i < 3000; i++) scheduler.add(record(i, i, 10))
    assert.strictEqual(scheduler.readyCount(), 3000)
    assert.isTrue(scheduler.hasFullBatch({ maxRecords: 500, maxBytes: 1_000_000 }))
    assert.strictEqual(scheduler.next({ maxRecords: 500, maxBytes: 1_000_000 }).length, 500)
    assert.strictEqual(scheduler.next({ maxRecords: 500, maxBytes: 995 }).length, 99)
    assert.strictEqual(scheduler.oldestReady(), 599)
    // records that add up to exactly maxBytes fill one batch
    assert.isTrue(scheduler.hasFullBatch({ maxRecords: 5000, maxBytes: 24_010 }))
    assert.isFalse(scheduler.hasFullBatch({ maxRecords: 5000, maxBytes: 24_011 }))
    const rest = scheduler.next({ maxRecords: 5000, maxBytes: 24_010 })
    assert.strictEqual(rest.length, 2401)
    assert.strictEqual(indexOf(rest[0]!), 599)
    assert.strictEqual(indexOf(rest[2400]!), 2999)
    assert.isUndefined(scheduler.oldestReady())
    // a first record over maxBytes still goes out, alone
    scheduler.add(record(-1, 3000, 50))
    scheduler.add(record(-2, 3001, 5))
    assert.deepStrictEqual(scheduler.next({ maxRecords: 500, maxBytes: 10 }).map(indexOf), [3000])
  })
})

import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Frontier from "../../src/pipeline/Frontier.ts"
import { boundary, change } from "./fixtures.ts"

/** Transactions of 0..4 changes each: B, changes, C (with its ackLsn). */
const workload = (sizes: ReadonlyArray<number>): Array<ChangeEvent> =>
  sizes.flatMap((size, tx) => {
    const changes = Array.from({ length: size }, (_, i) => change(i, { seq: tx * 10 + i }))
    const commit = boundary("C")
    return [boundary("B"), ...changes, { ...commit, ackLsn: commit.lsn + 8n }]
  })

/** The expected frontier: the ackLsn of the last commit whose predecessors are all done. */
const expected = (events: ReadonlyArray<ChangeEvent>, done: ReadonlySet<ChangeEvent>, start: bigint): bigint => {
  let result = start
  for (const event of events) {
    if (event.action === "C") result = event.ackLsn > result ? event.ackLsn : result
    else if (event.action !== "B" && !done.has(event)) break
  }
  return result
}

describe("Frontier", () => {
  it("moves over transactions without published changes at once", () => {
    const frontier = Frontier.make(5n)
    const events = workload([0, 0])
    frontier.register(events)
    expect(frontier.current()).toBe(events[3]!.ackLsn)
  })

  it("does not move past an unfinished change when later ones finish first", () => {
    const frontier = Frontier.make(0n)
    const events = workload([1, 1, 1]) // B x C B y C B z C
    frontier.register(events)
    expect(frontier.current()).toBe(0n)
    frontier.complete([events[7]!, events[4]!]) // z and y
    expect(frontier.current()).toBe(0n)
    frontier.complete([events[1]!]) // x
    expect(frontier.current()).toBe(events[8]!.ackLsn)
    expect(frontier.outstanding()).toBe(0)
  })

  it("is always the highest commit with every predecessor done, and never goes backwards (random completion orders)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 50 }),
        (sizes, registerChunks, picks, completeChunks) => {
          const events = workload(sizes)
          const frontier = Frontier.make(1n)
          // register in a few read-sized chunks, completing random registered changes in between
          const chunk = Math.ceil(events.length / registerChunks)
          const registered: Array<ChangeEvent> = []
          const open: Array<ChangeEvent> = []
          const done = new Set<ChangeEvent>()
          let previous = frontier.current()
          let p = 0
          let c = 0
          const check = () => {
            const now = frontier.current()
            expect(now).toBe(expected(registered, done, 1n))
            // the bookkeeping is exactly the registered changes not yet done
            expect(frontier.outstanding()).toBe(open.length)
            expect(now >= previous).toBe(true)
            previous = now
          }
          for (let start = 0; start < events.length; start += chunk) {
            const slice = events.slice(start, start + chunk)
            frontier.register(slice)
            registered.push(...slice)
            open.push(...slice.filter((e) => e.action !== "B" && e.action !== "C"))
            check()
            // complete a random batch of the open ones, in random order
            const n = Math.min(open.length, completeChunks[c++ % completeChunks.length]!)
            const batch: Array<ChangeEvent> = []
            for (let i = 0; i < n; i++) batch.push(open.splice(picks[p++ % picks.length]! % open.length, 1)[0]!)
            batch.forEach((e) => done.add(e))
            frontier.complete(batch)
            check()
          }
          while (open.length > 0) {
            const n = Math.min(open.length, completeChunks[c++ % completeChunks.length]!)
            const batch: Array<ChangeEvent> = []
            for (let i = 0; i < n; i++) batch.push(open.splice(picks[p++ % picks.length]! % open.length, 1)[0]!)
            batch.forEach((e) => done.add(e))
            frontier.complete(batch)
            check()
          }
          // everything done: the frontier is the last commit's ackLsn
          expect(frontier.current()).toBe(events[events.length - 1]!.ackLsn)
          expect(frontier.outstanding()).toBe(0)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("ignores duplicate and unknown completions", () => {
    const frontier = Frontier.make(0n)
    const events = workload([2])
    frontier.register(events)
    frontier.complete([events[1]!, events[1]!, change(99)])
    expect(frontier.current()).toBe(0n)
    frontier.complete([events[2]!])
    expect(frontier.current()).toBe(events[3]!.ackLsn)
  })

  it("ignores completions of changes another frontier registered", () => {
    const events = workload([2])
    const mine = Frontier.make(0n)
    const other = Frontier.make(0n)
    mine.register(events)
    other.complete([events[1]!, events[2]!])
    expect(other.outstanding()).toBe(0)
    expect(mine.current()).toBe(0n)
    expect(mine.outstanding()).toBe(2)
    mine.complete([events[1]!, events[2]!])
    expect(mine.current()).toBe(events[3]!.ackLsn)
  })

  it("keeps its bookkeeping correct with 10 000 outstanding changes", () => {
    const frontier = Frontier.make(0n)
    const events = workload(Array.from({ length: 2_500 }, () => 4))
    frontier.register(events)
    const changes = events.filter((e) => e.action !== "B" && e.action !== "C")
    expect(frontier.outstanding()).toBe(10_000)
    frontier.complete(changes.slice(1))
    expect(frontier.current()).toBe(0n)
    expect(frontier.outstanding()).toBe(1)
    frontier.complete(changes.slice(0, 1))
    expect(frontier.current()).toBe(events[events.length - 1]!.ackLsn)
    expect(frontier.outstanding()).toBe(0)
  })

  it("tracks only the unfinished change while one change is stuck and 200 000 events flow past it", () => {
    const frontier = Frontier.make(0n)
    const first = workload([1])
    frontier.register(first)
    const stuck = first[1]!
    let lastAck = 0n
    for (let round = 0; round < 10_000; round++) {
      const events = workload([3, 2])
      frontier.register(events)
      frontier.complete(events.filter((e) => e.action !== "B" && e.action !== "C"))
      lastAck = events[events.length - 1]!.ackLsn
      expect(frontier.outstanding()).toBe(1)
    }
    expect(frontier.current()).toBe(0n)
    frontier.complete([stuck])
    expect(frontier.current()).toBe(lastAck)
    expect(frontier.outstanding()).toBe(0)
  })

  it("equals a reference model under random interleavings of reads and completions, stuck changes included", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("read" as const), sizes: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }) }),
            fc.record({ op: fc.constant("complete" as const), picks: fc.array(fc.nat(), { maxLength: 6 }), tailFirst: fc.boolean() })
          ),
          { maxLength: 80 }
        ),
        (ops) => {
          const frontier = Frontier.make(1n)
          const registered: Array<ChangeEvent> = []
          const open: Array<ChangeEvent> = []
          const done = new Set<ChangeEvent>()
          for (const op of ops) {
            if (op.op === "read") {
              const events = workload(op.sizes)
              frontier.register(events)
              registered.push(...events)
              open.push(...events.filter((e) => e.action !== "B" && e.action !== "C"))
            } else if (open.length > 0) {
              // completions often skip the oldest open change (a stuck key), sometimes repeat one
              const from = op.tailFirst && open.length > 1 ? 1 : 0
              const batch: Array<ChangeEvent> = []
              for (const pick of op.picks) {
                if (open.length <= from) break
                const event = open.splice(from + (pick % (open.length - from)), 1)[0]!
                batch.push(event, event)
                done.add(event)
              }
              frontier.complete(batch)
            }
            expect(frontier.current()).toBe(expected(registered, done, 1n))
            expect(frontier.outstanding()).toBe(open.length)
          }
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("Frontier, reads of many changes (done flags as bits)", () => {
  /** Sizes that put transaction ends and first-undone changes on and around 32-bit word and 512-change edges. */
  const edgeSize = fc.oneof(
    fc.constantFrom(0, 1, 30, 31, 32, 33, 63, 64, 65, 95, 96, 97, 511, 512, 513),
    fc.integer({ min: 0, max: 700 })
  )

  it("equals the reference model for reads of 1..2000 changes, completed in any order and batch size", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(edgeSize, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 3 }),
        fc.constantFrom("random", "reverse", "ascending", "oldestLast"),
        fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 10 }),
        (reads, order, picks, batchSizes) => {
          const frontier = Frontier.make(1n)
          const registered: Array<ChangeEvent> = []
          const open: Array<ChangeEvent> = []
          for (const sizes of reads) {
            const events = workload(sizes.map((size) => Math.min(size, 2_000)))
            frontier.register(events)
            registered.push(...events)
            open.push(...events.filter((e) => e.action !== "B" && e.action !== "C"))
          }
          expect(frontier.outstanding()).toBe(open.length)
          if (order === "reverse") open.reverse()
          else if (order === "oldestLast") open.push(open.shift()!)
          const done = new Set<ChangeEvent>()
          let previous = frontier.current()
          let p = 0
          let b = 0
          while (open.length > 0) {
            const n = Math.min(open.length, batchSizes[b++ % batchSizes.length]!)
            const batch = order === "random"
              ? Array.from({ length: n }, () => open.splice(picks[p++ % picks.length]! % open.length, 1)[0]!)
              : open.splice(0, n)
            batch.forEach((e) => done.add(e))
            frontier.complete(batch)
            const now = frontier.current()
            expect(now).toBe(expected(registered, done, 1n))
            expect(frontier.outstanding()).toBe(open.length)
            expect(now >= previous).toBe(true)
            previous = now
          }
          expect(frontier.current()).toBe(registered[registered.length - 1]!.ackLsn)
        }
      ),
      { numRuns: 150 }
    )
  })

  it("holds at the one unfinished change of a read, whatever its index, then moves over the whole read", () => {
    for (const count of [31, 32, 33, 63, 64, 65, 511, 512, 513, 1_000, 2_000]) {
      for (const stuck of [0, 30, 31, 32, 33, 62, 63, 64, 65, 510, 511, 512, 513, count - 2, count - 1]) {
        if (stuck < 0 || stuck >= count) continue
        const frontier = Frontier.make(0n)
        // one transaction per change: a commit after each, so the frontier stops exactly at the stuck one
        const events = workload(Array.from({ length: count }, () => 1))
        frontier.register(events)
        const changes = events.filter((e) => e.action !== "B" && e.action !== "C")
        frontier.complete(changes.filter((_, i) => i !== stuck))
        // the commit just before the stuck change (its transaction's B is at 3 * stuck)
        expect(frontier.current()).toBe(stuck === 0 ? 0n : events[3 * stuck - 1]!.ackLsn)
        expect(frontier.outstanding()).toBe(1)
        frontier.complete([changes[stuck]!])
        expect(frontier.current()).toBe(events[events.length - 1]!.ackLsn)
        expect(frontier.outstanding()).toBe(0)
      }
    }
  })
})

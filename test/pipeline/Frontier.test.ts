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

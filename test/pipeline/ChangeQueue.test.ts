import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import fc from "fast-check"
import * as ChangeQueue from "../../src/pipeline/ChangeQueue.ts"

const sized = (options: { maxMessages: number; maxBytes: number }) =>
  ChangeQueue.make<number>({ ...options, sizeOf: (n) => n })

/** Lets other fibers run until `condition` holds (in-memory work only: no clock involved). */
const settle = (condition: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000 && !condition(); i++) yield* Effect.yieldNow
    assert.isTrue(condition(), "condition not reached")
  })

describe("ChangeQueue", () => {
  it.effect("suspends the offerer at the count bound and resumes it on release", () =>
    Effect.gen(function*() {
      const queue = sized({ maxMessages: 3, maxBytes: 1_000 })
      const offer = yield* queue.offerAll([1, 1, 1, 1, 1]).pipe(Effect.forkChild)
      yield* settle(() => queue.heldCount() === 3)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.strictEqual(queue.heldCount(), 3)
      assert.isUndefined(offer.pollUnsafe())
      const taken = yield* queue.take
      assert.deepStrictEqual(taken, [1, 1, 1])
      // taken but not released: still counted
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.strictEqual(queue.heldCount(), 3)
      queue.release(taken.slice(0, 2))
      yield* Fiber.join(offer)
      assert.strictEqual(queue.heldCount(), 3)
      assert.strictEqual(queue.buffered(), 2)
    }))

  it.effect("bounds bytes until release, not until take", () =>
    Effect.gen(function*() {
      const queue = sized({ maxMessages: 100, maxBytes: 100 })
      const offer = yield* queue.offerAll([40, 40, 40, 10]).pipe(Effect.forkChild)
      yield* settle(() => queue.heldBytes() === 80)
      const first = yield* queue.take
      assert.deepStrictEqual(first, [40, 40])
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.strictEqual(queue.heldBytes(), 80, "taking does not free the bound")
      assert.isUndefined(offer.pollUnsafe())
      queue.release([40])
      yield* Fiber.join(offer)
      assert.strictEqual(queue.heldBytes(), 90)
      assert.isTrue(queue.heldBytes() <= 100)
    }))

  it.effect("admits an item over the byte bound alone, when nothing else is held", () =>
    Effect.gen(function*() {
      const queue = sized({ maxMessages: 100, maxBytes: 100 })
      yield* queue.offerAll([10])
      const offer = yield* queue.offerAll([500, 10]).pipe(Effect.forkChild)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.strictEqual(queue.heldBytes(), 10)
      queue.release(yield* queue.take)
      yield* settle(() => queue.heldBytes() === 500)
      assert.deepStrictEqual(yield* queue.take, [500])
      queue.release([500])
      yield* Fiber.join(offer)
      assert.deepStrictEqual(yield* queue.take, [10])
    }))

  it.effect("take waits for items; after end it drains, then returns empty; poll never waits", () =>
    Effect.gen(function*() {
      const queue = sized({ maxMessages: 10, maxBytes: 100 })
      assert.deepStrictEqual(queue.poll(), [])
      const taker = yield* queue.take.pipe(Effect.forkChild)
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.isUndefined(taker.pollUnsafe())
      yield* queue.offerAll([1, 2])
      assert.deepStrictEqual(yield* Fiber.join(taker), [1, 2])
      yield* queue.offerAll([3])
      queue.end()
      assert.isTrue(queue.isEnded())
      assert.deepStrictEqual(yield* queue.take, [3])
      assert.deepStrictEqual(yield* queue.take, [])
      yield* queue.offerAll([4])
      assert.strictEqual(queue.buffered(), 0, "offers after end are ignored")
    }))

  it.effect("poll takes at most the number asked for, oldest first; the rest stays buffered", () =>
    Effect.gen(function*() {
      const queue = ChangeQueue.make<number>({ maxMessages: 10_000, maxBytes: 100_000, sizeOf: () => 1 })
      const items = Array.from({ length: 3_000 }, (_, i) => i)
      yield* queue.offerAll(items)
      const taken: Array<number> = []
      for (const max of [0, 1, 1_500, 700, 10_000]) {
        const polled = queue.poll(max)
        assert.isAtMost(polled.length, max)
        taken.push(...polled)
        assert.strictEqual(queue.buffered(), 3_000 - taken.length)
      }
      assert.deepStrictEqual(taken, items)
      assert.strictEqual(queue.heldCount(), 3_000, "held until released, not until taken")
      yield* queue.offerAll([3_000])
      assert.deepStrictEqual(queue.poll(), [3_000])
    }))

  it.effect("items that are views of one buffer count it whole, once, until the last is released", () =>
    Effect.gen(function*() {
      const first = new Uint8Array(1_000)
      const second = new Uint8Array(1_000)
      const views = [first.subarray(0, 10), first.subarray(10, 20), first.subarray(20, 30), second.subarray(0, 10)]
      const queue = ChangeQueue.make<Uint8Array>({
        maxMessages: 100,
        maxBytes: 2_500,
        sizeOf: () => 8,
        bufferOf: (view) => view.buffer
      })
      yield* queue.offerAll(views.slice(0, 3))
      assert.strictEqual(queue.heldBytes(), 1_000 + 3 * 8)
      yield* queue.offerAll(views.slice(3))
      assert.strictEqual(queue.heldBytes(), 2_000 + 4 * 8)
      const taken = yield* queue.take
      queue.release(taken.slice(0, 2))
      assert.strictEqual(queue.heldBytes(), 2_000 + 2 * 8, "a view of the first buffer is still held")
      queue.release(taken.slice(2, 3))
      assert.strictEqual(queue.heldBytes(), 1_000 + 8)
      queue.release(taken.slice(3))
      assert.strictEqual(queue.heldBytes(), 0)
      assert.strictEqual(queue.heldCount(), 0)
    }))

  it.effect("a shared buffer that would exceed the bound waits for releases, then is counted once", () =>
    Effect.gen(function*() {
      const a = new Uint8Array(600)
      const b = new Uint8Array(600)
      const queue = ChangeQueue.make<Uint8Array>({ maxMessages: 100, maxBytes: 1_000, sizeOf: () => 0, bufferOf: (v) => v.buffer })
      yield* queue.offerAll([a.subarray(0, 1)])
      const offer = yield* queue.offerAll([b.subarray(0, 1), b.subarray(1, 2), a.subarray(1, 2)]).pipe(Effect.forkChild)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.strictEqual(queue.heldBytes(), 600, "b's buffer does not fit beside a's")
      queue.release(yield* queue.take)
      yield* settle(() => queue.heldCount() === 2)
      assert.strictEqual(queue.heldBytes(), 600, "b's buffer counted once for its two views")
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.isUndefined(offer.pollUnsafe(), "a's buffer, released, must be counted again and does not fit")
      queue.release(yield* queue.take)
      yield* Fiber.join(offer)
      assert.strictEqual(queue.heldBytes(), 600)
      assert.strictEqual(queue.heldCount(), 1)
    }))

  it("counts each shared buffer whole and once, however its views are offered and released", () =>
    fc.assert(fc.property(
      // views of three buffers in any order, offered in chunks, released in another order
      fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
      fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
      fc.integer(),
      (owners, offerChunks, releaseChunks, seed) => {
        const buffers = [new ArrayBuffer(1_000), new ArrayBuffer(2_000), new ArrayBuffer(4_000)]
        const items = owners.map((owner) => ({ owner, buffer: buffers[owner]! }))
        const queue = ChangeQueue.make<(typeof items)[number]>({
          maxMessages: 1_000,
          maxBytes: 1_000_000,
          sizeOf: () => 10,
          bufferOf: (item) => item.buffer
        })
        const held = new Set<(typeof items)[number]>()
        const expected = () => {
          const owners = new Set([...held].map((item) => item.buffer))
          return 10 * held.size + [...owners].reduce((sum, b) => sum + b.byteLength, 0)
        }
        const chunks = (list: ReadonlyArray<(typeof items)[number]>, sizes: ReadonlyArray<number>) => {
          const out: Array<Array<(typeof items)[number]>> = []
          for (let i = 0, k = 0; i < list.length; k++) {
            const n = sizes[k % sizes.length]!
            out.push(list.slice(i, i + n))
            i += n
          }
          return out
        }
        for (const chunk of chunks(items, offerChunks)) {
          Effect.runSync(queue.offerAll(chunk))
          for (const item of chunk) held.add(item)
          assert.strictEqual(queue.heldBytes(), expected())
        }
        // release in a shuffled order
        const order = [...queue.poll()]
        let state = seed
        for (let i = order.length - 1; i > 0; i--) {
          state = (state * 1_103_515_245 + 12_345) | 0
          const j = Math.abs(state) % (i + 1)
          ;[order[i], order[j]] = [order[j]!, order[i]!]
        }
        for (const chunk of chunks(order, releaseChunks)) {
          queue.release(chunk)
          for (const item of chunk) held.delete(item)
          assert.strictEqual(queue.heldBytes(), expected())
        }
        assert.strictEqual(queue.heldCount(), 0)
      }
    )))

  it("hands out items in the order offered, whatever the offers and polls (thousands buffered at once)", () =>
    fc.assert(fc.property(
      // offers of up to 2,000 items and polls of up to 2,500, interleaved
      fc.array(
        fc.oneof(
          fc.record({ offer: fc.integer({ min: 0, max: 2_000 }) }),
          fc.record({ poll: fc.integer({ min: 0, max: 2_500 }) })
        ),
        { minLength: 1, maxLength: 30 }
      ),
      (ops) => {
        const queue = ChangeQueue.make<number>({ maxMessages: 1_000_000, maxBytes: 1_000_000, sizeOf: () => 1 })
        let offered = 0
        let taken = 0
        for (const op of ops) {
          if ("offer" in op) {
            const items = Array.from({ length: op.offer }, (_, i) => offered + i)
            Effect.runSync(queue.offerAll(items))
            offered += op.offer
          } else {
            const items = queue.poll(op.poll)
            assert.deepStrictEqual(items, Array.from({ length: Math.min(op.poll, offered - taken) }, (_, i) => taken + i))
            taken += items.length
            queue.release(items)
          }
          assert.strictEqual(queue.buffered(), offered - taken)
          assert.strictEqual(queue.heldCount(), offered - taken)
        }
        assert.deepStrictEqual(queue.poll(), Array.from({ length: offered - taken }, (_, i) => taken + i))
      }
    )))

  it("hands out the very items offered, oldest first, across the buffer's growth", () => {
    const queue = ChangeQueue.make<{ readonly n: number }>({ maxMessages: 100_000, maxBytes: 100_000, sizeOf: () => 1 })
    const items = Array.from({ length: 5_000 }, (_, n) => ({ n }))
    Effect.runSync(queue.offerAll(items.slice(0, 700)))
    const first = queue.poll(600)
    Effect.runSync(queue.offerAll(items.slice(700)))
    const rest = [...queue.poll(3_000), ...queue.poll()]
    const all = [...first, ...rest]
    assert.strictEqual(all.length, 5_000)
    for (let i = 0; i < all.length; i++) assert.strictEqual(all[i], items[i])
  })
  it("equals a model of its bounds under random offers (suspending when full), polls and out-of-order releases, across the ring's wraps and growth", () =>
    fc.assert(fc.asyncProperty(
      fc.constantFrom(
        { maxMessages: 7, maxBytes: 60 },
        { maxMessages: 40, maxBytes: 400 },
        { maxMessages: 1_500, maxBytes: 20_000 },
        { maxMessages: 3_000, maxBytes: 1_000_000 },
        { maxMessages: 6_000, maxBytes: 10_000_000 }
      ),
      fc.array(
        fc.oneof(
          fc.record({ offer: fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 40 }), times: fc.oneof(fc.constant(1), fc.integer({ min: 30, max: 150 })) }),
          fc.record({ poll: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 3_500 })) }),
          fc.record({ release: fc.array(fc.nat(), { maxLength: 30 }), all: fc.boolean() })
        ),
        { minLength: 1, maxLength: 40 }
      ),
      fc.integer({ min: 0, max: 1_023 }),
      (bounds, ops, start) => Effect.runPromise(Effect.gen(function*() {
        type Item = { readonly id: number; readonly size: number }
        const queue = ChangeQueue.make<Item>({ ...bounds, sizeOf: (item) => item.size })
        // the ring's head moved on first, so that it wraps and grows while wrapped
        for (let i = 0; i < start; i++) {
          yield* queue.offerAll([{ id: -1, size: 1 }])
          queue.release(queue.poll())
        }
        // the model: what waits to be admitted, what is buffered, what is taken and not released
        let pending: Array<Item> = []
        const buffered: Array<Item> = []
        let taken: Array<Item> = []
        let heldCount = 0
        let heldBytes = 0
        let nextId = 0
        let offerer: Fiber.Fiber<void> | undefined
        const admit = () => {
          while (pending.length > 0) {
            const item = pending[0]!
            const fits = heldCount === 0 || (heldCount < bounds.maxMessages && heldBytes + item.size <= bounds.maxBytes)
            if (!fits) break
            pending.shift()
            buffered.push(item)
            heldCount++
            heldBytes += item.size
          }
        }
        const letRun = Effect.gen(function*() {
          for (let i = 0; i < 4; i++) yield* Effect.yieldNow
        })
        for (const op of ops) {
          if ("offer" in op) {
            if (offerer !== undefined && offerer.pollUnsafe() === undefined) continue
            const items: Array<Item> = []
            for (let t = 0; t < op.times; t++) for (const size of op.offer) items.push({ id: nextId++, size })
            pending = [...items]
            admit()
            offerer = yield* Effect.forkChild(queue.offerAll(items))
          } else if ("poll" in op) {
            const got = queue.poll(op.poll)
            const want = buffered.splice(0, Math.min(op.poll, buffered.length))
            assert.deepStrictEqual(got.map((item) => item.id), want.map((item) => item.id))
            for (let i = 0; i < got.length; i++) assert.strictEqual(got[i], want[i])
            taken.push(...want)
          } else {
            // any subset of the taken items, in any order
            let release: Array<Item>
            if (op.all) {
              release = taken
              taken = []
            } else {
              release = []
              for (const pick of op.release) {
                if (taken.length === 0) break
                release.push(taken.splice(pick % taken.length, 1)[0]!)
              }
            }
            queue.release(release)
            for (const item of release) {
              heldCount--
              heldBytes -= item.size
            }
            admit()
          }
          yield* letRun
          assert.strictEqual(queue.buffered(), buffered.length)
          assert.strictEqual(queue.heldCount(), heldCount)
          assert.strictEqual(queue.heldBytes(), heldBytes)
          // the offer returns exactly when all its items are admitted
          if (offerer !== undefined) assert.strictEqual(offerer.pollUnsafe() !== undefined, pending.length === 0)
        }
        // the rest, in order, once everything is released
        for (;;) {
          const got = queue.poll()
          const want = buffered.splice(0)
          assert.deepStrictEqual(got.map((item) => item.id), want.map((item) => item.id))
          queue.release([...taken, ...got])
          for (const item of [...taken, ...got]) {
            heldCount--
            heldBytes -= item.size
          }
          taken = []
          admit()
          yield* letRun
          if (pending.length === 0 && buffered.length === 0) break
        }
        assert.strictEqual(queue.poll().length, 0)
        assert.strictEqual(queue.heldCount(), 0)
        assert.strictEqual(queue.heldBytes(), 0)
        if (offerer !== undefined) assert.notStrictEqual(offerer.pollUnsafe(), undefined)
      }))
    ), { numRuns: 200 }))
})

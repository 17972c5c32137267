/**
 * The bounded hand-off between the replication reader and the publisher, bounded by count
 * (QUEUE_MAX_MESSAGES) and bytes (QUEUE_MAX_BYTES).
 *
 * An item holds its share of the bounds from `offerAll` until the publisher `release`s it
 * (acknowledged by Kinesis or dropped), not merely until it is taken: so everything between
 * decoding and acknowledgement, queued or in flight, fits in the bounds, whatever the backlog.
 * While the bounds are full `offerAll` suspends; the reader then stops reading its socket and
 * back-pressure reaches PostgreSQL through TCP. An item larger than the byte bound is admitted
 * alone, when nothing else is held, so it cannot deadlock.
 *
 * Items may be views of larger buffers they share (both decoders write the bodies of one
 * read into one buffer). Such a buffer stays in memory while any item holding it is alive, so
 * it is counted whole, once, from the first held item that references it until the last is
 * released: the byte bound is the memory the items keep, not just the bytes they show.
 *
 * The buffered items wait in a ring that grows (doubling) when full and is then reused: once it
 * holds the steady backlog, buffering allocates nothing per item (the ring is at most the first
 * power of two at or above QUEUE_MAX_MESSAGES).
 */
import * as Effect from "effect/Effect"
import * as Signal from "./Signal.ts"

export interface ChangeQueueOptions<A> {
  readonly maxMessages: number
  readonly maxBytes: number
  /** The bytes an item holds on its own. */
  readonly sizeOf: (item: A) => number
  /** The buffer an item is a view of, counted whole and once while any held item references it. */
  readonly bufferOf?: ((item: A) => ArrayBufferLike) | undefined
}

export interface ChangeQueue<A> {
  /** Admits every item, in order, suspending while the bounds are full. Ignored once ended. */
  readonly offerAll: (items: ReadonlyArray<A>) => Effect.Effect<void>
  /** Waits for at least one item (or the end), then takes every buffered item. Empty only once ended. */
  readonly take: Effect.Effect<ReadonlyArray<A>>
  /** Takes the buffered items, at most `max` (default all), oldest first, without waiting (possibly none). */
  readonly poll: (max?: number) => ReadonlyArray<A>
  /**
   * Notified whenever items are buffered and when the queue ends: a consumer that polls reads its
   * version first, then waits on it (beside other signals, {@link Signal.waitAny}) for what comes next.
   */
  readonly arrivals: Signal.Signal
  /** Gives back the bounds held by items the consumer has finished with. */
  readonly release: (items: ReadonlyArray<A>) => void
  /** No more offers: the consumer drains what is buffered, then `take` returns empty. */
  readonly end: () => void
  readonly isEnded: () => boolean
  /** Items offered and not yet taken. */
  readonly buffered: () => number
  /** Items offered and not yet released (buffered or in flight). */
  readonly heldCount: () => number
  /** Bytes offered and not yet released. */
  readonly heldBytes: () => number
}

export const make = <A>(options: ChangeQueueOptions<A>): ChangeQueue<A> => {
  // the buffered items: a ring of power-of-two capacity, which only grows (doubling) when full
  let ring = new Array<A | undefined>(1024).fill(undefined)
  let head = 0
  let size = 0
  let heldCount = 0
  let heldBytes = 0
  let ended = false
  /** Held items per shared buffer. */
  const buffers = new Map<ArrayBufferLike, number>()
  const bufferOf = options.bufferOf
  const itemsAvailable = Signal.make()
  const spaceAvailable = Signal.make()

  const fits = (size: number) =>
    heldCount === 0 || (heldCount < options.maxMessages && heldBytes + size <= options.maxBytes)

  const push = (item: A) => {
    if (size === ring.length) {
      // full: the items, oldest first, at the start of a ring twice as large
      const grown = new Array<A | undefined>(ring.length * 2).fill(undefined)
      for (let i = 0; i < size; i++) grown[i] = ring[(head + i) & (ring.length - 1)]
      ring = grown
      head = 0
    }
    ring[(head + size++) & (ring.length - 1)] = item
  }

  const poll = (max = Infinity): ReadonlyArray<A> => {
    const count = Math.min(size, max)
    if (count <= 0) return []
    const taken = new Array<A>(count)
    const mask = ring.length - 1
    for (let i = 0; i < count; i++) {
      taken[i] = ring[head]!
      // the ring keeps no taken item alive
      ring[head] = undefined
      head = (head + 1) & mask
    }
    size -= count
    return taken
  }

  const offerAll = (items: ReadonlyArray<A>): Effect.Effect<void> =>
    Effect.suspend(() => {
      let index = 0
      const admit = (): boolean => {
        const before = index
        // a run of items on one shared buffer (a read's bodies) updates its count once
        let run: ArrayBufferLike | undefined
        let runItems = 0
        const endRun = () => {
          if (run !== undefined) buffers.set(run, (buffers.get(run) ?? 0) + runItems)
          run = undefined
          runItems = 0
        }
        while (index < items.length && !ended) {
          const item = items[index]!
          let size = options.sizeOf(item)
          const shared = bufferOf?.(item)
          if (shared !== run) {
            endRun()
            if (shared !== undefined && !buffers.has(shared)) size += shared.byteLength
          }
          if (!fits(size)) break
          if (shared !== undefined) {
            run = shared
            runItems++
          }
          push(item)
          heldCount++
          heldBytes += size
          index++
        }
        endRun()
        if (index > before) itemsAvailable.notify()
        return index >= items.length || ended
      }
      const loop: Effect.Effect<void> = Effect.suspend(() => {
        const seen = spaceAvailable.version()
        return admit() ? Effect.void : spaceAvailable.waitSince(seen).pipe(Effect.andThen(loop))
      })
      return loop
    })

  const take: Effect.Effect<ReadonlyArray<A>> = Effect.suspend(() => {
    const loop: Effect.Effect<ReadonlyArray<A>> = Effect.suspend(() => {
      const seen = itemsAvailable.version()
      return size > 0 || ended ? Effect.succeed(poll()) : itemsAvailable.waitSince(seen).pipe(Effect.andThen(loop))
    })
    return loop
  })

  return {
    offerAll,
    take,
    poll,
    arrivals: itemsAvailable,
    release: (items) => {
      if (items.length === 0) return
      let bytes = 0
      // a run of items on one shared buffer updates its count once
      let run: ArrayBufferLike | undefined
      let runItems = 0
      const endRun = () => {
        if (run === undefined) return
        const sharers = (buffers.get(run) ?? runItems) - runItems
        if (sharers > 0) buffers.set(run, sharers)
        else {
          buffers.delete(run)
          bytes += run.byteLength
        }
      }
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!
        bytes += options.sizeOf(item)
        const shared = bufferOf?.(item)
        if (shared === run) runItems++
        else {
          endRun()
          run = shared
          runItems = 1
        }
      }
      endRun()
      heldCount -= items.length
      heldBytes -= bytes
      spaceAvailable.notify()
    },
    end: () => {
      ended = true
      itemsAvailable.notify()
      spaceAvailable.notify()
    },
    isEnded: () => ended,
    buffered: () => size,
    heldCount: () => heldCount,
    heldBytes: () => heldBytes
  }
}

/**
 * The contiguous acknowledgement frontier: the highest commit LSN below which every change is
 * published or deliberately dropped. Publishing finishes out of order; the frontier only moves
 * over an unbroken run of finished events, and never backwards.
 *
 * Design (O(1) amortized per event, per-batch calls):
 * - `register(events)` (the reader, in WAL order) gives every event the next sequence number and a
 *   slot in a growable ring of done flags. B and C are done at once; a C slot also remembers its
 *   `ackLsn`. Publishable events are remembered in a Map from the event object to its sequence
 *   number (events are immutable objects that travel by reference to the publisher, so identity is
 *   the cheapest handle; ChangeEvent has no sequence field and we do not wrap it).
 * - `complete(events)` marks their slots done (and forgets them in the Map), then advances the
 *   head over every done slot, taking the highest `ackLsn` it passes.
 * Each event is registered once, completed once, and passed once by the head.
 */
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"

export interface Frontier {
  /** Registers events in read order (all of them: B/C included). */
  readonly register: (events: ReadonlyArray<ChangeEvent>) => void
  /** Marks published or dropped events done. Unknown or already completed events are ignored. */
  readonly complete: (events: ReadonlyArray<ChangeEvent>) => void
  /** The flush position: the ackLsn of the highest commit with every predecessor done. */
  readonly current: () => Lsn.Lsn
  /** Registered events not yet done (for metrics and tests). */
  readonly outstanding: () => number
}

const NOT_DONE = 0
const DONE = 1

/** A new frontier starting at `start` (the slot's confirmed position). */
export const make = (start: Lsn.Lsn = Lsn.zero): Frontier => {
  let capacity = 1024
  let flags = new Uint8Array(capacity)
  let acks: Array<Lsn.Lsn | undefined> = new Array(capacity)
  let head = 0 // sequence number of the oldest slot still kept
  let tail = 0 // next sequence number
  let current = start
  const pending = new Map<ChangeEvent, number>()

  const grow = () => {
    const nextCapacity = capacity * 2
    const nextFlags = new Uint8Array(nextCapacity)
    const nextAcks: Array<Lsn.Lsn | undefined> = new Array(nextCapacity)
    for (let seq = head; seq < tail; seq++) {
      nextFlags[seq & (nextCapacity - 1)] = flags[seq & (capacity - 1)]!
      nextAcks[seq & (nextCapacity - 1)] = acks[seq & (capacity - 1)]
    }
    capacity = nextCapacity
    flags = nextFlags
    acks = nextAcks
  }

  const advance = () => {
    const mask = capacity - 1
    while (head < tail && flags[head & mask] === DONE) {
      const ack = acks[head & mask]
      if (ack !== undefined) {
        if (ack > current) current = ack
        acks[head & mask] = undefined
      }
      head++
    }
  }

  return {
    register: (events) => {
      for (const event of events) {
        if (tail - head === capacity) grow()
        const slot = tail & (capacity - 1)
        if (event.action === "B" || event.action === "C") {
          flags[slot] = DONE
          acks[slot] = event.action === "C" ? event.ackLsn : undefined
        } else {
          flags[slot] = NOT_DONE
          acks[slot] = undefined
          pending.set(event, tail)
        }
        tail++
      }
      advance()
    },
    complete: (events) => {
      const mask = capacity - 1
      for (const event of events) {
        const seq = pending.get(event)
        if (seq === undefined) continue
        pending.delete(event)
        flags[seq & mask] = DONE
      }
      advance()
    },
    current: () => current,
    outstanding: () => pending.size
  }
}

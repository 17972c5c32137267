/**
 * The contiguous acknowledgement frontier: the highest commit LSN below which every change is
 * published or deliberately dropped. Publishing finishes out of order; the frontier only moves
 * over an unbroken run of finished events, and never backwards.
 *
 * Design: only unfinished changes are kept. They form a list in read order; each entry also holds
 * the highest `ackLsn` of the commits read after it and before the next unfinished change. A
 * finished change leaves the list at once, handing its `ackLsn` to the entry before it (or, at the
 * head, moving the frontier). So runs of finished events and transaction boundaries cost nothing,
 * and the bookkeeping is one entry per change between `register` and `complete`: while one key's
 * change is stuck and other keys flow, it does not grow with what flows past it.
 *
 * Bound: the pipeline registers a read before offering it to the {@link ChangeQueue} and completes
 * a change when the queue releases it, so the entries are the changes the queue holds plus the
 * not-yet-admitted rest of one read: at most QUEUE_MAX_MESSAGES plus one read. When they reach it
 * the queue is full, `offerAll` suspends and the reader stops reading its socket. Memory returns as
 * entries leave (nothing is kept for finished changes).
 *
 * Publishable changes are found by identity in a Map (events are immutable objects that travel by
 * reference to the publisher; ChangeEvent has no sequence field and we do not wrap it). Every call
 * takes a batch; each event costs O(1): registered once, completed once.
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
  /** Registered changes not yet done: the bookkeeping's size, in entries (for metrics and tests). */
  readonly outstanding: () => number
}

/** An unfinished change, and the commits read after it up to the next unfinished change. */
interface Entry {
  prev: Entry | undefined
  next: Entry | undefined
  /** The highest ackLsn of those commits, or undefined when there are none. */
  ack: Lsn.Lsn | undefined
}

const later = (a: Lsn.Lsn | undefined, b: Lsn.Lsn | undefined): Lsn.Lsn | undefined =>
  a === undefined ? b : b === undefined || a >= b ? a : b

/** A new frontier starting at `start` (the slot's confirmed position). */
export const make = (start: Lsn.Lsn = Lsn.zero): Frontier => {
  let current = start
  let last: Entry | undefined
  const entries = new Map<ChangeEvent, Entry>()

  return {
    register: (events) => {
      for (const event of events) {
        if (event.action === "B") continue
        if (event.action === "C") {
          if (last === undefined) {
            if (event.ackLsn > current) current = event.ackLsn
          } else last.ack = later(last.ack, event.ackLsn)
          continue
        }
        const entry: Entry = { prev: last, next: undefined, ack: undefined }
        if (last !== undefined) last.next = entry
        last = entry
        entries.set(event, entry)
      }
    },
    complete: (events) => {
      for (const event of events) {
        const entry = entries.get(event)
        if (entry === undefined) continue
        entries.delete(event)
        const { ack, next, prev } = entry
        if (prev === undefined) {
          if (ack !== undefined && ack > current) current = ack
        } else {
          prev.ack = later(prev.ack, ack)
          prev.next = next
        }
        if (next === undefined) last = prev
        else next.prev = prev
      }
    },
    current: () => current,
    outstanding: () => entries.size
  }
}

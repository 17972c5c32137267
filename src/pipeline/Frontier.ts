/**
 * The contiguous acknowledgement frontier: the highest commit LSN below which every change is
 * published or deliberately dropped. Publishing finishes out of order; the frontier only moves
 * over an unbroken run of finished events, and never backwards.
 *
 * Design: bookkeeping per read, not per change. Each `register` call (one decoded read) with
 * changes to publish becomes a block: a done flag per change (one bit), the index of its first
 * unfinished change, and its commits with the number of its changes read before each. The event
 * itself carries its block and index (ChangeEvent's frontier slots: no map, no entry object per
 * change). Blocks with unfinished changes form a list in read order. Only the head block moves the
 * frontier: over each commit whose changes before it, in the block, are all done. A block whose
 * changes are all done leaves the list at once, handing its highest commit to the block before it
 * (applied when that one is done) or, at the head, moving the frontier. Reads with only
 * transaction boundaries cost no block.
 *
 * Bound: the pipeline registers a read before offering it to the {@link ChangeQueue} and completes
 * a change when the queue releases it, so the blocks are the reads with a change the queue holds
 * (plus the not-yet-admitted rest of one read): at most one per change the queue holds, of at most
 * a read's size each. While one key's change is stuck and other keys flow, only the stuck change's
 * read stays: nothing grows with what flows past it. Memory returns as blocks leave.
 *
 * Every call takes a batch; each event costs O(1) amortized: registered once, completed once.
 */
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"

export interface Frontier {
  /** Registers events in read order (all of them: B/C included); one call per read. */
  readonly register: (events: ReadonlyArray<ChangeEvent>) => void
  /** Marks published or dropped events done. Unknown or already completed events are ignored. */
  readonly complete: (events: ReadonlyArray<ChangeEvent>) => void
  /** The flush position: the ackLsn of the highest commit with every predecessor done. */
  readonly current: () => Lsn.Lsn
  /** Registered changes not yet done (for metrics and tests). */
  readonly outstanding: () => number
}

const later = (a: Lsn.Lsn | undefined, b: Lsn.Lsn | undefined): Lsn.Lsn | undefined =>
  a === undefined ? b : b === undefined || a >= b ? a : b

/** The changes of one registered read that are not all done, and the commits read among them. */
class Block {
  prev: Block | undefined = undefined
  next: Block | undefined = undefined
  /**
   * A bit set for each done change, by its index in the read's changes (bit `i & 31` of word
   * `i >>> 5`): a read of up to 512 changes keeps its flags in the typed array's own 64 bytes on
   * the heap, with no separate backing store to allocate and free.
   */
  readonly done: Uint32Array
  /** The read's changes. */
  readonly count: number
  /** Changes not yet done. */
  remaining: number
  /** The index of the first change not done (the count of changes when all are). */
  firstUndone = 0
  /** Per commit in the read, ascending: how many of the read's changes come before it. */
  readonly commitAfter: Array<number>
  /** Per commit in the read: its ackLsn. */
  readonly commitAck: Array<Lsn.Lsn>
  /** The first commit not yet applied to the frontier. */
  nextCommit = 0
  /** The highest ackLsn of commits of later reads, all of whose changes are done: applied once this block is. */
  tail: Lsn.Lsn | undefined = undefined
  /** The frontier that made it. */
  readonly owner: object
  constructor(owner: object, count: number, commitAfter: Array<number>, commitAck: Array<Lsn.Lsn>) {
    this.owner = owner
    this.done = new Uint32Array((count + 31) >>> 5)
    this.count = count
    this.remaining = count
    this.commitAfter = commitAfter
    this.commitAck = commitAck
  }
}

/** A new frontier starting at `start` (the slot's confirmed position). */
export const make = (start: Lsn.Lsn = Lsn.zero): Frontier => {
  /** Marks the blocks this frontier made (an event registered elsewhere is unknown here). */
  const owner = {}
  let current = start
  let head: Block | undefined
  let last: Block | undefined
  let outstanding = 0

  const advanceTo = (ack: Lsn.Lsn | undefined) => {
    if (ack !== undefined && ack > current) current = ack
  }

  /** The head block: moves the frontier over its commits with every change before them done. */
  const settle = (block: Block) => {
    const { commitAfter, commitAck, firstUndone } = block
    let c = block.nextCommit
    while (c < commitAfter.length && commitAfter[c]! <= firstUndone) advanceTo(commitAck[c++])
    block.nextCommit = c
  }

  /** A block whose changes are all done leaves the list. */
  const remove = (block: Block) => {
    const { prev, next } = block
    if (prev === undefined) {
      settle(block)
      advanceTo(block.tail)
      head = next
    } else {
      let ack = block.tail
      for (let c = block.nextCommit; c < block.commitAck.length; c++) ack = later(ack, block.commitAck[c])
      prev.tail = later(prev.tail, ack)
      prev.next = next
    }
    if (next === undefined) last = prev
    else {
      next.prev = prev
      if (prev === undefined) settle(next)
    }
  }

  return {
    register: (events) => {
      let count = 0
      let commitAfter: Array<number> | undefined
      let commitAck: Array<Lsn.Lsn> | undefined
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        const action = event.action
        if (action === "B") continue
        if (action === "C") {
          ;(commitAfter ??= []).push(count)
          ;(commitAck ??= []).push(event.ackLsn)
          continue
        }
        count++
      }
      if (count === 0) {
        // boundaries only: after every registered change
        if (commitAck === undefined) return
        let ack: Lsn.Lsn | undefined
        for (const a of commitAck) ack = later(ack, a)
        if (last === undefined) advanceTo(ack)
        else last.tail = later(last.tail, ack)
        return
      }
      const block = new Block(owner, count, commitAfter ?? [], commitAck ?? [])
      let index = 0
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        if (event.action === "B" || event.action === "C") continue
        event.frontierBlock = block
        event.frontierIndex = index++
      }
      outstanding += count
      block.prev = last
      if (last === undefined) {
        head = block
        settle(block)
      } else last.next = block
      last = block
    },
    complete: (events) => {
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        const block = event.frontierBlock
        if (!(block instanceof Block) || block.owner !== owner) continue
        const index = event.frontierIndex!
        const { done } = block
        const word = index >>> 5
        const flags = done[word]!
        const bit = 1 << (index & 31)
        if ((flags & bit) !== 0) continue
        done[word] = flags | bit
        outstanding--
        if (index === block.firstUndone) {
          const count = block.count
          let first = index + 1
          while (first < count && (done[first >>> 5]! & (1 << (first & 31))) !== 0) first++
          block.firstUndone = first
          if (block === head) settle(block)
        }
        if (--block.remaining === 0) remove(block)
      }
    },
    current: () => current,
    outstanding: () => outstanding
  }
}

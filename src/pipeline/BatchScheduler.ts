/**
 * Batch assembly: which records the next PutRecords carries, within BATCH_MAX_RECORDS and
 * BATCH_MAX_BYTES, and under KINESIS_ORDERING.
 *
 * per_key: records wait in one FIFO lane per partition key. A key is "ready" when its lane is not
 * empty and no record of it is in flight; a batch takes the head record of ready keys, oldest
 * ready first, so one request carries at most one record per key and a key is locked until its
 * record is acknowledged (`done`). A failed record stays with its request (which retries it) and
 * its key stays locked, so no later record of the key can overtake it.
 *
 * relaxed: one FIFO; batches take records in arrival order, several per key, and requests run
 * concurrently: a key's records can land out of order when a request partially fails (its failed
 * records are retried after later requests went out) or when concurrent requests race.
 *
 * Every operation is O(1) amortized per record; nothing here allocates per record beyond lane
 * bookkeeping (a record is the change's event itself): the FIFOs are rings that stop growing at
 * their steady depth, and a batch is one array allocated at its size.
 */
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import type { PutRecordsEntry } from "../kinesis/KinesisClient.ts"

/**
 * A change on its way to Kinesis: the event itself, its publisher slots set; it is its own
 * PutRecords entry (the event's body and partition key).
 */
export interface Outgoing extends ChangeEvent, PutRecordsEntry {
  readonly partitionKey: string
  /** Data plus partition key, in bytes: what counts against the record and request limits. */
  readonly recordBytes: number
  /** When the publisher took it from the queue (ms since the publisher started), for the linger. */
  readonly arrivedAt: number
}

export interface BatchLimits {
  readonly maxRecords: number
  readonly maxBytes: number
}

export interface BatchScheduler {
  /** A record, in read order. */
  readonly add: (record: Outgoing) => void
  /** Takes the next batch (possibly empty). A first record over maxBytes still goes out, alone. */
  readonly next: (limits: BatchLimits) => Array<Outgoing>
  /**
   * Records `next` returned, acknowledged (or given up): their keys may send again. A record passed
   * again, once its key has moved on, is ignored.
   */
  readonly done: (records: ReadonlyArray<Outgoing>) => void
  /** Records that could go out now. */
  readonly readyCount: () => number
  /** Whether the ready records fill a batch. */
  readonly hasFullBatch: (limits: BatchLimits) => boolean
  /** Arrival time of the record the next batch starts with. */
  readonly oldestReady: () => number | undefined
  /** Records waiting, ready or not (not in flight). */
  readonly waiting: () => number
}

/**
 * A FIFO of records on a ring of power-of-two capacity, with the sum of their recordBytes: push and
 * shift are O(1), and the ring only grows (by doubling) when full, so a FIFO of steady depth
 * allocates nothing once it has grown to it.
 */
class Fifo {
  private ring: Array<Outgoing | undefined>
  private head = 0
  private size = 0
  /** The records' recordBytes, summed. */
  bytes = 0
  constructor(capacity: number) {
    this.ring = new Array<Outgoing | undefined>(capacity).fill(undefined)
  }
  get length(): number {
    return this.size
  }
  push(record: Outgoing): void {
    let ring = this.ring
    if (this.size === ring.length) {
      // full: the records, oldest first, at the start of a ring twice as large
      const grown = new Array<Outgoing | undefined>(ring.length * 2).fill(undefined)
      for (let i = 0; i < this.size; i++) grown[i] = ring[(this.head + i) & (ring.length - 1)]
      this.ring = ring = grown
      this.head = 0
    }
    ring[(this.head + this.size++) & (ring.length - 1)] = record
    this.bytes += record.recordBytes
  }
  peek(): Outgoing | undefined {
    return this.size === 0 ? undefined : this.ring[this.head]
  }
  shift(): Outgoing | undefined {
    if (this.size === 0) return undefined
    const ring = this.ring
    const record = ring[this.head]!
    // the ring keeps no taken record alive
    ring[this.head] = undefined
    this.head = (this.head + 1) & (ring.length - 1)
    this.size--
    this.bytes -= record.recordBytes
    return record
  }
  /**
   * The next batch: as many records as fit the limits, oldest first, in an array allocated once at
   * its size. A first record over maxBytes still goes out, alone.
   */
  take(limits: BatchLimits): Array<Outgoing> {
    const ring = this.ring
    const mask = ring.length - 1
    const most = Math.min(limits.maxRecords, this.size)
    let count = 0
    let bytes = 0
    while (count < most) {
      const recordBytes = ring[(this.head + count) & mask]!.recordBytes
      if (count > 0 && bytes + recordBytes > limits.maxBytes) break
      bytes += recordBytes
      count++
    }
    const batch = new Array<Outgoing>(count)
    for (let i = 0; i < count; i++) {
      batch[i] = ring[this.head]!
      ring[this.head] = undefined
      this.head = (this.head + 1) & mask
    }
    this.size -= count
    this.bytes -= bytes
    return batch
  }
}

/**
 * A key with records waiting behind its active one. Keys with only their active record (the common
 * case: distinct keys) keep that record itself as their state, so they cost no allocation.
 */
class Lane {
  active: Outgoing
  readonly waiters = new Fifo(4)
  constructor(active: Outgoing) {
    this.active = active
  }
}

export const perKey = (): BatchScheduler => {
  // Each key present has one active record (ready, or in flight) and, in a Lane, those waiting
  // behind it. The ready FIFO holds the active records not yet taken, in the order they became ready.
  const keys = new Map<string, Outgoing | Lane>()
  const ready = new Fifo(1024)
  let waiting = 0

  return {
    add: (record) => {
      waiting++
      const state = keys.get(record.partitionKey)
      if (state === undefined) {
        keys.set(record.partitionKey, record)
        ready.push(record)
      } else if (state instanceof Lane) state.waiters.push(record)
      else {
        const lane = new Lane(state)
        lane.waiters.push(record)
        keys.set(record.partitionKey, lane)
      }
    },
    next: (limits) => {
      const batch = ready.take(limits)
      waiting -= batch.length
      return batch
    },
    done: (records) => {
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!
        const state = keys.get(record.partitionKey)
        if (state === record) keys.delete(record.partitionKey)
        else if (state instanceof Lane && state.active === record) {
          const next = state.waiters.shift()
          if (next === undefined) keys.delete(record.partitionKey)
          else {
            state.active = next
            ready.push(next)
          }
        }
      }
    },
    readyCount: () => ready.length,
    hasFullBatch: (limits) => ready.length >= limits.maxRecords || ready.bytes >= limits.maxBytes,
    oldestReady: () => ready.peek()?.arrivedAt,
    waiting: () => waiting
  }
}

export const relaxed = (): BatchScheduler => {
  const queue = new Fifo(1024)
  return {
    add: (record) => queue.push(record),
    next: (limits) => queue.take(limits),
    done: () => {},
    readyCount: () => queue.length,
    hasFullBatch: (limits) => queue.length >= limits.maxRecords || queue.bytes >= limits.maxBytes,
    oldestReady: () => queue.peek()?.arrivedAt,
    waiting: () => queue.length
  }
}

/** The scheduler for KINESIS_ORDERING. */
export const make = (ordering: "per_key" | "relaxed"): BatchScheduler => (ordering === "per_key" ? perKey() : relaxed())

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
 * bookkeeping (a record is the change's event itself).
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
  /** Records in read order. */
  readonly add: (records: ReadonlyArray<Outgoing>) => void
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

/** A FIFO with O(1) amortized push/shift. */
class Fifo<A> {
  private items: Array<A> = []
  private head = 0
  get length(): number {
    return this.items.length - this.head
  }
  push(item: A): void {
    this.items.push(item)
  }
  peek(): A | undefined {
    return this.items[this.head]
  }
  shift(): A | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined as never
    this.head++
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
}

/**
 * A key with records waiting behind its active one. Keys with only their active record (the common
 * case: distinct keys) keep that record itself as their state, so they cost no allocation.
 */
class Lane {
  active: Outgoing
  readonly waiters = new Fifo<Outgoing>()
  constructor(active: Outgoing) {
    this.active = active
  }
}

export const perKey = (): BatchScheduler => {
  // Each key present has one active record (ready, or in flight) and, in a Lane, those waiting
  // behind it. The ready FIFO holds the active records not yet taken, in the order they became ready.
  const keys = new Map<string, Outgoing | Lane>()
  const ready = new Fifo<Outgoing>()
  let readyBytes = 0
  let waiting = 0

  const markReady = (record: Outgoing) => {
    ready.push(record)
    readyBytes += record.recordBytes
  }

  return {
    add: (records) => {
      for (const record of records) {
        waiting++
        const state = keys.get(record.partitionKey)
        if (state === undefined) {
          keys.set(record.partitionKey, record)
          markReady(record)
        } else if (state instanceof Lane) state.waiters.push(record)
        else {
          const lane = new Lane(state)
          lane.waiters.push(record)
          keys.set(record.partitionKey, lane)
        }
      }
    },
    next: (limits) => {
      const batch: Array<Outgoing> = []
      let bytes = 0
      while (batch.length < limits.maxRecords) {
        const record = ready.peek()
        if (record === undefined) break
        if (batch.length > 0 && bytes + record.recordBytes > limits.maxBytes) break
        ready.shift()
        readyBytes -= record.recordBytes
        waiting--
        bytes += record.recordBytes
        batch.push(record)
      }
      return batch
    },
    done: (records) => {
      for (const record of records) {
        const state = keys.get(record.partitionKey)
        if (state === record) keys.delete(record.partitionKey)
        else if (state instanceof Lane && state.active === record) {
          const next = state.waiters.shift()
          if (next === undefined) keys.delete(record.partitionKey)
          else {
            state.active = next
            markReady(next)
          }
        }
      }
    },
    readyCount: () => ready.length,
    hasFullBatch: (limits) => ready.length >= limits.maxRecords || readyBytes >= limits.maxBytes,
    oldestReady: () => ready.peek()?.arrivedAt,
    waiting: () => waiting
  }
}

export const relaxed = (): BatchScheduler => {
  const queue = new Fifo<Outgoing>()
  let queuedBytes = 0
  return {
    add: (records) => {
      for (const record of records) {
        queue.push(record)
        queuedBytes += record.recordBytes
      }
    },
    next: (limits) => {
      const batch: Array<Outgoing> = []
      let bytes = 0
      while (batch.length < limits.maxRecords) {
        const record = queue.peek()
        if (record === undefined) break
        if (batch.length > 0 && bytes + record.recordBytes > limits.maxBytes) break
        queue.shift()
        queuedBytes -= record.recordBytes
        bytes += record.recordBytes
        batch.push(record)
      }
      return batch
    },
    done: () => {},
    readyCount: () => queue.length,
    hasFullBatch: (limits) => queue.length >= limits.maxRecords || queuedBytes >= limits.maxBytes,
    oldestReady: () => queue.peek()?.arrivedAt,
    waiting: () => queue.length
  }
}

/** The scheduler for KINESIS_ORDERING. */
export const make = (ordering: "per_key" | "relaxed"): BatchScheduler => (ordering === "per_key" ? perKey() : relaxed())

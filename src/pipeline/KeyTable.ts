/**
 * The batcher's per-key state: a hash table from partition key to a value, with open addressing
 * (linear probing) over parallel arrays: the keys' hashes in an `Int32Array`, the keys and values in
 * arrays. A lookup compares hashes first, so a miss reads no other key's string; a removal moves the
 * entries after it back (no tombstones), so keys coming and going allocate nothing and never make
 * the table rehash its keys: it only grows (doubling) when half full and shrinks when mostly empty.
 * (A `Map` with keys coming and going rebuilds its table every few thousand insertions and compares
 * strings it reaches through its buckets.)
 *
 * The hash is FNV-1a over the key's UTF-16 units with a final mix, seeded per table at random, so
 * keys a database role writes cannot be chosen to collide. Callers hash a key once per operation
 * and pass the hash along: {@link KeyTable.lookup} finds the key's slot or where it would go.
 */

/** The hash of `key` under `seed`. */
export const hashOf = (key: string, seed: number): number => {
  let h = seed ^ key.length
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  return h
}

const minCapacity = 1024

export class KeyTable<V> {
  private mask: number
  private hashes: Int32Array
  private keys: Array<string | undefined>
  private values: Array<V | undefined>
  private count = 0
  private readonly seed: number
  private readonly hashFn: (key: string, seed: number) => number

  /** `hash` replaces the hash function (tests use it to make keys collide). */
  constructor(hash: (key: string, seed: number) => number = hashOf) {
    this.seed = (Math.random() * 0x1_0000_0000) | 0
    this.hashFn = hash
    this.mask = minCapacity - 1
    this.hashes = new Int32Array(minCapacity)
    this.keys = new Array<string | undefined>(minCapacity).fill(undefined)
    this.values = new Array<V | undefined>(minCapacity).fill(undefined)
  }

  /** Keys present. */
  get size(): number {
    return this.count
  }

  /** The hash to pass to {@link lookup} and {@link insert} for `key`. */
  hash(key: string): number {
    return this.hashFn(key, this.seed)
  }

  /**
   * The slot of `key` (≥ 0) when present; otherwise the complement (< 0) of the slot it would take,
   * valid for {@link insert} until the table next changes.
   */
  lookup(key: string, hash: number): number {
    const { hashes, keys, mask } = this
    let i = hash & mask
    while (true) {
      const k = keys[i]
      if (k === undefined) return ~i
      if (hashes[i] === hash && k === key) return i
      i = (i + 1) & mask
    }
  }

  /** The value in a slot {@link lookup} found. */
  valueAt(slot: number): V {
    return this.values[slot]!
  }

  /** Replaces the value in a slot {@link lookup} found. */
  setAt(slot: number, value: V): void {
    this.values[slot] = value
  }

  /** Adds `key`, absent, at the slot {@link lookup} gave for it (a negative number). */
  insert(slot: number, key: string, hash: number, value: V): void {
    const i = ~slot
    this.hashes[i] = hash
    this.keys[i] = key
    this.values[i] = value
    if (++this.count * 2 > this.mask + 1) this.resize((this.mask + 1) * 2)
  }

  /** Removes the key in a slot {@link lookup} found. */
  removeAt(slot: number): void {
    const { hashes, keys, values, mask } = this
    // every later entry of the run that may sit at the hole moves into it (backward shift)
    let hole = slot
    let i = slot
    while (true) {
      i = (i + 1) & mask
      const k = keys[i]
      if (k === undefined) break
      const home = hashes[i]! & mask
      // the entry at i may move to the hole when its home is not in (hole, i], cyclically
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        hashes[hole] = hashes[i]!
        keys[hole] = k
        values[hole] = values[i]
        hole = i
      }
    }
    keys[hole] = undefined
    values[hole] = undefined
    this.count--
    if (this.mask + 1 > minCapacity && this.count * 8 < this.mask + 1) this.resize((this.mask + 1) / 2)
  }

  private resize(capacity: number): void {
    const { hashes, keys, values } = this
    this.mask = capacity - 1
    this.hashes = new Int32Array(capacity)
    this.keys = new Array<string | undefined>(capacity).fill(undefined)
    this.values = new Array<V | undefined>(capacity).fill(undefined)
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j]
      if (key === undefined) continue
      const hash = hashes[j]!
      let i = hash & this.mask
      while (this.keys[i] !== undefined) i = (i + 1) & this.mask
      this.hashes[i] = hash
      this.keys[i] = key
      this.values[i] = values[j]
    }
  }
}

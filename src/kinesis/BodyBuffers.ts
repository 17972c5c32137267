/**
 * Buffers for PutRecords request bodies, kept for later requests instead of allocated for each.
 * A body of 64 KiB or more is mapped on its own by the allocator (MALLOC_MMAP_THRESHOLD_, see
 * NodeFlags), so a fresh one costs a page fault for every 4 KiB written and an unmapping when it is
 * collected. A buffer comes back once its request was answered with success (Kinesis had read every
 * byte of it); at most `keep` buffers of at most {@link maxKeptBytes} each are kept.
 */

/** The largest buffer kept: a 500-record body of rows up to ~1.5 KB. */
export const maxKeptBytes = 1024 * 1024

/** Kept buffers are sized in steps of this, so a slightly larger next body still fits. */
const step = 64 * 1024

export interface BodyBuffers {
  /** A buffer of at least `size` bytes, kept or new; its contents are whatever they were. */
  readonly take: (size: number) => Buffer
  /** Gives back a buffer taken here, once nothing reads it any more. */
  readonly give: (buffer: Buffer) => void
}

export const make = (keep: number): BodyBuffers => {
  const free: Array<Buffer> = []
  return {
    take: (size) => {
      for (let i = free.length - 1; i >= 0; i--) {
        const buffer = free[i]!
        if (buffer.length >= size) {
          free[i] = free[free.length - 1]!
          free.pop()
          return buffer
        }
      }
      const capacity = Math.ceil(size / step) * step
      return Buffer.allocUnsafeSlow(capacity <= maxKeptBytes ? capacity : size)
    },
    give: (buffer) => {
      if (buffer.length > maxKeptBytes) return
      if (free.length < keep) free.push(buffer)
      else {
        // keep the larger ones: they fit more bodies
        let smallest = 0
        for (let i = 1; i < free.length; i++) if (free[i]!.length < free[smallest]!.length) smallest = i
        if (free.length > 0 && free[smallest]!.length < buffer.length) free[smallest] = buffer
      }
    }
  }
}

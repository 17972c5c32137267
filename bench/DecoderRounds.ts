/**
 * What the decoder micro-benchmarks (bench/Wal2JsonDecode.ts, bench/PgOutputDecode.ts) share: their
 * arguments, their workload cut into socket reads ({@link socketReads}: messages as reads of up to
 * 64 KiB would bring them), and the measuring: given each implementation's decoder and its reads, checks
 * that every implementation decodes every event alike (every field, body bytes) before anything is
 * timed, then decodes the batches round after round, the implementations interleaved (their order
 * reversed every other round), and prints per implementation the median CPU time (user + system)
 * and V8 heap bytes allocated per change, and the collections per round. Heap bytes allocated are
 * what is in use after a round minus before, plus what every collection in between freed
 * (ArrayBuffer backing stores are outside the V8 heap and not counted); run with `--expose-gc` so
 * each round starts from a collected heap.
 */
import * as Os from "node:os"
import * as V8 from "node:v8"
import type { Decoder, ReadMessage, WalMessage } from "../src/replication/Decoder.ts"

/** The value after `name` on the command line. */
export const argument = (name: string): string | undefined => {
  const index = process.argv.indexOf(name)
  return index < 0 ? undefined : process.argv[index + 1]
}

/** One socket read: its bytes, and where each message's payload is in them. */
export interface RawRead {
  readonly buffer: Uint8Array
  readonly messages: ReadonlyArray<{ readonly lsn: bigint; readonly start: number; readonly end: number }>
}

/**
 * Messages as socket reads of up to 64 KiB would bring them (each message's bytes behind its 25-byte
 * XLogData header): the messages of one read are in one buffer, as the reader hands them out.
 */
export const socketReads = (messages: ReadonlyArray<{ readonly lsn: bigint; readonly data: Uint8Array }>): Array<RawRead> => {
  const reads: Array<RawRead> = []
  const asRead = (batch: ReadonlyArray<{ readonly lsn: bigint; readonly data: Uint8Array }>): RawRead => {
    const buffer = Buffer.alloc(batch.reduce((n, m) => n + m.data.length + 25, 0))
    let offset = 0
    return {
      buffer,
      messages: batch.map((message) => {
        offset += 25
        buffer.set(message.data, offset)
        const start = offset
        offset += message.data.length
        return { lsn: message.lsn, start, end: offset }
      })
    }
  }
  let batch: Array<{ readonly lsn: bigint; readonly data: Uint8Array }> = []
  let bytes = 0
  for (const message of messages) {
    if (bytes + message.data.length + 25 > 65536 && batch.length > 0) {
      reads.push(asRead(batch))
      batch = []
      bytes = 0
    }
    batch.push(message)
    bytes += message.data.length + 25
  }
  reads.push(asRead(batch))
  return reads
}

/** The reads as messages of a checkout's reader (its ReadMessage class). */
export const readMessages = (reads: ReadonlyArray<RawRead>, read: typeof ReadMessage): Array<Array<WalMessage>> =>
  reads.map(({ buffer, messages }) => messages.map(({ lsn, start, end }) => new read(lsn, buffer, start, end)))

export interface Contender {
  readonly name: string
  /** A fresh decoder (decoders may keep state from batch to batch, as pgoutput's relations). */
  readonly decoder: () => Decoder
  /** The workload, as this implementation's reader would hand it over. */
  readonly batches: ReadonlyArray<ReadonlyArray<WalMessage>>
}

interface Measured {
  readonly cpuMicros: number
  readonly heapBytes: number
  readonly gcs: number
}

interface GcStatistics {
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number } }
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number } }
}

const drain = (contender: Contender): number => {
  const decoder = contender.decoder()
  let events = 0
  for (const batch of contender.batches) {
    const result = decoder.decode(batch)
    if (result._tag === "Failure") throw new Error(result.failure.message)
    events += result.success.length
  }
  return events
}

/** Every event of a contender, as text (bigints marked, body bytes as latin1). */
const eventsOf = (contender: Contender): Array<string> => {
  const decoder = contender.decoder()
  return contender.batches.flatMap((batch) => {
    const result = decoder.decode(batch)
    if (result._tag === "Failure") throw new Error(result.failure.message)
    return result.success.map((e) =>
      JSON.stringify({ ...e, body: Buffer.from(e.body).toString("latin1") }, (_, v) => typeof v === "bigint" ? `${v}n` : v)
    )
  })
}

const gc = (globalThis as { gc?: () => void }).gc

const measure = (contender: Contender): Measured => {
  gc?.()
  const profiler = new V8.GCProfiler()
  const before = V8.getHeapStatistics()
  profiler.start()
  const cpu = process.cpuUsage()
  drain(contender)
  const used = process.cpuUsage(cpu)
  const after = V8.getHeapStatistics()
  const profile = profiler.stop() as unknown as { readonly statistics: ReadonlyArray<GcStatistics> }
  let heapFreed = 0
  for (const s of profile.statistics) {
    heapFreed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize
  }
  return {
    cpuMicros: used.user + used.system,
    heapBytes: after.used_heap_size - before.used_heap_size + heapFreed,
    gcs: profile.statistics.length
  }
}

const load = (): string => Os.loadavg().map((l) => l.toFixed(2)).join(" ")
const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Checks the contenders agree, then measures them over `rounds` interleaved rounds and prints the figures per change. */
export const run = (contenders: ReadonlyArray<Contender>, options: {
  /** The changes a drain of the batches decodes (the figures are per change). */
  readonly changes: number
  readonly messages: number
  readonly rounds: number
}): void => {
  const [first, second] = contenders
  if (first !== undefined && second !== undefined) {
    const [a, b] = [eventsOf(first), eventsOf(second)]
    if (a.length !== b.length) throw new Error(`event counts differ: ${a.length} vs ${b.length}`)
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Error(`event ${i} differs:\n${a[i]}\n${b[i]}`)
    console.log(`${a.length} events identical in both`)
  }
  const { changes, messages, rounds } = options
  console.log(`${changes} changes in ${messages} messages, ${first?.batches.length ?? 0} batches; ${rounds} rounds; load ${load()}`)
  for (const contender of contenders) drain(contender) // warm-up
  const results = new Map<string, Array<Measured>>(contenders.map(({ name }) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse()
    for (const contender of order) results.get(contender.name)!.push(measure(contender))
  }
  for (const [name, rs] of results) {
    const cpu = rs.map((r) => r.cpuMicros / changes)
    const heap = rs.map((r) => r.heapBytes / changes)
    console.log(`${name.padEnd(8)} CPU µs/change median ${median(cpu).toFixed(3)} (min ${Math.min(...cpu).toFixed(3)}, max ${
      Math.max(...cpu).toFixed(3)}); heap bytes allocated/change median ${median(heap).toFixed(0)}; GCs/round ${
      median(rs.map((r) => r.gcs))}`)
  }
  console.log(`load after ${load()}`)
}

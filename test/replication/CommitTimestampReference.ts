/**
 * CommitTimestamp's functions as of commit b705fd1, before its double-precision fast path: plain
 * bigint arithmetic. The reference its property test and the old pgoutput decoder's reference use.
 */
const pgEpochOffsetMicros = 946_684_800_000_000n
const pad = (n: number, width: number): string => String(n).padStart(width, "0")

/** Microseconds since 2000-01-01 UTC as epoch milliseconds. */
export const pgMicrosToMillis = (micros: bigint): number => Number((micros + pgEpochOffsetMicros) / 1000n)

/** Microseconds since 2000-01-01 UTC as PostgreSQL's `timestamptz` text in UTC. */
export const formatPgMicrosUtc = (micros: bigint): string => {
  const epochMicros = micros + pgEpochOffsetMicros
  let fractionMicros = Number(epochMicros % 1_000_000n)
  let seconds = epochMicros / 1_000_000n
  if (fractionMicros < 0) {
    fractionMicros += 1_000_000
    seconds -= 1n
  }
  const date = new Date(Number(seconds) * 1000)
  const text = `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)} ` +
    `${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}`
  const fraction = fractionMicros === 0 ? "" : "." + pad(fractionMicros, 6).replace(/0+$/, "")
  return `${text}${fraction}+00`
}

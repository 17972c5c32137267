/**
 * Commit timestamps as the plugins give them: wal2json writes PostgreSQL's ISO text
 * (`2026-11-21 04:41:02.123456+00`, offset in the server's TimeZone), pgoutput sends microseconds
 * since 2000-01-01 UTC. Both become epoch milliseconds; pgoutput's are also rendered as wal2json text.
 */

import type { BodyWriter } from "./BodyWriter.ts"

const isoTimestamp = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?$/

/** Epoch milliseconds (fraction truncated) of a PostgreSQL ISO `timestamptz` text; `undefined` when not one. */
export const parseMillis = (text: string): number | undefined => {
  const m = isoTimestamp.exec(text)
  if (m === null) return undefined
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(m[7].padEnd(6, "0")) / 1000)
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), fraction)
  if (m[8] === undefined) return utc
  const offsetSeconds = Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)
  return utc - (m[8] === "-" ? -offsetSeconds : offsetSeconds) * 1000
}

/** Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch). */
const pgEpochOffsetMicros = 946_684_800_000_000n
const pgEpochOffsetMicrosNumber = 946_684_800_000_000
/** Timestamps within this many microseconds of 2000-01-01 (±253 years) are computed with doubles, exactly. */
const EXACT_MICROS = 8_000_000_000_000_000n

/**
 * Microseconds since 2000-01-01 UTC: a bigint, or a number when the decoder could read it as one
 * exactly (an integer within ±2^52, well inside the fast path's bounds).
 */
export type PgMicros = bigint | number

/** Epoch milliseconds of a PostgreSQL timestamp (microseconds since 2000-01-01 UTC). */
export const pgMicrosToMillis = (micros: PgMicros): number => {
  if (typeof micros === "number" || (micros < EXACT_MICROS && micros > -EXACT_MICROS)) {
    // a safe integer: the remainder and the division are exact (the division truncates, as bigint's)
    const epochMicros = Number(micros) + pgEpochOffsetMicrosNumber
    return (epochMicros - (epochMicros % 1000)) / 1000
  }
  return Number((micros + pgEpochOffsetMicros) / 1000n)
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0")

/** The last whole second formatted, and its text: commits come many to a second. */
let lastSeconds = Number.NaN
let lastSecondsText = ""

/** `2026-11-21 04:41:02` of epoch seconds. */
const secondsText = (seconds: number): string => {
  if (seconds === lastSeconds) return lastSecondsText
  const date = new Date(seconds * 1000)
  const text = `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)} ` +
    `${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}`
  lastSeconds = seconds
  lastSecondsText = text
  return text
}

/**
 * The last {@link split}: its whole seconds, and the microseconds of the second without their
 * trailing zeros (`splitFraction`, written in `splitDigits` digits; 0 digits when there are none).
 */
let splitSeconds = 0
let splitFraction = 0
let splitDigits = 0

/** Splits a PostgreSQL timestamp into epoch seconds and the fraction of the second as printed. */
const split = (micros: PgMicros): void => {
  let fractionMicros: number
  let seconds: number
  if (typeof micros === "number" || (micros < EXACT_MICROS && micros > -EXACT_MICROS)) {
    const epochMicros = Number(micros) + pgEpochOffsetMicrosNumber
    fractionMicros = epochMicros % 1_000_000
    seconds = (epochMicros - fractionMicros) / 1_000_000
  } else {
    const epochMicros = micros + pgEpochOffsetMicros
    fractionMicros = Number(epochMicros % 1_000_000n)
    seconds = Number(epochMicros / 1_000_000n)
  }
  if (fractionMicros < 0) {
    fractionMicros += 1_000_000
    seconds -= 1
  }
  // the fraction's six digits without their trailing zeros
  let digits = fractionMicros === 0 ? 0 : 6
  while (digits > 0 && fractionMicros % 10 === 0) {
    fractionMicros /= 10
    digits--
  }
  splitSeconds = seconds
  splitFraction = fractionMicros
  splitDigits = digits
}

/**
 * A PostgreSQL timestamp (microseconds since 2000-01-01 UTC) as PostgreSQL prints a `timestamptz`
 * in ISO style with TimeZone UTC: `2026-11-21 04:41:02.123456+00`, trailing zeros of the fraction dropped.
 */
export const formatPgMicrosUtc = (micros: PgMicros): string => {
  split(micros)
  if (splitDigits === 0) return `${secondsText(splitSeconds)}+00`
  return `${secondsText(splitSeconds)}.${pad(splitFraction, splitDigits)}+00`
}

/** {@link formatPgMicrosUtc}'s text written as bytes: no string made but the seconds' (reused for a second's commits). */
export const writePgMicrosUtc = (writer: BodyWriter, micros: PgMicros): void => {
  split(micros)
  writer.ascii(secondsText(splitSeconds))
  if (splitDigits > 0) {
    writer.byte(0x2e) // .
    let fraction = splitFraction
    for (let scale = 10 ** (splitDigits - 1); scale >= 1; scale /= 10) {
      const digit = Math.floor(fraction / scale)
      writer.byte(0x30 + digit)
      fraction -= digit * scale
    }
  }
  writer.ascii("+00")
}

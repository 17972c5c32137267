/**
 * Commit times from the bytes of wal2json's `timestamp` (a quoted JSON string): PostgreSQL's usual
 * ISO text (`2026-11-21 04:41:02.123456+00`) read digit by digit, its date and time to the second
 * computed once while they repeat (commits come many to a second); any other text read by
 * {@link CommitTimestamp.parseMillis}, with the same result.
 */
import * as JsonScan from "../format/JsonScan.ts"
import * as CommitTimestamp from "./CommitTimestamp.ts"

/** The date and time to the second last computed: its 19 bytes and epoch milliseconds. */
export class Seconds {
  readonly bytes = new Uint8Array(19)
  known = false
  millis = 0
}

const digitAt = (b: Uint8Array, i: number): number => {
  const d = b[i]! - 0x30
  return d >= 0 && d <= 9 ? d : -1
}

/** Two digits at `i` as a number, or -1. */
const twoDigits = (b: Uint8Array, i: number): number => {
  const high = digitAt(b, i)
  const low = digitAt(b, i + 1)
  return high < 0 || low < 0 ? -1 : high * 10 + low
}

/** Any other text: as `parseMillis` of the string. */
const slow = (b: Uint8Array, start: number, end: number): number | undefined =>
  CommitTimestamp.parseMillis(JsonScan.stringValue(b, start, end))

/** The seconds of an offset's hours, minutes and seconds. */
const offsetParts = [3600, 60, 1]

/** The epoch milliseconds of the quoted timestamp `[start, end)` of `b`, as `parseMillis` of its string. */
export const millisAt = (b: Uint8Array, start: number, end: number, seconds: Seconds): number | undefined => {
  const s = start + 1
  const e = end - 1
  // YYYY-MM-DD HH:MM:SS
  if (e - s < 19 || b[s + 4] !== 0x2d || b[s + 7] !== 0x2d || b[s + 10] !== 0x20 || b[s + 13] !== 0x3a || b[s + 16] !== 0x3a) {
    return slow(b, start, end)
  }
  let base: number
  let same = seconds.known
  if (same) {
    for (let i = 0; i < 19; i++) {
      if (seconds.bytes[i] !== b[s + i]) {
        same = false
        break
      }
    }
  }
  if (same) base = seconds.millis
  else {
    const century = twoDigits(b, s)
    const year = twoDigits(b, s + 2)
    const month = twoDigits(b, s + 5)
    const day = twoDigits(b, s + 8)
    const hour = twoDigits(b, s + 11)
    const minute = twoDigits(b, s + 14)
    const second = twoDigits(b, s + 17)
    if (century < 0 || year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return slow(b, start, end)
    base = Date.UTC(century * 100 + year, month - 1, day, hour, minute, second, 0)
    seconds.bytes.set(b.subarray(s, s + 19))
    seconds.known = true
    seconds.millis = base
  }
  let i = s + 19
  let fraction = 0
  if (b[i] === 0x2e /* . */) {
    let micros = 0
    let digits = 0
    while (++i < e && digitAt(b, i) >= 0) {
      if (++digits > 6) return slow(b, start, end)
      micros = micros * 10 + digitAt(b, i)
    }
    if (digits === 0) return slow(b, start, end)
    for (let d = digits; d < 6; d++) micros *= 10
    fraction = Math.floor(micros / 1000)
  }
  if (i === e) return base + fraction
  const sign = b[i]
  if (sign !== 0x2b && sign !== 0x2d) return slow(b, start, end)
  let offsetSeconds = 0
  for (let p = 0; p < 3 && i < e; p++) {
    // +HH, then :MM, then :SS
    if (p > 0 && b[i] !== 0x3a) return slow(b, start, end)
    const value = twoDigits(b, i + 1)
    if (value < 0) return slow(b, start, end)
    offsetSeconds += value * offsetParts[p]!
    i += 3
  }
  if (i !== e) return slow(b, start, end)
  return base + fraction - (sign === 0x2d ? -offsetSeconds : offsetSeconds) * 1000
}

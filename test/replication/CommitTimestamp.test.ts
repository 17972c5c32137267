/**
 * pgoutput commit times (microseconds since 2000-01-01 UTC) as epoch milliseconds and as
 * PostgreSQL's `timestamptz` text: the double-precision fast path agrees with plain bigint
 * arithmetic (the way they were computed before) over the whole int64 range, and known values.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as CommitTimestamp from "../../src/replication/CommitTimestamp.ts"

const offset = 946_684_800_000_000n
const pad = (n: number, width: number): string => String(n).padStart(width, "0")

/** The bigint-only computation, as CommitTimestamp did it before its fast path. */
const reference = {
  millis: (micros: bigint): number => Number((micros + offset) / 1000n),
  text: (micros: bigint): string => {
    const epochMicros = micros + offset
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
}

const micros = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.bigInt({ min: -(10n ** 16n), max: 10n ** 16n }),
  // around the fast path's bounds, and around 2000-01-01 and 1970-01-01
  fc.constantFrom(8_000_000_000_000_000n, -8_000_000_000_000_000n, 0n, -offset).chain((at) =>
    fc.bigInt({ min: at - 3_000_000n, max: at + 3_000_000n })
  ),
  // many commits in one second, as a busy server has them (the seconds' text is reused)
  fc.bigInt({ min: 849_000_000_000_000n, max: 849_000_002_000_000n })
)

describe("CommitTimestamp", () => {
  it("pgoutput's microseconds become the milliseconds and text bigint arithmetic gives", () => {
    fc.assert(
      fc.property(fc.array(micros, { minLength: 1, maxLength: 20 }), (values) => {
        for (const value of values) {
          expect(CommitTimestamp.pgMicrosToMillis(value)).toBe(reference.millis(value))
          expect(CommitTimestamp.formatPgMicrosUtc(value)).toBe(reference.text(value))
        }
      }),
      { numRuns: 500 }
    )
  })

  it("writes timestamps as PostgreSQL prints them in UTC", () => {
    expect(CommitTimestamp.formatPgMicrosUtc(0n)).toBe("2000-01-01 00:00:00+00")
    expect(CommitTimestamp.formatPgMicrosUtc(1n)).toBe("2000-01-01 00:00:00.000001+00")
    expect(CommitTimestamp.formatPgMicrosUtc(-1n)).toBe("1999-12-31 23:59:59.999999+00")
    expect(CommitTimestamp.formatPgMicrosUtc(849_312_062_123_450n)).toBe("2026-11-30 00:01:02.12345+00")
    expect(CommitTimestamp.pgMicrosToMillis(-1n)).toBe(946_684_799_999)
    expect(CommitTimestamp.pgMicrosToMillis(849_312_062_123_450n)).toBe(1_795_996_862_123)
  })
})

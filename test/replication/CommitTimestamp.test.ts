/**
 * pgoutput commit times (microseconds since 2000-01-01 UTC) as epoch milliseconds and as
 * PostgreSQL's `timestamptz` text: the double-precision fast path agrees with plain bigint
 * arithmetic (the way they were computed before) over the whole int64 range, and known values.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { BodyWriter } from "../../src/replication/BodyWriter.ts"
import * as CommitTimestamp from "../../src/replication/CommitTimestamp.ts"
import * as reference from "./CommitTimestampReference.ts"

/** Microseconds from 2000-01-01 back to the Unix epoch (-offset is 1970-01-01 in pgoutput's unit). */
const offset = 946_684_800_000_000n

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

/** The text {@link CommitTimestamp.writePgMicrosUtc} writes, after a few bytes already written. */
const written = (value: CommitTimestamp.PgMicros): string => {
  const writer = new BodyWriter(8)
  writer.ascii("head")
  CommitTimestamp.writePgMicrosUtc(writer, value)
  return writer.text(4, writer.length)
}

describe("CommitTimestamp", () => {
  it("pgoutput's microseconds become the milliseconds and text bigint arithmetic gives", () => {
    fc.assert(
      fc.property(fc.array(micros, { minLength: 1, maxLength: 20 }), (values) => {
        for (const value of values) {
          expect(CommitTimestamp.pgMicrosToMillis(value)).toBe(reference.pgMicrosToMillis(value))
          expect(CommitTimestamp.formatPgMicrosUtc(value)).toBe(reference.formatPgMicrosUtc(value))
          expect(written(value)).toBe(reference.formatPgMicrosUtc(value))
          // the decoder reads a value within ±2^52 as a number
          if (value < 2n ** 52n && value > -(2n ** 52n)) {
            expect(CommitTimestamp.pgMicrosToMillis(Number(value))).toBe(reference.pgMicrosToMillis(value))
            expect(CommitTimestamp.formatPgMicrosUtc(Number(value))).toBe(reference.formatPgMicrosUtc(value))
            expect(written(Number(value))).toBe(reference.formatPgMicrosUtc(value))
          }
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
    expect(written(849_312_062_123_450)).toBe("2026-11-30 00:01:02.12345+00")
    expect(written(849_312_062_000_001n)).toBe("2026-11-30 00:01:02.000001+00")
    expect(CommitTimestamp.pgMicrosToMillis(-1n)).toBe(946_684_799_999)
    expect(CommitTimestamp.pgMicrosToMillis(849_312_062_123_450n)).toBe(1_795_996_862_123)
  })
})

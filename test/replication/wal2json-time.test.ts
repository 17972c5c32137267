/**
 * Commit times read from wal2json's timestamp bytes (Wal2JsonTime.millisAt) are exactly those
 * CommitTimestamp.parseMillis reads from the string, for PostgreSQL's texts and for any other text.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as CommitTimestamp from "../../src/replication/CommitTimestamp.ts"
import * as Wal2JsonTime from "../../src/replication/Wal2JsonTime.ts"

const encoder = new TextEncoder()
const two = fc.integer({ min: 0, max: 99 }).map((n) => String(n).padStart(2, "0"))

const pgText = fc.record({
  year: fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, "0")),
  month: two, day: two, hour: two, minute: two, second: two,
  fraction: fc.oneof(fc.constant(""), fc.stringMatching(/^\.\d{0,8}$/)),
  offset: fc.oneof(fc.constant(""), fc.stringMatching(/^[+-]\d\d(:\d\d){0,3}$/), fc.constantFrom("+0", "Z", "+01:3", " +00"))
}).map((t) => `${t.year}-${t.month}-${t.day} ${t.hour}:${t.minute}:${t.second}${t.fraction}${t.offset}`)

/** A text, damaged or not, quoted as JSON (sometimes with an escape for a character). */
const quoted = fc.tuple(fc.oneof(pgText, fc.string({ maxLength: 30 })), fc.nat(), fc.constantFrom("", "x", "1", "-", ":", "."), fc.boolean())
  .map(([text, at, insert, escape]) => {
    const i = at % (text.length + 1)
    const damaged = text.slice(0, i) + insert + text.slice(i)
    const json = JSON.stringify(damaged)
    return escape && damaged.length > 0 ? `"\\u${damaged.charCodeAt(0).toString(16).padStart(4, "0")}${JSON.stringify(damaged.slice(1)).slice(1)}` : json
  })

describe("Wal2JsonTime.millisAt", () => {
  it("reads what CommitTimestamp.parseMillis reads, one timestamp after another", () => {
    fc.assert(fc.property(fc.array(fc.oneof(pgText.map((t) => JSON.stringify(t)), quoted), { minLength: 1, maxLength: 6 }), (texts) => {
      const seconds = new Wal2JsonTime.Seconds()
      for (const text of texts) {
        const bytes = encoder.encode(` ${text},`)
        expect(Wal2JsonTime.millisAt(bytes, 1, bytes.length - 1, seconds)).toBe(CommitTimestamp.parseMillis(JSON.parse(text)))
      }
    }), { numRuns: 20_000 })
  })
})

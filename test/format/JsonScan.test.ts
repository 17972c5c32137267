import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as JsonScan from "../../src/format/JsonScan.ts"

const encoder = new TextEncoder()

describe("JsonScan", () => {
  it("finds the end of any JSON string, escapes and long runs of backslashes included", () => {
    const text = fc.string({ unit: fc.constantFrom("a", "\\", "\"", "é", "\u0001", "😀", " ") as fc.Arbitrary<string>, maxLength: 200 })
    fc.assert(fc.property(text, fc.nat(60), (value, pad) => {
      const json = " ".repeat(pad) + JSON.stringify(value) + ",1"
      const bytes = encoder.encode(json)
      const end = JsonScan.skipString(bytes, pad)
      expect(end).toBe(bytes.length - 2)
      expect(JsonScan.stringValue(bytes, pad, end)).toBe(value)
      expect(Buffer.from(JsonScan.stringBytes(bytes, pad, end)).toString("utf8")).toBe(value)
    }), { numRuns: 2000 })
  })

  it("reads members and elements of nested values", () => {
    const bytes = encoder.encode(`{"a": [1, {"b": "}"}, "]"], "c" : null, "d":{"e":[]}}`)
    const seen: Array<string> = []
    JsonScan.members(bytes, 0, (key, start, end) => seen.push(`${key}=${JsonScan.text(bytes, start, end)}`))
    expect(seen).toEqual([`a=[1, {"b": "}"}, "]"]`, "c=null", `d={"e":[]}`])
    expect(() => JsonScan.skipValue(encoder.encode(`"open`), 0)).toThrow(JsonScan.Malformed)
  })
})

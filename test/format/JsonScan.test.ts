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

  it("checkValue accepts exactly the JSON values JSON.parse accepts, whatever is inserted or removed anywhere", () => {
    const damaged = fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat(), fc.constantFrom("", " ", ",", ":", "\"", "\\", "{", "}", "[", "]", "\u0001", "0", "-", ".", "e", "E+", "t", "nul", "\\u12", "\\q"), fc.boolean())
      .map(([value, at, insert, remove]) => {
        const text = JSON.stringify(value) ?? "null"
        const i = at % (text.length + 1)
        return text.slice(0, i) + insert + text.slice(remove ? i + 1 : i)
      })
    fc.assert(fc.property(damaged, (text) => {
      const bytes = encoder.encode(text)
      let scanned: boolean
      try {
        const start = JsonScan.skipWs(bytes, 0)
        scanned = JsonScan.skipWs(bytes, JsonScan.checkValue(bytes, start)) === bytes.length
      } catch (error) {
        if (!(error instanceof JsonScan.Malformed)) throw error
        scanned = false
      }
      let parsed = true
      try {
        JSON.parse(text)
      } catch {
        parsed = false
      }
      expect(scanned).toBe(parsed)
    }), { numRuns: 5000 })
  })
})

import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { type Applied, lsnValue, rebuild, rowsOf, shouldApply } from "./Consumer.ts"

const readmeSnippet = (): string => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
  const start = readme.indexOf("```ts\n/** The highest position applied per partition key. */")
  expect(start).toBeGreaterThan(0)
  return readme.slice(start + "```ts\n".length, readme.indexOf("```", start + 5))
}

describe("the README's consumer", () => {
  it("is the function the tests rebuild tables with, verbatim", () => {
    const source = readFileSync(new URL("./Consumer.ts", import.meta.url), "utf8")
    const snippet = readmeSnippet()
    expect(snippet.length).toBeGreaterThan(200)
    expect(source).toContain(snippet)
  })

  it("orders positions by LSN as a number, then by index", () => {
    expect(lsnValue("16/B374D848")).toBe(0x16b374d848n)
    expect(lsnValue("0/FF") < lsnValue("0/100")).toBe(true) // not text order
    const applied: Applied = new Map()
    expect(shouldApply(applied, "k", { commit_lsn: "0/100", commit_idx: 1 })).toBe(true)
    expect(shouldApply(applied, "k", { commit_lsn: "0/100", commit_idx: 1 })).toBe(false) // sent again
    expect(shouldApply(applied, "k", { commit_lsn: "0/100", commit_idx: 0 })).toBe(false)
    expect(shouldApply(applied, "k", { commit_lsn: "0/FF", commit_idx: 9 })).toBe(false)
    expect(shouldApply(applied, "other", { commit_lsn: "0/FF", commit_idx: 9 })).toBe(true)
    expect(shouldApply(applied, "k", { commit_lsn: "0/100", commit_idx: 2 })).toBe(true)
    expect(shouldApply(applied, "k", { commit_lsn: "1/0", commit_idx: 0 })).toBe(true)
  })

  it("rebuilds the same tables in any key order, skipping records sent again", () => {
    const rec = (key: string, lsn: string, idx: number, action: string, columns?: Array<[string, unknown]>) => ({
      partitionKey: key,
      data: JSON.stringify({
        commit_lsn: lsn, commit_idx: idx, action, schema: "public", table: "t",
        ...(columns === undefined ? {} : { columns: columns.map(([name, value]) => ({ name, value })) })
      })
    })
    const records = [
      rec("a", "0/10", 0, "I", [["id", 1], ["v", "x"]]),
      rec("b", "0/10", 1, "I", [["id", 2], ["v", "y"]]),
      rec("a", "0/20", 0, "U", [["v", "z"]]), // merged: id stays
      rec("a", "0/10", 0, "I", [["id", 1], ["v", "x"]]), // sent again after a restart: skipped
      rec("b", "0/30", 0, "D"),
      rec("b", "0/10", 1, "I", [["id", 2], ["v", "y"]]) // sent again: must not resurrect b
    ]
    const forward = rowsOf(rebuild(records, (keys) => [...keys].sort()), "public.t")
    const backward = rowsOf(rebuild(records, (keys) => [...keys].sort().reverse()), "public.t")
    expect(forward).toEqual([`{"id":1,"v":"z"}`])
    expect(backward).toEqual(forward)
  })
})

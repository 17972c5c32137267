/** The shared quoting: embedded quotes doubled, backslashes in escape strings (as PQescapeLiteral). */
import { describe, expect, it } from "vitest"
import * as Quote from "../../src/postgres/Quote.ts"
import * as StartOptions from "../../src/replication/StartOptions.ts"

describe("Quote", () => {
  it("doubles embedded quotes in identifiers and literals", () => {
    expect(Quote.identifier(`a"b`)).toBe(`"a""b"`)
    expect(Quote.literal("it's")).toBe(`'it''s'`)
    expect(Quote.replicationLiteral("it's")).toBe(`'it''s'`)
  })

  it("writes a literal with a backslash as an escape string, and never so in replication commands", () => {
    expect(Quote.literal(`a\\'b`)).toBe(` E'a\\\\''b'`)
    expect(Quote.replicationLiteral(`a\\'b`)).toBe(`'a\\''b'`)
  })
})

describe("StartOptions", () => {
  it("builds one set of pairs for START_REPLICATION and for the peek functions", () => {
    const pairs = StartOptions.forConfig({
      plugin: "wal2json", publication: "p", wal2jsonAddTables: ["public.a", "s.*"], wal2jsonFilterTables: ["o'brien.x"]
    })
    expect(StartOptions.clause(pairs)).toMatch(/^\("format-version" '2', .*"add-tables" 'public\.a,s\.\*', "filter-tables" 'o''brien\.x,cdc_logical_replication\.\*'\)$/)
    expect(StartOptions.sqlArguments(pairs)).toMatch(/^'format-version', '2', .*'add-tables', 'public\.a,s\.\*', 'filter-tables', 'o''brien\.x,cdc_logical_replication\.\*'$/)
    expect(StartOptions.forConfig({ plugin: "pgoutput", publication: `we"ird`, wal2jsonAddTables: ["x"], wal2jsonFilterTables: [] }))
      .toEqual([["proto_version", "1"], ["publication_names", `we"ird`], ["messages", "true"]])
  })
})

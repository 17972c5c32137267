import * as Result from "effect/Result"
import { describe, expect, it } from "vitest"
import { BatchWriter, makeScratch } from "../../src/format/BatchWriter.ts"
import * as ColumnFilter from "../../src/format/ColumnFilter.ts"
import * as Exclusion from "../../src/format/Exclusion.ts"
import * as WalBody from "../../src/format/WalBody.ts"

const patterns = (raw: string) => {
  const parsed = ColumnFilter.parseList(raw)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure)
  return parsed.success
}

describe("ColumnFilter", () => {
  it("reads schema.table.column, table.column and column, with * globs", () => {
    const filter = ColumnFilter.make(patterns("public.users.password_hash, *.ssn, pii.*.*, orders.card_*, token"))
    expect(filter.forTable("public", "users")!("password_hash")).toBe(true)
    expect(filter.forTable("public", "users")!("email")).toBe(false)
    expect(filter.forTable("other", "users")!("ssn")).toBe(true)
    expect(filter.forTable("other", "users")!("password_hash")).toBe(false)
    expect(filter.forTable("pii", "anything")!("x")).toBe(true)
    expect(filter.forTable("s", "orders")!("card_number")).toBe(true)
    expect(filter.forTable("s", "orders")!("cardinal")).toBe(false)
    expect(filter.forTable("s", "t")!("token")).toBe(true)
    // names are case-sensitive, dots in a glob part are literal
    expect(ColumnFilter.make(patterns("public.Users.x")).forTable("public", "users")).toBeUndefined()
    expect(ColumnFilter.make(patterns("a.b.c")).forTable("a", "b")!("cc")).toBe(false)
  })

  it("names every bad pattern", () => {
    const parsed = ColumnFilter.parseList("a.b.c.d, ok, x..y, .z")
    expect(Result.isFailure(parsed) && parsed.failure).toBe(
      `"a.b.c.d" is not schema.table.column, table.column or column; "x..y" is not schema.table.column, table.column or column; ` +
        `".z" is not schema.table.column, table.column or column`
    )
  })

  it("finds the patterns that match no column of the catalog", () => {
    const list = patterns("public.users.password_hash,*.ssn,public.nosuch.*")
    const unmatched = ColumnFilter.unmatched(list, [["public", "users", "password_hash"], ["s", "t", "ssn"]])
    expect(unmatched.map((p) => p.text)).toEqual(["public.nosuch.*"])
  })

  it("filters rows built outside the decoders (backfill)", () => {
    const filter = ColumnFilter.make(patterns("*.ssn"))
    expect(filter.filterRow("public", "people", { id: 1, ssn: "x", name: "n" })).toEqual({ id: 1, name: "n" })
    const row = { id: 1 }
    expect(ColumnFilter.make([]).filterRow("public", "people", row)).toBe(row)
  })
})

describe("Exclusion on wal2json bodies", () => {
  it("cuts the columns from columns, identity and pk, keeping every other byte", () => {
    const head = `{"commit_lsn":"0/10","commit_idx":0,"action":"U","xid":5,"lsn":"0/8","schema":"public","table":"t",`
    const body = Buffer.concat([
      Buffer.from(head + `"columns":[{"name":"id","type":"numeric","value":1.10},{"name":"ssn","type":"text","value":"1"},` +
        `{"name":"raw","type":"text","value":"`),
      Buffer.from([0xff, 0xfe]), // not UTF-8: kept as it is
      Buffer.from(`"}],"identity":[{"name":"ssn","type":"text","value":"0"}],"pk":[{"name":"id","type":"numeric"}]}`)
    ])
    const view = WalBody.read(body)
    const excluded = ColumnFilter.make(patterns("*.ssn")).forTable("public", "t")!
    expect(Exclusion.concerns(view, excluded)).toBe(true)
    expect(Exclusion.keyExcluded(view, excluded)).toBe(false)
    const out = new BatchWriter(makeScratch())
    Exclusion.write(view, excluded, out)
    out.end()
    const [written] = out.finish()
    expect(Buffer.from(written!)).toEqual(Buffer.concat([
      Buffer.from(head + `"columns":[{"name":"id","type":"numeric","value":1.10},{"name":"raw","type":"text","value":"`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`"}],"identity":[],"pk":[{"name":"id","type":"numeric"}]}`)
    ]))
  })

  it("hides a key whose column is excluded behind its SHA-256", () => {
    expect(Exclusion.hiddenKey(`["a"]`)).toMatch(/^\["sha256:[0-9a-f]{64}"\]$/)
    expect(Exclusion.hiddenKey(`["a"]`)).toBe(Exclusion.hiddenKey(`["a"]`))
    expect(Exclusion.hiddenKey(`["a"]`)).not.toBe(Exclusion.hiddenKey(`["b"]`))
  })
})

import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { repairTypes } from "../../src/replication/Wal2JsonRepair.ts"

/** An identifier as format_type writes it: quoted (quotes doubled) unless it is a plain lower-case word. */
const identifier = fc.oneof(
  fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/),
  fc.string({ minLength: 1, maxLength: 8 }).map((name) => `"${name.replaceAll(`"`, `""`)}"`)
)

/** A type name as format_type shows it: `schema.name` or `name`, maybe with `[]`. */
const typeName = fc
  .tuple(fc.option(identifier, { nil: undefined }), identifier, fc.boolean())
  .map(([schema, name, array]) => `${schema === undefined ? "" : `${schema}.`}${name}${array ? "[]" : ""}`)

/** A value as wal2json writes it: any JSON (a json column's value is written as it is). */
const column = fc.record({ name: fc.string({ maxLength: 6 }), type: typeName, value: fc.jsonValue({ maxDepth: 2 }) })

const message = fc.record({
  action: fc.constantFrom("I", "U", "D"),
  columns: fc.array(column, { maxLength: 4 }),
  identity: fc.array(column, { maxLength: 2 }),
  pk: fc.array(column.map(({ name, type }) => ({ name, type })), { maxLength: 2 })
})

type Message = typeof message extends fc.Arbitrary<infer A> ? A : never

/** How wal2json writes a message: a type starting with `"` is written as it is, every other string escaped. */
const asWal2Json = (m: Message, typeText: (type: string) => string): string => {
  const list = (columns: ReadonlyArray<{ name: string; type: string; value?: unknown }>) =>
    `[${columns.map((c) => `{"name":${JSON.stringify(c.name)},"type":${typeText(c.type)}${"value" in c ? `,"value":${JSON.stringify(c.value)}` : ""}}`).join(",")}]`
  return `{"action":"${m.action}","schema":"public","table":"t","columns":${list(m.columns)},"identity":${list(m.identity)},"pk":${list(m.pk)}}`
}

const defective = (type: string): string => (type.startsWith(`"`) ? type : JSON.stringify(type))

/** A repaired type: its name; one written as a valid JSON string (`"char"`) keeps that string's meaning, as unrepaired. */
const repairedType = (type: string): string => {
  try {
    JSON.parse(defective(type))
    return defective(type)
  } catch {
    return JSON.stringify(type)
  }
}

describe("Wal2JsonRepair.repairTypes", () => {
  it("leaves valid JSON alone (nothing to repair)", () => {
    fc.assert(fc.property(message, (m) => {
      expect(repairTypes(asWal2Json(m, JSON.stringify))).toBeUndefined()
    }))
  })

  it("repairs unescaped type names into JSON strings of the name, everything else unchanged", () => {
    fc.assert(fc.property(message, (m) => {
      const text = asWal2Json(m, defective)
      let valid = true
      try {
        JSON.parse(text)
      } catch {
        valid = false
      }
      // valid as written (a lone quoted name such as `"char"`): never given to the repair
      fc.pre(!valid)
      const repaired = repairTypes(text)
      expect(repaired).toBeDefined()
      expect(JSON.parse(repaired!)).toEqual(JSON.parse(asWal2Json(m, repairedType)))
    }), { numRuns: 500 })
  })

  it("repairs what wal2json wrote on PostgreSQL 15", () => {
    const text = `{"action":"I","xid":726,"lsn":"0/150AE18","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":1},{"name":"r","type":"App".role,"value":"a"},{"name":"w","type":"App"."we""ird","value":"x"},{"name":"b","type":"App"."back\\slash","value":"y"},{"name":"ra","type":"\\"App\\".role[]","value":"{a,b}"},{"name":"j","type":"json","value":{"type":"x","a":[1]}},{"name":"col\\"q","type":"text","value":"q"}],"pk":[{"name":"id","type":"integer"}]}`
    expect(() => JSON.parse(text)).toThrow()
    const parsed = JSON.parse(repairTypes(text)!)
    expect(parsed.columns.map((c: { type: string }) => c.type)).toEqual([
      "integer", `"App".role`, `"App"."we""ird"`, `"App"."back\\slash"`, `"App".role[]`, "json", "text"
    ])
    expect(parsed.columns[5].value).toEqual({ type: "x", a: [1] })
    expect(parsed.columns[6].name).toBe(`col"q`)
  })

  it("gives up on text that is not a wal2json message", () => {
    expect(repairTypes(`{"action":"I","columns":[{"name":"a","type":"x"y"z,"value":1}]}`)).toBeUndefined()
    expect(repairTypes(`not json`)).toBeUndefined()
    expect(repairTypes(`{"action":"I","columns":[{"name":"a","type":"App".role`)).toBeUndefined()
  })
})

/**
 * The Debezium renderer against the examples of Debezium's PostgreSQL connector documentation
 * (the `customers` table: create, update with REPLICA IDENTITY FULL, delete, transaction block) and
 * the value conversions of its JSON converter, on bodies in the wal2json shape.
 */
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import * as ColumnFilter from "../../src/format/ColumnFilter.ts"
import * as DebeziumValues from "../../src/format/DebeziumValues.ts"
import * as RecordFormat from "../../src/format/RecordFormat.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const customer = (id: number, first: string) =>
  `[{"name":"id","type":"integer","value":${id}},{"name":"first_name","type":"character varying(255)","value":"${first}"},` +
  `{"name":"last_name","type":"character varying(255)","value":"Kretchmar"},` +
  `{"name":"email","type":"character varying(255)","value":"annek@noanswer.org"}]`
const pk = `"pk":[{"name":"id","type":"integer"}]`

/** A change of the documentation's transaction 555: LSN 24023128 (0/16E9058), commit at 24023200. */
const event = (action: "I" | "U" | "D" | "M" | "R", commitIdx: number, body: string, table = "customers"): ChangeEvent => {
  const commitLsn = 24023200n
  return {
    lsn: 24023128n, ackLsn: 24023128n, xid: 555, commitLsn, commitIdx,
    // the renderer reads the action from the body (R is not an event action on this branch yet)
    action: action === "R" ? "I" : action, schema: action === "M" ? "" : "public",
    table: action === "M" ? "" : table, pk: action === "M" ? undefined : "[1]", commitTimeMs: 1559033904863,
    body: encoder.encode(`{"commit_lsn":"${Lsn.format(commitLsn)}","commit_idx":${commitIdx},"action":"${action}","xid":555,` +
      `"timestamp":"2019-05-28 09:38:24.863+00","lsn":"0/16E9058",${body}}`)
  }
}

const render = (events: ReadonlyArray<ChangeEvent>, exclude = "") => {
  const format = RecordFormat.make({
    recordFormat: "debezium",
    exclude: ColumnFilter.make(exclude === "" ? [] : (ColumnFilter.parseList(exclude) as { success: ReadonlyArray<ColumnFilter.ColumnPattern> }).success),
    source: { name: "PostgreSQL_server", db: "postgres" }
  }, () => 1559033904900)!
  return format.formatBatch(events).map((e) => JSON.parse(decoder.decode(e.body)) as Record<string, unknown>)
}

const source = {
  version: RecordFormat.VERSION, connector: "postgresql", name: "PostgreSQL_server", ts_ms: 1559033904863, snapshot: "false",
  db: "postgres", sequence: `["24023200","24023128"]`, schema: "public", table: "customers", txId: 555, lsn: 24023128, xmin: null
}

describe("Debezium change event values (the documentation's customers examples)", () => {
  it("renders create, update (REPLICA IDENTITY FULL) and delete events, with the transaction block", () => {
    const [created, updated, deleted] = render([
      event("I", 0, `"schema":"public","table":"customers","columns":${customer(1, "Anne")},${pk}`),
      event("U", 1, `"schema":"public","table":"customers","columns":${customer(1, "Anne Marie")},"identity":${customer(1, "Anne")},${pk}`),
      event("D", 2, `"schema":"public","table":"customers","identity":${customer(1, "Anne Marie")},${pk}`)
    ])
    expect(created).toEqual({
      before: null,
      after: { id: 1, first_name: "Anne", last_name: "Kretchmar", email: "annek@noanswer.org" },
      source,
      op: "c",
      ts_ms: 1559033904900,
      transaction: { id: "555:24023200", total_order: 1, data_collection_order: 1 }
    })
    expect(Object.keys(created!)).toEqual(["before", "after", "source", "op", "ts_ms", "transaction"])
    expect(Object.keys(created!.source as object)).toEqual(Object.keys(source))
    expect(updated).toMatchObject({
      before: { id: 1, first_name: "Anne", last_name: "Kretchmar", email: "annek@noanswer.org" },
      after: { id: 1, first_name: "Anne Marie", last_name: "Kretchmar", email: "annek@noanswer.org" },
      op: "u",
      transaction: { id: "555:24023200", total_order: 2, data_collection_order: 2 }
    })
    expect(deleted).toMatchObject({
      before: { id: 1, first_name: "Anne Marie", last_name: "Kretchmar", email: "annek@noanswer.org" },
      after: null,
      op: "d",
      transaction: { id: "555:24023200", total_order: 3, data_collection_order: 3 }
    })
  })

  it("gives an update under REPLICA IDENTITY DEFAULT no before (its identity is only the key), counts per table", () => {
    const [updated, other] = render([
      event("U", 0, `"schema":"public","table":"customers","columns":${customer(1, "B")},"identity":[{"name":"id","type":"integer","value":1}],${pk}`),
      event("I", 1, `"schema":"public","table":"orders","columns":[{"name":"id","type":"integer","value":9}],${pk}`, "orders")
    ])
    expect(updated).toMatchObject({ before: null, op: "u", transaction: { total_order: 1, data_collection_order: 1 } })
    expect(other).toMatchObject({ op: "c", transaction: { total_order: 2, data_collection_order: 1 } })
  })

  it("writes LSNs beyond 2^53 exactly", () => {
    const body = `{"commit_lsn":"200000/20","commit_idx":0,"action":"I","xid":9,"lsn":"200000/10","schema":"public","table":"customers",` +
      `"columns":${customer(1, "Anne")},${pk}}`
    const format = RecordFormat.make({ recordFormat: "debezium", exclude: ColumnFilter.make([]), source: { name: "n", db: "d" } })!
    const commitLsn = (0x200000n << 32n) | 0x20n
    const [rendered] = format.formatBatch([{ ...event("I", 0, ""), commitLsn, body: encoder.encode(body) }])
    const text = decoder.decode(rendered!.body)
    expect(text).toContain(`"lsn":${((0x200000n << 32n) | 0x10n).toString()},`)
    expect(text).toContain(`"id":"9:${commitLsn.toString()}"`)
  })

  it("renders a backfill row as a read (op r, snapshot), positioned like a change", () => {
    const [read] = render([event("R", 4, `"schema":"public","table":"customers","columns":${customer(1, "Anne")},${pk}`)])
    expect(read).toMatchObject({
      before: null,
      after: { id: 1, first_name: "Anne", last_name: "Kretchmar", email: "annek@noanswer.org" },
      op: "r",
      source: { snapshot: "true", table: "customers" },
      transaction: { id: "555:24023200", total_order: 5, data_collection_order: 1 }
    })
  })

  it("renders a logical message with its content in base64, and leaves excluded columns out", () => {
    const [message] = render([event("M", 0, `"transactional":true,"prefix":"audit","content":"hi \\u0001"`)])
    expect(message).toMatchObject({ op: "m", message: { prefix: "audit", content: Buffer.from("hi \u0001").toString("base64") } })
    expect(message).toMatchObject({ source: { schema: "", table: "" }, transaction: { total_order: 1 } })
    const [created] = render([event("I", 0, `"schema":"public","table":"customers","columns":${customer(1, "Anne")},${pk}`)], "*.email")
    expect(created!.after).toEqual({ id: 1, first_name: "Anne", last_name: "Kretchmar" })
  })
})

const converters = DebeziumValues.makeConverters()
const convert = (type: string, json: string): string => converters.converterFor(type)(json) ?? json

describe("Debezium JSON converter values", () => {
  it("integers, floats and booleans as they are; numeric as an exact string", () => {
    expect(convert("bigint", "9007199254740993")).toBe("9007199254740993")
    expect(convert("double precision", "1.5e-07")).toBe("1.5e-07")
    expect(convert("boolean", "true")).toBe("true")
    expect(convert("numeric(10,2)", "1.10")).toBe(`"1.10"`)
    expect(convert("numeric", "null")).toBe("null")
  })

  it("dates as days, timestamps and times as micro- or milliseconds, zoned ones as UTC text", () => {
    expect(convert("date", `"1970-01-01"`)).toBe("0")
    expect(convert("date", `"2024-01-02"`)).toBe("19724")
    expect(convert("date", `"0001-01-01 BC"`)).toBe(String(DebeziumValues.daysFromCivil(0, 1, 1)))
    expect(convert("date", `"infinity"`)).toBe(`"infinity"`)
    expect(convert("timestamp without time zone", `"2024-01-02 03:04:05.123456"`)).toBe("1704164645123456")
    expect(convert("timestamp(3) without time zone", `"2024-01-02 03:04:05.123"`)).toBe("1704164645123")
    expect(convert("timestamp without time zone", `"1969-12-31 23:59:59.5"`)).toBe("-500000")
    expect(convert("timestamp without time zone", `"2400-01-01 00:00:00"`)).toBe("13569465600000000")
    expect(convert("timestamp with time zone", `"2024-01-02 03:04:05.5+05:30"`)).toBe(`"2024-01-01T21:34:05.5Z"`)
    expect(convert("timestamp with time zone", `"2024-01-02 03:04:05+00"`)).toBe(`"2024-01-02T03:04:05Z"`)
    expect(convert("time without time zone", `"03:04:05.000007"`)).toBe("11045000007")
    expect(convert("time(3) without time zone", `"03:04:05.5"`)).toBe("11045500")
    expect(convert("time with time zone", `"03:04:05.25+05:30"`)).toBe(`"21:34:05.25Z"`)
    expect(convert("interval", `"1 year 2 mons 3 days 04:05:06.5"`)).toBe("37091106500000")
    expect(convert("interval", `"-1 days +02:03:00"`)).toBe(String(-86_400_000_000 + 7_380_000_000))
    expect(convert("interval minute to second(3)", `"00:01:02.5"`)).toBe("62500000")
  })

  it("bytea as base64, text-like types as the server's text", () => {
    expect(convert("bytea", `"0102ff"`)).toBe(`"AQL/"`)
    expect(convert("jsonb", `"{\\"a\\": 1}"`)).toBe(`"{\\"a\\": 1}"`)
    expect(convert("uuid", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`)).toBe(`"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`)
  })

  it("arrays as JSON arrays of converted elements", () => {
    expect(convert("integer[]", `"{1,NULL,3}"`)).toBe("[1,null,3]")
    expect(convert("text[]", `"{\\"a b\\",c,NULL,\\"NULL\\"}"`)).toBe(`["a b","c",null,"NULL"]`)
    expect(convert("integer[]", `"{{1,2},{3,4}}"`)).toBe("[[1,2],[3,4]]")
    expect(convert("numeric(5,2)[]", `"{1.50,-2.00}"`)).toBe(`["1.50","-2.00"]`)
    expect(convert("date[]", `"{2024-01-02}"`)).toBe("[19724]")
    expect(convert("boolean[]", `"{t,f}"`)).toBe("[true,false]")
    expect(convert("bytea[]", `"{\\"\\\\\\\\x01ff\\"}"`)).toBe(`["Af8="]`)
    expect(convert("integer[]", `"[0:1]={1,2}"`)).toBe("[1,2]")
    expect(convert("text[]", `"{}"`)).toBe("[]")
  })
})

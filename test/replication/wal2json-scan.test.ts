/**
 * The wal2json decoder reads messages from their bytes without JSON.parse: it must give exactly the
 * events (every field, body bytes) and errors the JSON.parse-based decoder gave
 * (Wal2JsonReference.ts), for generated messages of every shape — hostile names, escapes, unicode,
 * numbers of every form, nulls, TOAST-absent key columns, key changes, composite and deferrable
 * keys, transaction records — and for messages that are not JSON, which must be told apart
 * exactly as JSON.parse tells them.
 */
import fc from "fast-check"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { type ChangeEvent, isPublishable, pipelineSlots } from "../../src/domain/ChangeEvent.ts"
import * as JsonScan from "../../src/format/JsonScan.ts"
import { type Decoder, ReadMessage, type WalMessage } from "../../src/replication/Decoder.ts"
import type * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import * as Wal2JsonMessage from "../../src/replication/Wal2JsonMessage.ts"
import * as Wal2JsonReference from "./Wal2JsonReference.ts"

const encoder = new TextEncoder()
const lenient = new TextDecoder("utf-8")

/** JSON text of a string with escapes as any writer may choose them (`\/`, `\u` for any character, upper-case hex). */
const oddlyEscaped = (value: string, choices: ReadonlyArray<number>): string => {
  let out = `"`
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    const choice = choices[i % Math.max(1, choices.length)] ?? 0
    const hex = c.toString(16).padStart(4, "0")
    if (c === 0x22 || c === 0x5c || c < 0x20) out += choice % 2 === 0 ? JSON.stringify(value[i]!).slice(1, -1) : `\\u${hex}`
    else if (c === 0x2f && choice % 3 === 0) out += "\\/"
    else if (choice % 7 === 1) out += `\\u${choice % 2 === 0 ? hex : hex.toUpperCase()}`
    else out += value[i]
  }
  return out + `"`
}

const hostileText = fc.string({
  unit: fc.oneof(
    fc.constantFrom("a", "id", "Z", " ", "\"", "\\", "/", "\n", "\t", "\u0000", "\u001f", "é", "ü", "✓", "😀", "\u2028", "\ud800", ",", ":", "{", "}", "[", "]"),
    fc.string({ maxLength: 3 })
  ),
  maxLength: 12
})

/** A JSON string as text: canonical, or escaped some other way wal2json or a hostile writer might. */
const jsonString = (value: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(value, fc.boolean(), fc.array(fc.nat(20), { maxLength: 8 })).map(([text, canonical, choices]) =>
    canonical ? JSON.stringify(text) : oddlyEscaped(text, choices)
  )

const numberText = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom("0", "-0", "1", "-1", "1.0", "1.50", "1e2", "1E+2", "-2.5e-3", "9007199254740991", "9007199254740993",
    "12345678901234567890.0123456789", "123456789012345678901234567890", "0.1", "100", "1.0e0"),
  fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n))
)

/** A column value as JSON text. */
const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: jsonString(hostileText) },
  { weight: 4, arbitrary: numberText },
  { weight: 1, arbitrary: fc.constantFrom("null", "true", "false") },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom(`{"a": 1.50, "b": [1, 2.0, "x\\/y"]}`, `[1.0, {"k": null}]`, `{}`, `[]`) }
)

const typeText = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(`"integer"`, `"bigint"`, `"smallint"`, `"oid"`, `"text"`, `"numeric"`, `"numeric(20,4)"`, `"character varying(20)"`, `"jsonb"`) },
  { weight: 1, arbitrary: fc.constantFrom(`"\\u0069nteger"`, `"INTEGER"`, `5`, `null`) },
  // what wal2json writes for a quoted type name: not JSON, repaired by the decoder
  { weight: 1, arbitrary: fc.constantFrom(`"App".role`, `"we""ird"`, `public."T"[]`) }
)

const columnNames = ["id", "region", "code", "name", "we\"ird", "é", "a\\b"] as const

/** A column's name as JSON text: mostly one of a few, sometimes escaped, rarely not a string. */
const nameText = fc.oneof(
  { weight: 10, arbitrary: jsonString(fc.constantFrom(...columnNames)) },
  { weight: 2, arbitrary: fc.constantFrom(`1`, `1.0`, `-0`, `0`, `null`, `true`, `{}`, `[]`) },
  { weight: 1, arbitrary: jsonString(hostileText) }
)

/** A member written with optional whitespace around its colon. */
const member = (key: string, value: string, ws: string): string => `${key}${ws}:${ws}${value}`

const columnText = fc.tuple(
  nameText, typeText, valueText,
  fc.constantFrom("", " "),
  fc.constantFrom("full", "full", "full", "full", "noValue", "noName", "dupName", "reordered", "array", "number", "null")
).map(([name, type, value, ws, shape]) => {
  switch (shape) {
    case "noValue": return `{${member(`"name"`, name, ws)},${member(`"type"`, type, ws)}}`
    case "noName": return `{${member(`"type"`, type, ws)},${member(`"value"`, value, ws)}}`
    case "dupName": return `{"name":"zz",${member(`"name"`, name, ws)},"type":${type},"value":${value},"value":${value}}`
    case "reordered": return `{${member(`"value"`, value, ws)},${member(`"n\\u0061me"`, name, ws)},"type":${type}}`
    case "array": return `[${name}]`
    case "number": return `7`
    case "null": return `null`
    default: return `{${member(`"name"`, name, ws)},${member(`"type"`, type, ws)},${member(`"value"`, value, ws)}}`
  }
})

const listText = fc.array(columnText, { maxLength: 4 }).map((columns) => `[${columns.join(",")}]`)

const pkText = fc.oneof(
  { weight: 6, arbitrary: fc.subarray([...columnNames], { minLength: 1, maxLength: 2 }).map((names) => `[${names.map((n) => `{"name":${JSON.stringify(n)},"type":"integer"}`).join(",")}]`) },
  { weight: 1, arbitrary: fc.array(fc.tuple(nameText, typeText).map(([n, t]) => `{"name":${n},"type":${t}}`), { maxLength: 2 }).map((l) => `[${l.join(",")}]`) },
  { weight: 1, arbitrary: fc.constantFrom(`[]`, `null`, `[1]`, `[{"type":"integer"}]`, `[[]]`, `{}`, `[{"name":1}]`, `[{"name":-0},{"name":"id"}]`, `[{"name":null}]`, `[{"name":true}]`, `[{"name":{}}]`) }
)

const timestampText = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(`"2026-11-21 04:41:02.123456+00"`, `"2026-11-21 04:41:03+01"`, `"2026-11-21 04:41:03.5-03:30"`) },
  { weight: 1, arbitrary: fc.constantFrom(`null`, `"not a time"`, `5`, `{"t":1}`, `"2026-11-21 04:41:0\\u0033+00"`) }
)

const lsnText = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.nat(0xff), fc.nat(0xffffff)).map(([a, b]) => `"${a.toString(16).toUpperCase()}/${b.toString(16).toUpperCase()}"`) },
  { weight: 2, arbitrary: fc.constantFrom(`"x/y"`, `7`, `null`, `"0\\/1A"`, `"abc/def"`, `"123456789/1"`, `"1/"`, `"/1"`, `"1//2"`, `"FFFFFFFF/FFFFFFFF"`,
    `"1/2\\u0033"`, `""`, `"1/2 "`, `"1/ffffffff0"`, `"0/0"`, `"00000000/00000001"`, `"1/\\u0032"`, `"1\\u002f2"`) }
)

const schemaTable = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom([`"public"`, `"items"`], [`"public"`, `"prices"`], [`"App"`, `"we\\"ird"`], [`"sch\\u00e9ma"`, `"t\\/1"`]) },
  { weight: 1, arbitrary: fc.tuple(jsonString(hostileText), jsonString(hostileText)) },
  { weight: 1, arbitrary: fc.constantFrom([`null`, `"t"`], [`"s"`, `1`]) }
)

const xidText = fc.oneof({ weight: 8, arbitrary: fc.nat(1_000_000).map(String) }, { weight: 1, arbitrary: fc.constantFrom(`"7"`, `1.5`, `-0`, `null`, `1e3`) })

const actionText = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom(`"I"`, `"U"`, `"D"`) },
  { weight: 2, arbitrary: fc.constantFrom(`"T"`, `"M"`) },
  { weight: 1, arbitrary: fc.constantFrom(`"\\u0049"`, `"X"`, `"BEGIN"`, `5`, `null`) }
)

/** The members of a row change, in wal2json's order unless shuffled; an update's identity sometimes a changed key. */
const changeMembers = fc.record({
  action: actionText,
  xid: xidText,
  lsn: lsnText,
  timestamp: timestampText,
  names: schemaTable,
  columns: listText,
  identity: fc.oneof(listText, fc.constant(undefined)),
  pk: fc.oneof(pkText, fc.constant(undefined)),
  transactional: fc.constantFrom(undefined, "true", "false", "0"),
  extra: fc.constantFrom(undefined, `"origin":"x"`, `"prefix":"p","content":"c\\u0000\\ud83d\\ude00"`, `"action":"I"`, `"columns":null`, `"__proto__":{"name":"id"}`),
  escaped: fc.constantFrom(undefined, `"\\u0061ction":"D"`, `"t\\u0061ble":"other"`, `"\\u0070k":[{"name":"code"}]`, `"xid":"7"`, `"schem\\u0061":null`, `"\\u0069dentity":[{"name":"id","type":"integer","value":3}]`, `"nextls\\u006e":"0/1"`, `"transactiona\\u006c":false`, `"lsn":5`, `"timest\\u0061mp":null`, `"colum\\u006es":[{"name":"id","type":"integer","value":4}]`)
}).map((r) => {
  const parts = [`"action":${r.action}`, `"xid":${r.xid}`, `"lsn":${r.lsn}`, `"timestamp":${r.timestamp}`]
  if (r.transactional !== undefined) parts.push(`"transactional":${r.transactional}`)
  parts.push(`"schema":${r.names[0]}`, `"table":${r.names[1]}`, `"columns":${r.columns}`)
  if (r.identity !== undefined) parts.push(`"identity":${r.identity}`)
  if (r.pk !== undefined) parts.push(`"pk":${r.pk}`)
  if (r.extra !== undefined) parts.splice(2, 0, r.extra)
  // a name written with an escape is the same name; the last of a repeated name counts
  if (r.escaped !== undefined) parts.push(r.escaped)
  return parts
})

/** A key change: the same key columns with a changed value in the new row, some absent (TOAST). */
const keyChange = fc.record({
  xid: fc.nat(1000),
  id: fc.tuple(numberText, numberText),
  code: fc.oneof(
    fc.tuple(jsonString(hostileText), jsonString(hostileText)),
    // the same text escaped two ways: the same key
    fc.tuple(hostileText, fc.array(fc.nat(20), { minLength: 1, maxLength: 8 })).map(([text, choices]) => [JSON.stringify(text), oddlyEscaped(text, choices)] as const)
  ),
  toastAbsent: fc.boolean(),
  names: schemaTable
}).map((r) => [
  `"action":"U"`, `"xid":${r.xid}`, `"lsn":"0/10"`, `"timestamp":"2026-11-21 04:41:02+00"`, `"schema":${r.names[0]}`, `"table":${r.names[1]}`,
  `"columns":[${r.toastAbsent ? "" : `{"name":"id","type":"bigint","value":${r.id[1]}},`}{"name":"code","type":"text","value":${r.code[1]}},{"name":"x","type":"text","value":"y"}]`,
  `"identity":[{"name":"id","type":"bigint","value":${r.id[0]}},{"name":"code","type":"text","value":${r.code[0]}}]`,
  `"pk":[{"name":"id","type":"bigint"},{"name":"code","type":"text"}]`
])

/** Changes of a table whose deferrable key rows can take from one another within a transaction (ids 1 and 2). */
const deferrableChange = fc.record({
  action: fc.constantFrom("I", "U", "D"),
  ids: fc.tuple(fc.constantFrom("1", "2", "1.0"), fc.constantFrom("1", "2")),
  values: fc.tuple(fc.constantFrom(undefined, "null", `"a"`, `"\\u0061"`, "1", "1.0"), fc.constantFrom(undefined, "null", `"a"`, "1"))
}).map(({ action, ids: [id, oldId], values: [value, oldValue] }) => {
  const row = (id: string, value: string | undefined) =>
    `[{"name":"id","type":"integer","value":${id}},{"name":"v","type":"text"${value === undefined ? "" : `,"value":${value}`}}]`
  return [
    `"action":"${action}"`, `"xid":9`, `"timestamp":"2026-11-21 04:41:02+00"`, `"schema":"public"`, `"table":"items"`,
    ...(action === "D" ? [] : [`"columns":${row(id, value)}`]),
    ...(action === "I" ? [] : [`"identity":${row(oldId, oldValue)}`])
  ]
})

const boundary = (action: "B" | "C") => fc.record({ xid: xidText, lsn: lsnText, next: lsnText, timestamp: timestampText, withNext: fc.boolean() })
  .map((r) => [`"action":"${action}"`, `"xid":${r.xid}`, `"lsn":${r.lsn}`, ...(r.withNext || action === "C" ? [`"nextlsn":${r.next}`] : []), `"timestamp":${r.timestamp}`])

/** A message's bytes from its members: whitespace, order, and now and then damage that makes it not JSON. */
const messageBytes = (members: fc.Arbitrary<ReadonlyArray<string>>): fc.Arbitrary<Uint8Array> =>
  fc.tuple(
    members,
    fc.constantFrom("", "", "", " ", "\n", "\t\r"),
    fc.oneof(
      { weight: 12, arbitrary: fc.constant<Damage>({ kind: "none" }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.constantFrom([0x2c], [0x22], [0x5c], [0x7d], [0x5d], [0x01], [0x20], [0xff], [0xc3], [0xe2, 0x82], [0xef, 0xbb, 0xbf], [0x30], [0x2d], [0x2e], [0x65], [0x6e]) }) },
      { weight: 1, arbitrary: fc.constant<Damage>({ kind: "bom" }) },
      { weight: 1, arbitrary: fc.constant<Damage>({ kind: "reverse" }) },
      { weight: 1, arbitrary: fc.constant<Damage>({ kind: "array" }) }
    )
  ).map(([parts, ws, damage]) => {
    const ordered = damage.kind === "reverse" ? [...parts].reverse() : parts
    const text = damage.kind === "array" ? `[${ordered.join(",")}]` : `${ws}{${ordered.join(`,${ws}`)}}${ws}`
    const bytes = Buffer.from(text, "utf8")
    switch (damage.kind) {
      case "cut": return bytes.subarray(0, damage.at % (bytes.length + 1))
      case "insert": {
        const at = damage.at % (bytes.length + 1)
        return Buffer.concat([bytes.subarray(0, at), Buffer.from(damage.bytes), bytes.subarray(at)])
      }
      case "bom": return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes])
      default: return bytes
    }
  })

type Damage =
  | { readonly kind: "none" | "bom" | "reverse" | "array" }
  | { readonly kind: "cut"; readonly at: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: ReadonlyArray<number> }

const anyMessage = fc.oneof(
  { weight: 2, arbitrary: messageBytes(boundary("B")) },
  { weight: 8, arbitrary: messageBytes(changeMembers) },
  { weight: 2, arbitrary: messageBytes(keyChange) },
  { weight: 2, arbitrary: messageBytes(boundary("C")) }
)

/** Messages in batches: each a decode call, at increasing LSNs, some over the size limit (their head only). */
const batches = fc.array(fc.array(fc.tuple(anyMessage, fc.nat(30)), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 })
  .map((raw) => {
    let lsn = 0x100n
    return raw.map((batch) => batch.map(([data, roll]): WalMessage => {
      lsn += 0x20n
      return roll === 0 ? { lsn, data: data.subarray(0, 20), oversizedBytes: data.byteLength + 1_000_000 } : { lsn, data }
    }))
  })

const catalogs = fc.constantFrom<ReadonlyArray<KeyCatalog.TableKey>>(
  [],
  [{ schema: "public", table: "items", identity: "d", columns: ["id"], immediatePrimaryKey: ["id"], deferrablePrimaryKey: false }],
  [
    { schema: "public", table: "items", identity: "f", columns: ["id"], immediatePrimaryKey: [], deferrablePrimaryKey: true },
    { schema: "public", table: "prices", identity: "f", columns: ["region", "code"], immediatePrimaryKey: [], deferrablePrimaryKey: true },
    { schema: "App", table: "we\"ird", identity: "d", columns: ["we\"ird", "é"], immediatePrimaryKey: ["we\"ird", "é"], deferrablePrimaryKey: false }
  ]
)

/**
 * An event with its body as hex, every field kept (an absent one stays absent) but the pipeline's
 * slots, which the reference does not make (checked on their own below).
 */
const comparable = (event: ChangeEvent) => {
  const fields: Record<string, unknown> = { ...event, body: Buffer.from(event.body).toString("hex") }
  for (const slot of pipelineSlots) delete fields[slot]
  return fields
}

/** Whether a published change was made with the pipeline's slots present and unset (not B, C, nor a dropped one). */
const hasSlots = (event: ChangeEvent): boolean =>
  !isPublishable(event) || event.oversizedBytes !== undefined || event.unreadableBytes !== undefined ||
  pipelineSlots.every((slot) => Object.hasOwn(event, slot) && event[slot] === undefined)

const outcome = (decoder: Decoder, batch: ReadonlyArray<WalMessage>) => outcomeOf(decoder.decode(batch))

const outcomeOf = (result: ReturnType<Decoder["decode"]>) =>
  Result.isSuccess(result)
    ? { events: result.success.map(comparable) }
    : { error: { tag: result.failure._tag, lsn: result.failure.lsn, message: result.failure.message } }

/** Whether JSON.parse reads the bytes as the old decoder read them (decoded leniently). */
const parses = (bytes: Uint8Array): boolean => {
  try {
    JSON.parse(lenient.decode(bytes))
    return true
  } catch {
    return false
  }
}

const scans = (bytes: Uint8Array): boolean => {
  try {
    Wal2JsonMessage.read(new Wal2JsonMessage.Message(), bytes)
    return true
  } catch (error) {
    if (error instanceof JsonScan.Malformed) return false
    throw error
  }
}

/** Bytes that would continue a message if read past its end: a value, a string, an escape, a container's end. */
const filler = fc.array(fc.constantFrom(0x30, 0x39, 0x2e, 0x65, 0x2b, 0x2d, 0x22, 0x5c, 0x75, 0x7d, 0x5d, 0x2c, 0x20, 0x7b, 0x61, 0x64, 0x00), { maxLength: 8 })

/** A message in place: `[start, end)` of a larger buffer (a socket read's), with other bytes around it. */
const inPlace = (bytes: Uint8Array, before: ReadonlyArray<number>, after: ReadonlyArray<number>) => {
  const buffer = Buffer.concat([Buffer.from(before), bytes, Buffer.from(after)])
  return { buffer, start: before.length, end: before.length + bytes.length }
}

const scansInPlace = (bytes: Uint8Array, before: ReadonlyArray<number>, after: ReadonlyArray<number>): boolean => {
  const { buffer, start, end } = inPlace(bytes, before, after)
  try {
    Wal2JsonMessage.read(new Wal2JsonMessage.Message(), buffer, start, end)
    return true
  } catch (error) {
    if (error instanceof JsonScan.Malformed) return false
    throw error
  }
}

/** A batch as the reader hands it out: every message a {@link ReadMessage} of one buffer, other bytes between them. */
const asRead = (batch: ReadonlyArray<WalMessage>, gaps: ReadonlyArray<ReadonlyArray<number>>): ReadonlyArray<WalMessage> => {
  const parts: Array<Uint8Array> = []
  const spans: Array<readonly [number, number]> = []
  let offset = 0
  batch.forEach((message, i) => {
    const gap = Buffer.from(gaps[i % Math.max(1, gaps.length)] ?? [])
    parts.push(gap)
    offset += gap.length
    parts.push(message.data)
    spans.push([offset, offset + message.data.length])
    offset += message.data.length
  })
  parts.push(Buffer.from([0x31, 0x22, 0x7d]))
  const buffer = Buffer.concat(parts)
  return batch.map((message, i) =>
    message.oversizedBytes !== undefined ? message : new ReadMessage(message.lsn, buffer, spans[i]![0], spans[i]![1])
  )
}

describe("Wal2JsonMessage.read", () => {
  it("accepts exactly what JSON.parse accepts, for messages and for any JSON text damaged anywhere", () => {
    const damaged = fc.tuple(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.constantFrom("", ",", "\"", "\\", "}", "]", "\u0001", "\uffff", "0", "-", ".", "e", "+", "t", "nul", " ", "\\u12", "\\x"), fc.boolean())
      .map(([value, at, insert, replace]) => {
        const text = JSON.stringify(value) ?? "null"
        const i = at % (text.length + 1)
        return encoder.encode(text.slice(0, i) + insert + text.slice(replace ? i + 1 : i))
      })
    fc.assert(fc.property(fc.oneof(anyMessage, damaged), filler, filler, (bytes, before, after) => {
      expect(scans(bytes)).toBe(parses(bytes))
      // read in place, the bytes around it are never read
      expect(scansInPlace(bytes, before, after)).toBe(parses(bytes))
    }), { numRuns: 10_000 })
  })

  it("reads a column written almost as wal2json writes it (whitespace, a member more or less) as JSON.parse does", () => {
    const column = (text: string) => encoder.encode(`{"action":"I","schema":"s","table":"t","columns":[${text}],"pk":[]}`)
    for (const text of [
      `{"name":"id","type":"bigint","value": 1}`, `{"name":"id","type":"bigint","value":\t"x"}`, `{"name":"id","type":"bigint","value":\n}`,
      `{"name":"id","type": "bigint","value":1}`, `{"name": "id","type":"bigint","value":1}`, `{"name":"id","type":"bigint","value":1 }`,
      `{"name":"id","type":"bigint","value":1,"value":2}`, `{"name":"id","type":"bigint"}`, `{"name":"id","type":"bigint",}`,
      `{"name":"id","type":"bigint","value":}`, `{"name":"id","type":"bigint","value":1`, `{"name":"id" ,"type":"bigint"}`
    ]) {
      const bytes = column(text)
      expect(scans(bytes)).toBe(parses(bytes))
      expect(scansInPlace(bytes, [0x31], [0x30, 0x7d])).toBe(parses(bytes))
    }
    const m = new Wal2JsonMessage.Message()
    Wal2JsonMessage.read(m, column(`{"name":"id","type":"bigint","value": 7}`))
    expect(Wal2JsonMessage.parsedAt(m.bytes, m.elements[Wal2JsonMessage.VALUE + 1]!, m.elements[Wal2JsonMessage.VALUE + 2]!)).toBe(7)
  })

  it("accepts deep nesting as JSON.parse does, and rejects what is not JSON at any depth", () => {
    for (const depth of [1, 100, 10_000]) {
      const good = encoder.encode(`{"action":"I","x":${"[".repeat(depth)}{"a":1}${"]".repeat(depth)}}`)
      expect(scans(good)).toBe(parses(good))
      expect(scans(good)).toBe(true)
      const bad = encoder.encode(`{"action":"I","x":${"[".repeat(depth)}{"a":1}${"]".repeat(depth - 1)}}`)
      expect(scans(bad)).toBe(false)
    }
  })
})

describe("Wal2JsonDecoder without JSON.parse", () => {
  it("gives exactly the events and errors of the JSON.parse-based decoder", () => {
    fc.assert(fc.property(batches, catalogs, fc.boolean(), fc.array(filler, { maxLength: 3 }), (reads, tables, transactionRecords, gaps) => {
      const keys: KeyCatalog.KeyCatalog = new Map(tables.map((t) => [`${t.schema}.${t.table}`, t]))
      const options = { addTables: [], filterTables: [], keys, transactionRecords }
      const decoder = Wal2JsonDecoder.make(options)
      const inPlaceDecoder = Wal2JsonDecoder.make(options)
      const reference = Wal2JsonReference.make(options)
      for (const batch of reads) {
        const expected = outcome(reference, batch)
        expect(outcome(decoder, batch)).toStrictEqual(expected)
        // as the reader hands messages out: in place in one buffer, other bytes around each
        expect(outcome(inPlaceDecoder, asRead(batch, gaps))).toStrictEqual(expected)
      }
    }), { numRuns: 2_000 })
  })

  it("gives exactly the events of the JSON.parse-based decoder for well-formed transactions", () => {
    // no damage: every change is read, so the comparison reaches keys, splits and deferred keys
    const clean = fc.oneof(
      { weight: 4, arbitrary: changeMembers.map((parts) => parts.join(",")) },
      { weight: 2, arbitrary: keyChange.map((parts) => parts.join(",")) },
      { weight: 4, arbitrary: deferrableChange.map((parts) => parts.join(",")) }
    ).map((members) => encoder.encode(`{${members}}`))
    const transactions = fc.array(fc.array(clean, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }).map((txs) => {
      let lsn = 0x100n
      return txs.map((changes, t) => {
        const at = () => (lsn += 0x20n)
        return [
          { lsn: at(), data: encoder.encode(`{"action":"B","xid":${t},"lsn":"0/${(0x1000 + t).toString(16)}","timestamp":"2026-11-21 04:41:02.1+00","nextlsn":"0/FFFF"}`) },
          ...changes.map((data) => ({ lsn: at(), data })),
          { lsn: at(), data: encoder.encode(`{"action":"C","xid":${t},"lsn":"0/${(0x1000 + t).toString(16)}","timestamp":"2026-11-21 04:41:02.1+00","nextlsn":"0/FFFF"}`) }
        ]
      })
    })
    fc.assert(fc.property(transactions, catalogs, fc.boolean(), (reads, tables, transactionRecords) => {
      const keys: KeyCatalog.KeyCatalog = new Map(tables.map((t) => [`${t.schema}.${t.table}`, t]))
      const options = { addTables: [], filterTables: [], keys, transactionRecords }
      const decoder = Wal2JsonDecoder.make(options)
      const reference = Wal2JsonReference.make(options)
      for (const batch of reads) {
        const result = decoder.decode(batch)
        expect(outcomeOf(result)).toStrictEqual(outcome(reference, batch))
        // the pipeline sets its slots without changing the events' shape
        expect(Result.isFailure(result) || result.success.every(hasSlots)).toBe(true)
      }
    }), { numRuns: 2_000 })
  })

  it("gives the reference's events for rows of hundreds of columns (the element table grown mid-message), read in place, then a small row", () => {
    const options = { addTables: [], filterTables: [], transactionRecords: false }
    const decoder = Wal2JsonDecoder.make(options)
    const reference = Wal2JsonReference.make(options)
    const row = (columns: number, keyAt: number, value: (i: number) => string) => {
      const list = Array.from({ length: columns }, (_, i) => `{"name":"c${i}","type":"integer","value":${value(i)}}`)
      return encoder.encode(`{"action":"U","xid":7,"schema":"public","table":"wide","columns":[${list.join(",")}],` +
        `"identity":[${list.map((c) => c.replace(/"value":(-?\d+)/, (_m, v) => `"value":${Number(v) + 1}`)).join(",")}],` +
        `"pk":[{"name":"c${keyAt}","type":"integer"}]}`)
    }
    let lsn = 0x100n
    const at = () => (lsn += 0x20n)
    for (const columns of [63, 64, 65, 200, 700]) {
      const batch: Array<WalMessage> = [
        { lsn: at(), data: encoder.encode(`{"action":"B","xid":7,"lsn":"0/1000","timestamp":"2026-11-21 04:41:02.1+00","nextlsn":"0/FFFF"}`) },
        { lsn: at(), data: row(columns, columns - 1, (i) => String(i * 3)) },
        { lsn: at(), data: row(3, 0, (i) => String(-i)) },
        { lsn: at(), data: encoder.encode(`{"action":"C","xid":7,"lsn":"0/1000","timestamp":"2026-11-21 04:41:02.1+00","nextlsn":"0/FFFF"}`) }
      ]
      const expected = outcome(reference, batch)
      // the key changed (identity differs): a delete and an insert, each with the key of the last column
      expect("events" in expected && expected.events.length).toBe(6)
      expect(outcome(decoder, asRead(batch, [[0x7b, 0x22], [0x5d]]))).toStrictEqual(expected)
    }
  })

  it("gives the reference's keys for keys of about 4 KiB and more (the byte-written key's room), one column or several", () => {
    const options = { addTables: [], filterTables: [], transactionRecords: false }
    const decoder = Wal2JsonDecoder.make(options)
    const reference = Wal2JsonReference.make(options)
    let lsn = 0x100n
    const at = () => (lsn += 0x20n)
    for (const length of [2_040, 2_045, 4_088, 4_090, 4_091, 4_092, 4_093, 4_094, 4_095, 4_096, 5_000, 100_000]) {
      const single = `[{"name":"k","type":"text","value":${JSON.stringify("k".repeat(length))}}]`
      const pair = `[{"name":"a","type":"text","value":${JSON.stringify("a".repeat(length >> 1))}},` +
        `{"name":"b","type":"bigint","value":${length}},{"name":"c","type":"text","value":${JSON.stringify("c".repeat(length - (length >> 1)))}}]`
      const batch: Array<WalMessage> = [
        { lsn: at(), data: encoder.encode(`{"action":"B","xid":7,"lsn":"0/1000","timestamp":"2026-11-21 04:41:02.1+00","nextlsn":"0/FFFF"}`) },
        { lsn: at(), data: encoder.encode(`{"action":"I","xid":7,"schema":"public","table":"long","columns":${single},"pk":[{"name":"k","type":"text"}]}`) },
        { lsn: at(), data: encoder.encode(`{"action":"D","xid":7,"schema":"public","table":"long","identity":${pair},"pk":[{"name":"a","type":"text"},{"name":"b","type":"bigint"},{"name":"c","type":"text"}]}`) },
        // a literal and a number wal2json wrote otherwise than String prints it, last, near the end of the room
        { lsn: at(), data: encoder.encode(`{"action":"D","xid":7,"schema":"public","table":"long","identity":[{"name":"a","type":"text","value":${JSON.stringify("x".repeat(length - 6))}},{"name":"t","type":"boolean","value":true},{"name":"n","type":"integer","value":1.0}],"pk":[{"name":"a","type":"text"},{"name":"t","type":"boolean"},{"name":"n","type":"integer"}]}`) },
        { lsn: at(), data: encoder.encode(`{"action":"C","xid":7,"lsn":"0/1000","timestamp":"2026-11-21 04:41:02.1+00","nextlsn":"0/FFFF"}`) }
      ]
      const expected = outcome(reference, batch)
      expect("events" in expected && expected.events[1]!.pk).toBe(JSON.stringify(["k".repeat(length)]))
      expect("events" in expected && expected.events[3]!.pk).toBe(JSON.stringify(["x".repeat(length - 6), true, 1]))
      expect(outcome(decoder, asRead(batch, [[0x22]]))).toStrictEqual(expected)
    }
  })

  it("keeps nothing of a read: its events, bodies and keys stay as decoded when the read's buffer is overwritten and later reads are decoded", () => {
    const options = { addTables: [], filterTables: [], transactionRecords: true }
    const decoder = Wal2JsonDecoder.make(options)
    let lsn = 0x100n
    const at = () => (lsn += 0x20n)
    const readOf = (t: number) => {
      const batch: Array<WalMessage> = [
        { lsn: at(), data: encoder.encode(`{"action":"B","xid":${t},"lsn":"0/${(0x1000 + t).toString(16)}","timestamp":"2026-11-21 04:41:0${t % 10}.1+00","nextlsn":"0/FFFF"}`) },
        ...Array.from({ length: 5 }, (_, i) => ({
          lsn: at(),
          data: encoder.encode(`{"action":"I","xid":${t},"timestamp":"2026-11-21 04:41:0${t % 10}.1+00","schema":"s${t}","table":"t${t}","columns":[{"name":"id","type":"text","value":"r${t}-${i}"},{"name":"v","type":"integer","value":${i}}],"pk":[{"name":"id","type":"text"}]}`)
        })),
        { lsn: at(), data: encoder.encode(`{"action":"C","xid":${t},"lsn":"0/${(0x1000 + t).toString(16)}","timestamp":"2026-11-21 04:41:0${t % 10}.1+00","nextlsn":"0/FFFF"}`) }
      ]
      return asRead(batch, [[0x20]])
    }
    const kept: Array<{ readonly events: ReadonlyArray<ChangeEvent>; readonly copy: unknown }> = []
    for (let t = 0; t < 6; t++) {
      const read = readOf(t)
      const result = decoder.decode(read)
      if (!Result.isSuccess(result)) throw new Error("not decoded")
      kept.push({ events: result.success, copy: outcomeOf(result) })
      // the socket's buffer is reused for the next read
      for (const message of read) if (message instanceof ReadMessage) (message.bytes as Buffer).fill(0x7d)
      for (const { events, copy } of kept) expect(outcomeOf(Result.succeed(events))).toStrictEqual(copy)
    }
    const first = kept[0]!.events
    expect(first.filter((e) => e.action === "BEGIN" || e.action === "COMMIT")).toHaveLength(2)
    expect(new TextDecoder().decode(first.find((e) => e.action === "I")!.body)).toContain(`"value":"r0-0"`)
    expect(first.filter((e) => e.action === "I").map((e) => e.pk)).toEqual(["[\"r0-0\"]", "[\"r0-1\"]", "[\"r0-2\"]", "[\"r0-3\"]", "[\"r0-4\"]"])
  })
})

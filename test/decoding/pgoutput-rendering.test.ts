/**
 * The pgoutput decoder writes record bodies as bytes; this property test checks that every event it
 * produces is the one the string-rendering decoder it replaced produced (test/decoding/
 * PgOutputReference.ts), field by field and byte by byte: generated relations (hostile names, every
 * value kind, each replica identity, catalog keys, deferrable keys), tuples with NULLs, unchanged
 * TOAST values, hostile text and bytes that are not valid UTF-8, key changes, truncates, logical
 * messages, transaction records, messages cut short, and batches cut anywhere.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type ChangeEvent, isPublishable, pipelineSlots } from "../../src/domain/ChangeEvent.ts"
import { type Decoder, ReadMessage, type WalMessage } from "../../src/replication/Decoder.ts"
import type * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as PgOutputDecoder from "../../src/replication/PgOutputDecoder.ts"
import * as M from "../../support/PgOutputMessages.ts"
import * as Reference from "./PgOutputReference.ts"

const hostileText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.constantFrom("", "a", "Ünïcødé ✓", "\"quoted\"", "back\\slash", "new\nline\ttab\r\b\f", "\u0000\u0001\u001f\u007f",
    "\u2028\u2029", "\ufeffbom", "😀", "NaN", "Infinity", "-Infinity", "t", "f", "\\x00ff10", "\\x", "12.50", "-7")
)
/** Bytes a value may hold: UTF-8 of any text, or bytes that are not valid UTF-8. */
const valueBytes = fc.oneof(
  { weight: 4, arbitrary: hostileText.map((text) => M.text(text)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 16 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      [0xff], [0xc3], [0xe2, 0x9c], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0x22, 0xff, 0x5c, 0x0a, 0x01],
      [0xef, 0xbb, 0xbf, 0x41], [0x5c, 0x78, 0xff]
    ).map((bytes) => Uint8Array.from(bytes))
  },
  { weight: 1, arbitrary: fc.string({ minLength: 40, maxLength: 300 }).map((text) => M.text(text)) }
)
const value: fc.Arbitrary<M.Value> = fc.oneof(
  { weight: 6, arbitrary: valueBytes },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant("unchanged" as const) }
)

/** Type OIDs of every value kind: numbers, boolean, bytea, strings, a user-defined type. */
const typeOid = fc.constantFrom(20, 21, 23, 26, 700, 701, 1700, 16, 17, 25, 1043, 114, 3802, 1184, 2950, 1007, 16999)

interface Table {
  readonly id: number
  readonly schema: string
  readonly name: string
  readonly identity: "d" | "n" | "f" | "i"
  readonly columns: ReadonlyArray<M.Column>
  /** Its row key from the catalog (by column index), if it has one there, and whether deferrable. */
  readonly catalogKey: { readonly columns: ReadonlyArray<number>; readonly deferrable: boolean } | undefined
}

const table = (id: number): fc.Arbitrary<Table> =>
  fc.record({
    schema: fc.oneof(fc.constantFrom("public", "", "cdc_logical_replication", "Sch\"ema"), hostileText.filter((s) => !s.includes("\u0000"))),
    name: hostileText.filter((s) => !s.includes("\u0000")),
    identity: fc.constantFrom("d", "n", "f", "i"),
    columns: fc.array(
      fc.record({
        flags: fc.constantFrom(0, 1),
        name: hostileText.filter((s) => !s.includes("\u0000")),
        oid: typeOid,
        typmod: fc.constantFrom(-1, 14, 655366)
      }),
      { minLength: 1, maxLength: 5 }
    ),
    catalogKey: fc.option(
      fc.record({ columns: fc.array(fc.nat(4), { minLength: 1, maxLength: 2 }), deferrable: fc.boolean() }),
      { nil: undefined }
    )
  }).map((t) => ({ id, ...t, identity: t.identity as Table["identity"] }))

/** One message of a transaction's body, for a table of the list. */
type Change =
  | { readonly _tag: "insert"; readonly table: number; readonly row: ReadonlyArray<M.Value> }
  | {
    readonly _tag: "update"
    readonly table: number
    readonly row: ReadonlyArray<M.Value>
    readonly old: { readonly kind: "K" | "O"; readonly values: ReadonlyArray<M.Value> } | undefined
  }
  | { readonly _tag: "delete"; readonly table: number; readonly kind: "K" | "O"; readonly old: ReadonlyArray<M.Value> }
  | { readonly _tag: "truncate"; readonly tables: ReadonlyArray<number> }
  | { readonly _tag: "message"; readonly transactional: boolean; readonly prefix: string; readonly content: Uint8Array }
  | { readonly _tag: "relation"; readonly table: number }

const tuple = fc.array(value, { minLength: 5, maxLength: 5 })
const change: fc.Arbitrary<Change> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ _tag: fc.constant("insert" as const), table: fc.nat(2), row: tuple }) },
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("update" as const),
      table: fc.nat(2),
      row: tuple,
      old: fc.option(fc.record({ kind: fc.constantFrom("K" as const, "O" as const), values: tuple }), { nil: undefined })
    })
  },
  {
    weight: 3,
    arbitrary: fc.record({ _tag: fc.constant("delete" as const), table: fc.nat(2), kind: fc.constantFrom("K" as const, "O" as const), old: tuple })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("truncate" as const), tables: fc.array(fc.nat(2), { minLength: 1, maxLength: 3 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("message" as const),
      transactional: fc.boolean(),
      prefix: hostileText.filter((s) => !s.includes("\u0000")),
      content: fc.oneof(valueBytes, fc.uint8Array({ maxLength: 40 }))
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("relation" as const), table: fc.nat(2) }) }
)

const scenario = fc.record({
  tables: fc.tuple(table(16400), table(16401), table(16402)),
  transactions: fc.array(
    fc.record({
      changes: fc.array(change, { maxLength: 8 }),
      commitMicros: fc.bigInt({ min: -(10n ** 15n), max: 10n ** 16n }),
      xid: fc.nat()
    }),
    { minLength: 1, maxLength: 5 }
  ),
  lsnBase: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 40n }), fc.bigInt({ min: 2n ** 53n - 10_000n, max: 2n ** 64n - 2n ** 20n })),
  transactionRecords: fc.boolean(),
  /** Where the messages are cut into batches (fractions of the stream). */
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
  /** How the messages of a batch come: as the reader makes them, as views, or both. */
  form: fc.constantFrom("reads" as const, "views" as const, "mixed" as const),
  /** A message cut short, somewhere (both decoders must fail on it the same way). */
  truncate: fc.oneof(
    { weight: 9, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), keep: fc.double({ min: 0, max: 1, noNaN: true }) }) }
  )
})

/** A tuple with as many values as the table has columns (the generated ones cycled or cut). */
const fit = (values: ReadonlyArray<M.Value>, table: Table): Array<M.Value> => table.columns.map((_, i) => values[i % values.length]!)

const catalogOf = (tables: ReadonlyArray<Table>): KeyCatalog.KeyCatalog =>
  new Map(tables.flatMap((t) => {
    if (t.catalogKey === undefined) return []
    const schema = t.schema === "" ? "pg_catalog" : t.schema
    const columns = [...new Set(t.catalogKey.columns.map((i) => t.columns[i % t.columns.length]!.name))]
    const key: KeyCatalog.TableKey = {
      schema,
      table: t.name,
      identity: t.identity,
      columns,
      immediatePrimaryKey: t.catalogKey.deferrable ? [] : columns,
      deferrablePrimaryKey: t.catalogKey.deferrable
    }
    return [[`${schema}.${t.name}`, key] as const]
  }))

type Scenario = typeof scenario extends fc.Arbitrary<infer A> ? A : never

const messagesOf = (s: Scenario): Array<WalMessage> => {
  const messages: Array<WalMessage> = []
  let lsn = s.lsnBase
  const add = (data: Uint8Array) => {
    messages.push({ lsn, data })
    lsn += 40n
  }
  const relationOf = (t: Table) => M.relation(t.id, t.schema, t.name, t.identity, t.columns)
  for (const t of s.tables) add(relationOf(t))
  for (const transaction of s.transactions) {
    const commitLsn = lsn + BigInt(40 * (transaction.changes.length + 1))
    add(M.begin(commitLsn, transaction.commitMicros, transaction.xid))
    for (const c of transaction.changes) {
      switch (c._tag) {
        case "insert": {
          const t = s.tables[c.table]!
          add(M.insert(t.id, fit(c.row, t)))
          break
        }
        case "update": {
          const t = s.tables[c.table]!
          add(M.update(t.id, fit(c.row, t), c.old && { kind: c.old.kind, values: fit(c.old.values, t) }))
          break
        }
        case "delete": {
          const t = s.tables[c.table]!
          add(M.remove(t.id, c.kind, fit(c.old, t)))
          break
        }
        case "truncate":
          add(M.truncate(c.tables.map((i) => s.tables[i]!.id)))
          break
        case "message":
          add(M.message(c.transactional, lsn, c.prefix, c.content))
          break
        case "relation":
          add(relationOf(s.tables[c.table]!))
      }
    }
    add(M.commit(commitLsn, commitLsn + 40n, transaction.commitMicros))
  }
  if (s.truncate !== undefined) {
    const index = Math.min(messages.length - 1, Math.floor(s.truncate.at * messages.length))
    const message = messages[index]!
    messages[index] = { lsn: message.lsn, data: message.data.subarray(0, Math.floor(s.truncate.keep * message.data.length)) }
  }
  return messages
}

/**
 * The messages in batches, each batch's messages in one buffer (itself a view past the start of its
 * ArrayBuffer) as a socket read gives them: as the reader makes them ({@link ReadMessage}), as
 * views, or alternating.
 */
const batchesOf = (
  messages: ReadonlyArray<WalMessage>, cuts: ReadonlyArray<number>, form: "reads" | "views" | "mixed"
): Array<Array<WalMessage>> => {
  const at = [...new Set(cuts.map((c) => Math.floor(c * messages.length)))].sort((a, b) => a - b)
  const batches: Array<Array<WalMessage>> = []
  let from = 0
  for (const to of [...at, messages.length]) {
    if (to <= from) continue
    const slice = messages.slice(from, to)
    const buffer = new Uint8Array(slice.reduce((n, m) => n + m.data.length + 3, 7)).subarray(7)
    let offset = 0
    batches.push(slice.map((m, i): WalMessage => {
      offset += 3
      buffer.set(m.data, offset)
      const start = offset
      offset += m.data.length
      return form === "reads" || (form === "mixed" && i % 2 === 0)
        ? new ReadMessage(m.lsn, buffer, start, offset)
        : { lsn: m.lsn, data: buffer.subarray(start, offset) }
    }))
    from = to
  }
  return batches
}

/** Every event of every batch as plain data (bodies as bytes), up to and with the first failure. */
const run = (decoder: Decoder, batches: ReadonlyArray<ReadonlyArray<WalMessage>>): Array<unknown> => {
  const out: Array<unknown> = []
  for (const batch of batches) {
    const result = decoder.decode(batch)
    if (result._tag === "Failure") {
      out.push({ failure: result.failure.message })
      break
    }
    for (const event of result.success) out.push(plain(event))
  }
  return out
}
const plain = (event: ChangeEvent) => ({ ...event, body: Buffer.from(event.body).toString("hex") })

describe("pgoutput rendering", () => {
  it("every event equals the string-rendering decoder's, byte for byte", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const keys = catalogOf(s.tables)
        const options = { publication: "p", keys, transactionRecords: s.transactionRecords }
        const batches = batchesOf(messagesOf(s), s.cuts, s.form)
        expect(run(PgOutputDecoder.make(options), batches)).toEqual(run(Reference.make(options), batches))
        // every published change is made with the pipeline's slots present and unset (but a dropped one)
        const decoder = PgOutputDecoder.make(options)
        for (const batch of batches) {
          const result = decoder.decode(batch)
          if (result._tag === "Failure") break
          for (const event of result.success) {
            if (!isPublishable(event) || event.oversizedBytes !== undefined) continue
            for (const slot of pipelineSlots) expect(Object.hasOwn(event, slot) && event[slot] === undefined, slot).toBe(true)
          }
        }
      }),
      { numRuns: 400 }
    )
  })

  it("values and batches far beyond the writer's first buffer (escapes, invalid UTF-8, 1 MiB) equal the reference too", () => {
    const columns = [{ flags: 1, name: "id", oid: 23, typmod: -1 }, { flags: 0, name: "v", oid: 25, typmod: -1 }]
    const escapes = "\"\\\n\u0001".repeat(40_000) // every byte escaped: 6× its size at most
    const mixed = Buffer.concat([M.text("a".repeat(70_000)), Uint8Array.from([0xff, 0x0a]), M.text("✓\u0000".repeat(30_000))])
    const values: ReadonlyArray<Uint8Array> = [
      M.text(escapes),
      mixed,
      M.text("x".repeat(1 << 20)),
      M.text("ü".repeat(100_000)),
      // six bytes written per byte read, from several alignments
      ...["", "a", "ab", "abc"].map((head) => M.text(head + "\u0001".repeat(50_000 + head.length)))
    ]
    const messages: Array<WalMessage> = [
      { lsn: 1n, data: M.relation(1, "public", "big", "d", columns) },
      { lsn: 2n, data: M.begin(1000n, 849_000_000_000_000n, 9) },
      ...values.map((v, i) => ({ lsn: BigInt(3 + i), data: M.insert(1, [M.text(String(i)), v]) })),
      // many small records after the big ones, in the same batch
      ...Array.from({ length: 2000 }, (_, i) => ({ lsn: BigInt(10 + i), data: M.insert(1, [M.text(String(i)), M.text("\"q\"")]) })),
      { lsn: 1000n, data: M.commit(1000n, 1040n, 849_000_000_000_000n) }
    ]
    // each value alone, on a new decoder's writer (its first buffer outgrown inside the value)
    for (const [i, v] of values.entries()) {
      const alone = [messages[0]!, messages[1]!, messages[2 + i]!, messages[messages.length - 1]!]
      expect(run(PgOutputDecoder.make({ publication: "p" }), [alone])).toEqual(run(Reference.make({ publication: "p" }), [alone]))
      expect(v.length).toBeGreaterThan(64 * 1024 / 6)
    }
    const decoder = PgOutputDecoder.make({ publication: "p" })
    const reference = Reference.make({ publication: "p" })
    // all in one batch, twice: the second batch starts on the writer's grown (or given back) buffer
    for (let round = 0; round < 2; round++) {
      const got = run(decoder, [messages.slice(round === 0 ? 0 : 1)])
      expect(got).toEqual(run(reference, [messages.slice(round === 0 ? 0 : 1)]))
      expect(got.length).toBe(values.length + 2002)
    }
  })

  it("the bodies of a batch are views of one buffer of their exact size", () => {
    const decoder = PgOutputDecoder.make({ publication: "p" })
    const result = decoder.decode([
      { lsn: 1n, data: M.relation(1, "public", "t", "d", [{ flags: 1, name: "id", oid: 23, typmod: -1 }]) },
      { lsn: 2n, data: M.begin(100n, 0n, 7) },
      { lsn: 3n, data: M.insert(1, [M.text("1")]) },
      { lsn: 4n, data: M.insert(1, [M.text("2")]) },
      { lsn: 5n, data: M.message(true, 5n, "p", M.text("x")) },
      { lsn: 100n, data: M.commit(100n, 140n, 0n) }
    ])
    if (result._tag === "Failure") throw new Error(result.failure.message)
    const bodies = result.success.filter((e) => e.body.length > 0).map((e) => e.body)
    expect(bodies).toHaveLength(3)
    const buffer = bodies[0]!.buffer
    expect(bodies.every((b) => b.buffer === buffer)).toBe(true)
    expect(buffer.byteLength).toBe(bodies.reduce((n, b) => n + b.length, 0))
  })
})

/**
 * A view of one record body in the wal2json format-version 2 shape both decoders produce (the
 * record's position first): the spans of its fields and of each column, read with
 * {@link JsonScan} without building values. The formats cut and re-assemble bodies from it.
 */
import * as JsonScan from "./JsonScan.ts"

/** A span `[start, end)` of the body. */
export interface Span {
  readonly start: number
  readonly end: number
}

/** One `{"name":…,"type":…,"value":…}` of a column list (`value` absent in `pk`). */
export interface ColumnView extends Span {
  readonly name: string
  readonly type: string
  /** The value's span; undefined in `pk` entries. */
  readonly value: Span | undefined
}

export interface ColumnList extends Span {
  readonly items: ReadonlyArray<ColumnView>
}

export interface BodyView {
  readonly bytes: Uint8Array
  readonly action: string
  /** Raw JSON text of these fields (numbers, strings with quotes, null), when present. */
  readonly xid: string | undefined
  readonly timestamp: Span | undefined
  readonly lsn: string | undefined
  readonly schema: string
  readonly table: string
  readonly columns: ColumnList | undefined
  readonly identity: ColumnList | undefined
  readonly pk: ColumnList | undefined
  /** Logical messages. */
  readonly transactional: boolean | undefined
  readonly prefix: Span | undefined
  readonly content: Span | undefined
}

/** The keys the formats read; any other key is skipped. */
const KEYS = [
  "action", "xid", "timestamp", "lsn", "schema", "table", "columns", "identity", "pk", "transactional", "prefix", "content",
  "name", "type", "value"
] as const
type Key = (typeof KEYS)[number] | undefined

/** Known keys by length, as char codes, so a key is recognized without making a string of it. */
const keysByLength = new Map<number, Array<readonly [Key, ReadonlyArray<number>]>>()
for (const key of KEYS) {
  const list = keysByLength.get(key.length) ?? []
  list.push([key, [...key].map((c) => c.charCodeAt(0))])
  keysByLength.set(key.length, list)
}

/** The known key whose quoted span is `[start, end)`, or undefined. */
const keyAt = (b: Uint8Array, start: number, end: number): Key => {
  const candidates = keysByLength.get(end - start - 2)
  if (candidates === undefined) return undefined
  for (const [key, codes] of candidates) {
    let k = 0
    while (k < codes.length && b[start + 1 + k] === codes[k]) k++
    if (k === codes.length) return key
  }
  return undefined
}

/** `i` at `:` after a key (whitespace allowed): the index of the value. */
const valueAt = (b: Uint8Array, i: number): number => {
  i = JsonScan.skipWs(b, i)
  if (b[i] !== 0x3a /* : */) throw new JsonScan.Malformed(`expected : at ${i}`)
  return JsonScan.skipWs(b, i + 1)
}

/**
 * Calls `visit(key, valueStart)` for each member of the object at `i`; `visit` returns the end of
 * the value (it may read the value itself, so nothing is scanned twice). Returns the index after `}`.
 */
const object = (b: Uint8Array, i: number, visit: (key: Key, start: number) => number): number => {
  if (b[i] !== 0x7b) throw new JsonScan.Malformed(`expected an object at ${i}`)
  i = JsonScan.skipWs(b, i + 1)
  if (b[i] === 0x7d) return i + 1
  while (i < b.length) {
    const keyEnd = JsonScan.skipString(b, i)
    const key = keyAt(b, i, keyEnd)
    i = JsonScan.skipWs(b, visit(key, valueAt(b, keyEnd)))
    if (b[i] === 0x2c) {
      i = JsonScan.skipWs(b, i + 1)
      continue
    }
    if (b[i] === 0x7d) return i + 1
    throw new JsonScan.Malformed(`expected , or } at ${i}`)
  }
  throw new JsonScan.Malformed("unterminated object")
}

const columnList = (b: Uint8Array, start: number, interned: JsonScan.Interner | undefined): ColumnList => {
  const items: Array<ColumnView> = []
  const end = JsonScan.elements(b, start, (itemStart, itemEnd) => {
    let name = ""
    let type = ""
    let value: Span | undefined
    object(b, itemStart, (key, s) => {
      const e = JsonScan.skipValue(b, s)
      if (key === "name") name = JsonScan.stringValue(b, s, e, interned)
      else if (key === "type") type = JsonScan.stringValue(b, s, e, interned)
      else if (key === "value") value = { start: s, end: e }
      return e
    })
    items.push({ start: itemStart, end: itemEnd, name, type, value })
  })
  return { start, end, items }
}

/**
 * Reads a body; throws {@link JsonScan.Malformed} when it is not one. With an interner (a
 * formatter's), names, types and tables are the same string objects from record to record.
 */
export const read = (bytes: Uint8Array, interned?: JsonScan.Interner): BodyView => {
  let action = ""
  let xid: string | undefined
  let timestamp: Span | undefined
  let lsn: string | undefined
  let schema = ""
  let table = ""
  let columns: ColumnList | undefined
  let identity: ColumnList | undefined
  let pk: ColumnList | undefined
  let transactional: boolean | undefined
  let prefix: Span | undefined
  let content: Span | undefined
  object(bytes, JsonScan.skipWs(bytes, 0), (key, start) => {
    switch (key) {
      case "columns":
        columns = columnList(bytes, start, interned)
        return columns.end
      case "identity":
        identity = columnList(bytes, start, interned)
        return identity.end
      case "pk":
        pk = columnList(bytes, start, interned)
        return pk.end
    }
    const end = JsonScan.skipValue(bytes, start)
    switch (key) {
      case "action":
        action = JsonScan.stringValue(bytes, start, end, interned)
        break
      case "xid":
        xid = JsonScan.ascii(bytes, start, end)
        break
      case "timestamp":
        timestamp = { start, end }
        break
      case "lsn":
        lsn = bytes[start] === 0x22 ? JsonScan.stringValue(bytes, start, end, interned) : undefined
        break
      case "schema":
        schema = JsonScan.stringValue(bytes, start, end, interned)
        break
      case "table":
        table = JsonScan.stringValue(bytes, start, end, interned)
        break
      case "transactional":
        transactional = bytes[start] === 0x74 /* t */
        break
      case "prefix":
        prefix = { start, end }
        break
      case "content":
        content = { start, end }
        break
    }
    return end
  })
  return { bytes, action, xid, timestamp, lsn, schema, table, columns, identity, pk, transactional, prefix, content }
}

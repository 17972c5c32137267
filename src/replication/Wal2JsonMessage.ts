/**
 * A wal2json format-version 2 message read from its bytes in one pass, without JSON.parse and
 * without decoding it as text: where each top-level field the decoder uses is (its kind and the
 * span of its value; the last one when a name repeats, as JSON.parse keeps it) and, in the
 * `columns`, `identity` and `pk` arrays, where each element's `name`, `type` and `value` are.
 * Reading checks that the whole message is JSON exactly as JSON.parse of its (leniently decoded)
 * text would, with {@link JsonScan}'s validating scans, and throws {@link JsonScan.Malformed}
 * otherwise. Field order is not relied on. A message is read in place, `[start, end)` of the bytes
 * it came in (its socket read's), and its spans index into those bytes. One {@link Message} per
 * decoder, reused message after message: its spans are valid until the next {@link read}.
 */
import * as Lsn from "../domain/Lsn.ts"
import * as JsonScan from "../format/JsonScan.ts"

const { Kind } = JsonScan

/** The top-level fields read, by index into {@link Message.kinds}; the last three are the column lists. */
export const Field = {
  action: 0,
  xid: 1,
  timestamp: 2,
  lsn: 3,
  nextlsn: 4,
  transactional: 5,
  schema: 6,
  table: 7,
  columns: 8,
  identity: 9,
  pk: 10
} as const
export type Field = (typeof Field)[keyof typeof Field]

/** The column lists, by index into {@link Message.listFirst}. */
export const List = { columns: 0, identity: 1, pk: 2 } as const
export type List = (typeof List)[keyof typeof List]

/**
 * An element of a column list, as {@link STRIDE} numbers in {@link Message.elements} from
 * `element * STRIDE`: its kind, then kind, start and end of its `name`, `type` and `value` (Absent
 * unless the element is an object that has them).
 */
export const STRIDE = 10
export const NAME = 1
export const TYPE = 4
export const VALUE = 7

const fieldNames = Object.keys(Field) as ReadonlyArray<keyof typeof Field>

export class Message {
  /** The bytes the message is in (the spans index into them), and where it starts and ends. */
  bytes: Uint8Array = new Uint8Array(0)
  start = 0
  end = 0
  /** Per {@link Field}: the kind of its value (Absent when the message has no such field), its start and end. */
  readonly kinds = new Uint8Array(fieldNames.length)
  readonly starts = new Int32Array(fieldNames.length)
  readonly ends = new Int32Array(fieldNames.length)
  /** Per {@link List} that is an array: its first element's index and its number of elements. */
  readonly listFirst = new Int32Array(3)
  readonly listCount = new Int32Array(3)
  /** The elements of the column lists (see {@link STRIDE}); `size` of them are in use. */
  elements = new Int32Array(64 * STRIDE)
  size = 0
}

const hasBackslash = (b: Uint8Array, start: number, end: number): boolean => {
  for (let i = start; i < end; i++) if (b[i] === 0x5c) return true
  return false
}

/** Whether the bytes `[start, end)` are the ASCII `text`. */
const bytesAre = (b: Uint8Array, start: number, end: number, text: string): boolean => {
  if (end - start !== text.length) return false
  for (let i = 0; i < text.length; i++) if (b[start + i] !== text.charCodeAt(i)) return false
  return true
}

/** `i` at a value of kind `kind`: the index after it (checked); strings and numbers without the general scan. */
const valueEnd = (b: Uint8Array, i: number, kind: JsonScan.Kind, end: number): number =>
  kind === Kind.String
    ? JsonScan.checkString(b, i, end)
    : kind === Kind.Number
    ? JsonScan.checkNumber(b, i, end)
    : JsonScan.checkValue(b, i, end)

/** The {@link Field} a key (its quoted span) names, or -1. */
const fieldOf = (b: Uint8Array, start: number, end: number): number => {
  const s = start + 1
  const e = end - 1
  // as wal2json writes them (a backslash matches no letter), else unescaped
  switch (e - s) {
    case 2: if (bytesAre(b, s, e, "pk")) return Field.pk; break
    case 3: if (b[s] === 0x78 ? bytesAre(b, s, e, "xid") : bytesAre(b, s, e, "lsn")) return b[s] === 0x78 ? Field.xid : Field.lsn; break
    case 5: if (bytesAre(b, s, e, "table")) return Field.table; break
    case 6: if (b[s] === 0x61 ? bytesAre(b, s, e, "action") : bytesAre(b, s, e, "schema")) return b[s] === 0x61 ? Field.action : Field.schema; break
    case 7: if (b[s] === 0x63 ? bytesAre(b, s, e, "columns") : bytesAre(b, s, e, "nextlsn")) return b[s] === 0x63 ? Field.columns : Field.nextlsn; break
    case 8: if (bytesAre(b, s, e, "identity")) return Field.identity; break
    case 9: if (bytesAre(b, s, e, "timestamp")) return Field.timestamp; break
    case 13: if (bytesAre(b, s, e, "transactional")) return Field.transactional; break
  }
  if (!hasBackslash(b, s, e)) return -1
  const key = JsonScan.stringValue(b, start, end)
  return Object.hasOwn(Field, key) ? Field[key as keyof typeof Field] : -1
}

/** Each field's key as wal2json writes it, with its quotes and colon: `"action":`. */
const keyTokens: ReadonlyArray<Uint8Array> = fieldNames.map((name) => new TextEncoder().encode(`"${name}":`))

/** Whether the bytes at `i` (before `end`) are those of `token`. */
const tokenAt = (b: Uint8Array, i: number, end: number, token: Uint8Array): boolean => {
  const n = token.length
  if (i + n > end) return false
  for (let k = 0; k < n; k++) if (b[i + k] !== token[k]) return false
  return true
}

/**
 * The {@link Field} whose key, as wal2json writes it (`"action":`, no escape, no whitespace), is at
 * `i`, or -1 (then the key is read as any JSON string). The token's bytes are a valid key and colon.
 */
const fieldTokenAt = (b: Uint8Array, i: number, end: number): number => {
  let field: number
  switch (i + 1 < end ? b[i + 1] : 0) {
    case 0x61: field = Field.action; break
    case 0x78: field = Field.xid; break
    case 0x74: field = i + 2 < end && b[i + 2] === 0x69 ? Field.timestamp : i + 2 < end && b[i + 2] === 0x61 ? Field.table : Field.transactional; break
    case 0x6c: field = Field.lsn; break
    case 0x6e: field = Field.nextlsn; break
    case 0x73: field = Field.schema; break
    case 0x63: field = Field.columns; break
    case 0x69: field = Field.identity; break
    case 0x70: field = Field.pk; break
    default: return -1
  }
  return tokenAt(b, i, end, keyTokens[field]!) ? field : -1
}

/** The offset in an element ({@link NAME}, {@link TYPE}, {@link VALUE}) of a column member's key, or -1. */
const memberOf = (b: Uint8Array, start: number, end: number): number => {
  const s = start + 1
  const e = end - 1
  const first = b[s]
  if (e - s === 4) {
    if (first === 0x6e && b[s + 1] === 0x61 && b[s + 2] === 0x6d && b[s + 3] === 0x65) return NAME
    if (first === 0x74 && b[s + 1] === 0x79 && b[s + 2] === 0x70 && b[s + 3] === 0x65) return TYPE
  } else if (e - s === 5 && first === 0x76 && b[s + 1] === 0x61 && b[s + 2] === 0x6c && b[s + 3] === 0x75 && b[s + 4] === 0x65) {
    return VALUE
  }
  if (!hasBackslash(b, s, e)) return -1
  const key = JsonScan.stringValue(b, start, end)
  return key === "name" ? NAME : key === "type" ? TYPE : key === "value" ? VALUE : -1
}

/** After a member or element: the index after its `,` (whitespace skipped), or -1 at the `close` that ends it. */
const next = (b: Uint8Array, i: number, close: number, end: number): number => {
  i = JsonScan.skipWs(b, i, end)
  if (i < end && b[i] === 0x2c) return JsonScan.skipWs(b, i + 1, end)
  if (i < end && b[i] === close) return -1
  throw new JsonScan.Malformed(`expected , or ${String.fromCharCode(close)} at ${i}`)
}

/** A column object at `i` (its `{`), as element `e`: the index after its `}`. */
const readColumn = (m: Message, b: Uint8Array, i: number, e: number, end: number): number => {
  i = JsonScan.skipWs(b, i + 1, end)
  if (i < end && b[i] === 0x7d) return i + 1
  const el = m.elements
  for (;;) {
    const keyEnd = JsonScan.checkString(b, i, end)
    const member = memberOf(b, i, keyEnd)
    const start = JsonScan.afterColon(b, keyEnd, end)
    const kind = JsonScan.kindAt(b, start, end)
    i = valueEnd(b, start, kind, end)
    if (member > 0) {
      el[e + member] = kind
      el[e + member + 1] = start
      el[e + member + 2] = i
    }
    const after = next(b, i, 0x7d, end)
    if (after < 0) return JsonScan.skipWs(b, i, end) + 1
    i = after
  }
}

/** `{"name":` at `i` (before `end`). */
const nameOpenAt = (b: Uint8Array, i: number, end: number): boolean =>
  i + 8 <= end && b[i] === 0x7b && b[i + 1] === 0x22 && b[i + 2] === 0x6e && b[i + 3] === 0x61 && b[i + 4] === 0x6d &&
  b[i + 5] === 0x65 && b[i + 6] === 0x22 && b[i + 7] === 0x3a

/** `,"type":` at `i` (before `end`). */
const typeKeyAt = (b: Uint8Array, i: number, end: number): boolean =>
  i + 8 <= end && b[i] === 0x2c && b[i + 1] === 0x22 && b[i + 2] === 0x74 && b[i + 3] === 0x79 && b[i + 4] === 0x70 &&
  b[i + 5] === 0x65 && b[i + 6] === 0x22 && b[i + 7] === 0x3a

/** `,"value":` at `i` (before `end`). */
const valueKeyAt = (b: Uint8Array, i: number, end: number): boolean =>
  i + 9 <= end && b[i] === 0x2c && b[i + 1] === 0x22 && b[i + 2] === 0x76 && b[i + 3] === 0x61 && b[i + 4] === 0x6c &&
  b[i + 5] === 0x75 && b[i + 6] === 0x65 && b[i + 7] === 0x22 && b[i + 8] === 0x3a

/**
 * A column object at `i` as wal2json writes it, `{"name":…,"type":…}` with or without `,"value":…`
 * and no whitespace, as element `e`: the index after its `}` (every string and value checked as
 * {@link readColumn} checks them), or -1 when it is written otherwise (then {@link readColumn} reads it).
 */
const readWal2JsonColumn = (m: Message, b: Uint8Array, i: number, e: number, end: number): number => {
  if (!nameOpenAt(b, i, end)) return -1
  const nameStart = i + 8
  if (nameStart >= end || b[nameStart] !== 0x22) return -1
  const nameEnd = JsonScan.checkString(b, nameStart, end)
  if (!typeKeyAt(b, nameEnd, end)) return -1
  const typeStart = nameEnd + 8
  if (typeStart >= end || b[typeStart] !== 0x22) return -1
  const typeEnd = JsonScan.checkString(b, typeStart, end)
  let close = typeEnd
  let kind: number = Kind.Absent
  let valueStart = 0
  if (valueKeyAt(b, typeEnd, end)) {
    valueStart = typeEnd + 9
    if (valueStart < end && b[valueStart]! <= 0x20) valueStart = JsonScan.skipWs(b, valueStart, end)
    kind = JsonScan.kindAt(b, valueStart, end)
    close = valueEnd(b, valueStart, kind as JsonScan.Kind, end)
  }
  if (close >= end || b[close] !== 0x7d) return -1
  const el = m.elements
  el[e + NAME] = Kind.String
  el[e + NAME + 1] = nameStart
  el[e + NAME + 2] = nameEnd
  el[e + TYPE] = Kind.String
  el[e + TYPE + 1] = typeStart
  el[e + TYPE + 2] = typeEnd
  el[e + VALUE] = kind
  el[e + VALUE + 1] = valueStart
  el[e + VALUE + 2] = close
  return close + 1
}

/** The array at `i` (its `[`) as column list `list`: the index after its `]`. */
const readList = (m: Message, b: Uint8Array, i: number, list: number, end: number): number => {
  m.listFirst[list] = m.size
  m.listCount[list] = 0
  i = JsonScan.skipWs(b, i + 1, end)
  if (i < end && b[i] === 0x5d) return i + 1
  let count = 0
  for (;;) {
    if ((m.size + 1) * STRIDE > m.elements.length) {
      const grown = new Int32Array(m.elements.length * 2)
      grown.set(m.elements)
      m.elements = grown
    }
    const e = m.size++ * STRIDE
    const el = m.elements
    const kind = JsonScan.kindAt(b, i, end)
    el[e] = kind
    if (kind === Kind.Object) {
      const after = readWal2JsonColumn(m, b, i, e, end)
      if (after >= 0) i = after
      else {
        el[e + NAME] = Kind.Absent
        el[e + TYPE] = Kind.Absent
        el[e + VALUE] = Kind.Absent
        i = readColumn(m, b, i, e, end)
      }
    } else {
      el[e + NAME] = Kind.Absent
      el[e + TYPE] = Kind.Absent
      el[e + VALUE] = Kind.Absent
      i = JsonScan.checkValue(b, i, end)
    }
    count++
    // wal2json's `,` between elements, else any whitespace
    if (i < end && b[i] === 0x2c && i + 1 < end && b[i + 1] === 0x7b) {
      i++
      continue
    }
    const after = next(b, i, 0x5d, end)
    if (after < 0) {
      m.listCount[list] = count
      return JsonScan.skipWs(b, i, end) + 1
    }
    i = after
  }
}

/**
 * Reads the message `[start, end)` of `b` (by default all of `b`) into `m`: true when it is a JSON
 * object, false when it is JSON but not an object. Throws {@link JsonScan.Malformed} when it is
 * not JSON. A leading byte order mark is skipped, as a text decoder drops it.
 */
export const read = (m: Message, b: Uint8Array, start: number = 0, end: number = b.length): boolean => {
  m.bytes = b
  m.start = start
  m.end = end
  m.kinds.fill(Kind.Absent)
  m.size = 0
  let i = end - start >= 3 && b[start] === 0xef && b[start + 1] === 0xbb && b[start + 2] === 0xbf ? start + 3 : start
  i = JsonScan.skipWs(b, i, end)
  let isObject = false
  if (i >= end || b[i] !== 0x7b) i = JsonScan.checkValue(b, i, end)
  else {
    isObject = true
    i = JsonScan.skipWs(b, i + 1, end)
    if (i < end && b[i] === 0x7d) i++
    else {
      for (;;) {
        let field = fieldTokenAt(b, i, end)
        let start: number
        if (field >= 0) {
          // a key as wal2json writes it, then its value (after any whitespace)
          start = i + keyTokens[field]!.length
          if (start < end && b[start]! <= 0x20) start = JsonScan.skipWs(b, start, end)
        } else {
          const keyEnd = JsonScan.checkString(b, i, end)
          field = fieldOf(b, i, keyEnd)
          start = JsonScan.afterColon(b, keyEnd, end)
        }
        const kind = JsonScan.kindAt(b, start, end)
        i = field >= Field.columns && kind === Kind.Array
          ? readList(m, b, start, field - Field.columns, end)
          : valueEnd(b, start, kind, end)
        if (field >= 0) {
          m.kinds[field] = kind
          m.starts[field] = start
          m.ends[field] = i
        }
        if (i < end && b[i] === 0x2c && i + 1 < end && b[i + 1] === 0x22) {
          i++
          continue
        }
        const after = next(b, i, 0x7d, end)
        if (after < 0) {
          i = JsonScan.skipWs(b, i, end) + 1
          break
        }
        i = after
      }
    }
  }
  if (JsonScan.skipWs(b, i, end) !== end) throw new JsonScan.Malformed(`unexpected text after the JSON value at ${i}`)
  return isObject
}

/** A field's value when it is a string (unescaped; invalid UTF-8 as U+FFFD), else `undefined`. */
export const stringOf = (m: Message, field: Field, interned?: JsonScan.Interner): string | undefined =>
  m.kinds[field] === Kind.String ? JsonScan.stringValue(m.bytes, m.starts[field]!, m.ends[field]!, interned) : undefined

/** The number whose text is `[start, end)` (a checked JSON number). */
export const numberAt = (b: Uint8Array, start: number, end: number): number => {
  // the common case, a short non-negative integer, without making its text
  if (end - start <= 15) {
    let value = 0
    for (let i = start; i < end; i++) {
      const d = b[i]! - 0x30
      if (d < 0 || d > 9) return Number(JsonScan.ascii(b, start, end))
      value = value * 10 + d
    }
    return value
  }
  return Number(JsonScan.ascii(b, start, end))
}

/** A field's value when it is a number, else `undefined`. */
export const numberOf = (m: Message, field: Field): number | undefined =>
  m.kinds[field] === Kind.Number ? numberAt(m.bytes, m.starts[field]!, m.ends[field]!) : undefined

/** The value `[start, end)` as JSON.parse gives it (the slow path for the rare value read whole). */
export const parsedAt = (b: Uint8Array, start: number, end: number): unknown => JSON.parse(JsonScan.text(b, start, end))

/** A field's value as JSON.parse gives it; `undefined` when absent. */
export const parsedOf = (m: Message, field: Field): unknown =>
  m.kinds[field] === Kind.Absent ? undefined : parsedAt(m.bytes, m.starts[field]!, m.ends[field]!)

/**
 * A copy of the bytes a field last held, kept in an array of its own (grown as needed, never a view
 * of a read buffer): a table's name or a commit time repeats message after message.
 */
export class LastBytes {
  bytes = new Uint8Array(32)
  length = -1
  /** Whether `[start, end)` of `b` holds the bytes last kept. */
  same(b: Uint8Array, start: number, end: number): boolean {
    const n = this.length
    if (n !== end - start) return false
    const known = this.bytes
    for (let i = 0; i < n; i++) if (known[i] !== b[start + i]) return false
    return true
  }
  /** Keeps a copy of `[start, end)` of `b`. */
  keep(b: Uint8Array, start: number, end: number): void {
    const n = end - start
    if (n > this.bytes.length) this.bytes = new Uint8Array(Math.max(n, this.bytes.length * 2))
    const known = this.bytes
    for (let i = 0; i < n; i++) known[i] = b[start + i]!
    this.length = n
  }
}

/** The last string a field held, and its bytes: a table's name repeats message after message. */
export class LastString extends LastBytes {
  text = ""
}

/** {@link stringOf} through `last`: the same string again when the field holds the same bytes as last time. */
export const stringOfCached = (m: Message, field: Field, last: LastString, interned?: JsonScan.Interner): string | undefined => {
  if (m.kinds[field] !== Kind.String) return undefined
  const start = m.starts[field]!
  const end = m.ends[field]!
  if (!last.same(m.bytes, start, end)) {
    last.text = JsonScan.stringValue(m.bytes, start, end, interned)
    last.keep(m.bytes, start, end)
  }
  return last.text
}

const hexValue = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1

/** A field's value as `Lsn.parse` of its string reads it (`undefined` when not a string or not an LSN), from the bytes. */
export const lsnOf = (m: Message, field: Field): Lsn.Lsn | undefined => {
  if (m.kinds[field] !== Kind.String) return undefined
  const b = m.bytes
  const start = m.starts[field]! + 1
  const end = m.ends[field]! - 1
  let high = -1
  let value = 0
  let digits = 0
  for (let i = start; i < end; i++) {
    const c = b[i]!
    if (c === 0x5c) return Lsn.parse(stringOf(m, field)!) // an escape: as the unescaped string reads
    if (c === 0x2f /* / */ && high < 0 && digits > 0) {
      high = value
      value = 0
      digits = 0
      continue
    }
    const digit = hexValue(c)
    if (digit < 0 || ++digits > 8) return hasBackslash(b, i, end) ? Lsn.parse(stringOf(m, field)!) : undefined
    value = value * 16 + digit
  }
  if (high < 0 || digits === 0) return undefined
  // one bigint made: below 2^53 the value is exact as a number
  return high < 0x200000 ? BigInt(high * 4294967296 + value) : (BigInt(high) << 32n) | BigInt(value)
}

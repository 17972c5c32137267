/**
 * A wal2json format-version 2 message read from its bytes in one pass, without JSON.parse and
 * without decoding it as text: where each top-level field the decoder uses is (its kind and the
 * span of its value; the last one when a name repeats, as JSON.parse keeps it) and, in the
 * `columns`, `identity` and `pk` arrays, where each element's `name`, `type` and `value` are.
 * Reading checks that the whole message is JSON exactly as JSON.parse of its (leniently decoded)
 * text would, with {@link JsonScan}'s validating scans, and throws {@link JsonScan.Malformed}
 * otherwise. Field order is not relied on. One {@link Message} per decoder, reused message after
 * message: its spans are valid until the next {@link read}.
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
  /** The message's bytes (the spans index into them). */
  bytes: Uint8Array = new Uint8Array(0)
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
const valueEnd = (b: Uint8Array, i: number, kind: JsonScan.Kind): number =>
  kind === Kind.String ? JsonScan.checkString(b, i) : kind === Kind.Number ? JsonScan.checkNumber(b, i) : JsonScan.checkValue(b, i)

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
const next = (b: Uint8Array, i: number, close: number): number => {
  i = JsonScan.skipWs(b, i)
  if (b[i] === 0x2c) return JsonScan.skipWs(b, i + 1)
  if (b[i] === close) return -1
  throw new JsonScan.Malformed(`expected , or ${String.fromCharCode(close)} at ${i}`)
}

/** A column object at `i` (its `{`), as element `e`: the index after its `}`. */
const readColumn = (m: Message, b: Uint8Array, i: number, e: number): number => {
  i = JsonScan.skipWs(b, i + 1)
  if (b[i] === 0x7d) return i + 1
  const el = m.elements
  for (;;) {
    const keyEnd = JsonScan.checkString(b, i)
    const member = memberOf(b, i, keyEnd)
    const start = JsonScan.afterColon(b, keyEnd)
    const kind = JsonScan.kindAt(b, start)
    i = valueEnd(b, start, kind)
    if (member > 0) {
      el[e + member] = kind
      el[e + member + 1] = start
      el[e + member + 2] = i
    }
    const after = next(b, i, 0x7d)
    if (after < 0) return JsonScan.skipWs(b, i) + 1
    i = after
  }
}

/** The array at `i` (its `[`) as column list `list`: the index after its `]`. */
const readList = (m: Message, b: Uint8Array, i: number, list: number): number => {
  m.listFirst[list] = m.size
  m.listCount[list] = 0
  i = JsonScan.skipWs(b, i + 1)
  if (b[i] === 0x5d) return i + 1
  let count = 0
  for (;;) {
    if ((m.size + 1) * STRIDE > m.elements.length) {
      const grown = new Int32Array(m.elements.length * 2)
      grown.set(m.elements)
      m.elements = grown
    }
    const e = m.size++ * STRIDE
    const el = m.elements
    const kind = JsonScan.kindAt(b, i)
    el[e] = kind
    el[e + NAME] = Kind.Absent
    el[e + TYPE] = Kind.Absent
    el[e + VALUE] = Kind.Absent
    i = kind === Kind.Object ? readColumn(m, b, i, e) : JsonScan.checkValue(b, i)
    count++
    const after = next(b, i, 0x5d)
    if (after < 0) {
      m.listCount[list] = count
      return JsonScan.skipWs(b, i) + 1
    }
    i = after
  }
}

/**
 * Reads `b` into `m`: true when it is a JSON object, false when it is JSON but not an object.
 * Throws {@link JsonScan.Malformed} when it is not JSON. A leading byte order mark is skipped, as
 * a text decoder drops it.
 */
export const read = (m: Message, b: Uint8Array): boolean => {
  m.bytes = b
  m.kinds.fill(Kind.Absent)
  m.size = 0
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0
  i = JsonScan.skipWs(b, i)
  let isObject = false
  if (b[i] !== 0x7b) i = JsonScan.checkValue(b, i)
  else {
    isObject = true
    i = JsonScan.skipWs(b, i + 1)
    if (b[i] === 0x7d) i++
    else {
      for (;;) {
        const keyEnd = JsonScan.checkString(b, i)
        const field = fieldOf(b, i, keyEnd)
        const start = JsonScan.afterColon(b, keyEnd)
        const kind = JsonScan.kindAt(b, start)
        i = field >= Field.columns && kind === Kind.Array ? readList(m, b, start, field - Field.columns) : valueEnd(b, start, kind)
        if (field >= 0) {
          m.kinds[field] = kind
          m.starts[field] = start
          m.ends[field] = i
        }
        const after = next(b, i, 0x7d)
        if (after < 0) {
          i = JsonScan.skipWs(b, i) + 1
          break
        }
        i = after
      }
    }
  }
  if (JsonScan.skipWs(b, i) !== b.length) throw new JsonScan.Malformed(`unexpected text after the JSON value at ${i}`)
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

/** Whether `[start, end)` of `b` holds the bytes of `known`. */
export const sameBytes = (known: Uint8Array, b: Uint8Array, start: number, end: number): boolean => {
  if (known.length !== end - start) return false
  for (let i = 0; i < known.length; i++) if (known[i] !== b[start + i]) return false
  return true
}

/** The last string a field held, and its bytes: a table's name repeats message after message. */
export class LastString {
  bytes: Uint8Array = new Uint8Array(0)
  text = ""
}

/** {@link stringOf} through `last`: the same string again when the field holds the same bytes as last time. */
export const stringOfCached = (m: Message, field: Field, last: LastString, interned?: JsonScan.Interner): string | undefined => {
  if (m.kinds[field] !== Kind.String) return undefined
  const start = m.starts[field]!
  const end = m.ends[field]!
  if (!sameBytes(last.bytes, m.bytes, start, end)) {
    last.text = JsonScan.stringValue(m.bytes, start, end, interned)
    last.bytes = m.bytes.slice(start, end)
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
  return high === 0 ? BigInt(value) : (BigInt(high) << 32n) | BigInt(value)
}

/**
 * The row key of a wal2json change, from a message read by {@link Wal2JsonMessage}: the key
 * columns' values as a JSON array, each found by name in the new row (`columns`), else the old
 * (`identity`). A string is rendered as JSON.stringify renders it (a string with an escape is
 * parsed and rendered again: wal2json may escape differently), an integer of an integer type as
 * its number, any other number as the text wal2json wrote (a second pass, as for a numeric key), so
 * that keys are those the pgoutput decoder renders. Also the images a deferrable key compares.
 *
 * The names looked up are the catalog's key columns, else the names in wal2json's `pk` (whatever
 * JSON value each is, compared as JavaScript compares the parsed values).
 */
import * as JsonScan from "../format/JsonScan.ts"
import { Field, LastBytes, List, type Message, NAME, numberAt, parsedAt, STRIDE, TYPE, VALUE } from "./Wal2JsonMessage.ts"

const { Kind } = JsonScan

/**
 * The first pass renders numbers as JavaScript prints them (and says "inexact" when that may not
 * be wal2json's text); the second renders every number as its text and compares no two numbers
 * as equal (each is a value of its own, as when parsed keeping its source text).
 */
type Pass = 1 | 2

const INEXACT = "inexact"

/** A name no column can have (a `pk` name that is an object or an array: equal only to itself). */
const unmatchable: object = Object.freeze({})

const integerTypes = ["smallint", "integer", "bigint", "oid"]

/** A JSON number kept with the text wal2json wrote (the second pass's numbers inside an object key value). */
class NumberSource {
  readonly source: string
  constructor(source: string) {
    this.source = source
  }
}

const keepNumberSource = (_key: string, value: unknown, context?: { readonly source?: string }): unknown =>
  typeof value === "number" && context?.source !== undefined ? new NumberSource(context.source) : value

/** Whether the string content `[start, end)` is plain ASCII with no escape (its text is its bytes). */
const plain = (b: Uint8Array, start: number, end: number): boolean => {
  for (let i = start; i < end; i++) {
    const c = b[i]!
    if (c === 0x5c || c >= 0x80) return false
  }
  return true
}

/** Whether the quoted string `[start, end)` is `text` once unescaped and decoded. */
const stringIs = (b: Uint8Array, start: number, end: number, text: string): boolean => {
  if (!plain(b, start + 1, end - 1)) return JsonScan.stringValue(b, start, end) === text
  if (end - start - 2 !== text.length) return false
  for (let i = 0; i < text.length; i++) if (b[start + 1 + i] !== text.charCodeAt(i)) return false
  return true
}

/** Whether two quoted strings are the same once unescaped and decoded. */
const sameString = (b: Uint8Array, s1: number, e1: number, s2: number, e2: number): boolean => {
  if (e1 - s1 === e2 - s2) {
    let same = true
    for (let i = 0; i < e1 - s1; i++) {
      if (b[s1 + i] !== b[s2 + i]) {
        same = false
        break
      }
    }
    if (same) return true
  }
  if (plain(b, s1 + 1, e1 - 1) && plain(b, s2 + 1, e2 - 1)) return false
  return JsonScan.stringValue(b, s1, e1) === JsonScan.stringValue(b, s2, e2)
}

/** Whether element `e` (offset in `m.elements`) has the name `name`, as `column.name === name` of the parsed element. */
const named = (m: Message, e: number, name: unknown, pass: Pass): boolean => {
  const el = m.elements
  const kind = el[e]
  // an array has no name; nor has a number in the second pass (an object there)
  if (kind === Kind.Array || (kind === Kind.Number && pass === 2)) return name === undefined
  if (kind !== Kind.Object) return false
  switch (el[e + NAME]) {
    case Kind.Absent: return name === undefined
    case Kind.String: return typeof name === "string" && stringIs(m.bytes, el[e + NAME + 1]!, el[e + NAME + 2]!, name)
    case Kind.Number: return pass === 1 && typeof name === "number" && numberAt(m.bytes, el[e + NAME + 1]!, el[e + NAME + 2]!) === name
    case Kind.True: return name === true
    case Kind.False: return name === false
    case Kind.Null: return name === null
    default: return false
  }
}

/** The first element of `list` named `name` (its offset in `m.elements`), or -1. */
const findColumn = (m: Message, list: List, name: unknown, pass: Pass): number => {
  if (m.kinds[Field.columns + list] !== Kind.Array) return -1
  const first = m.listFirst[list]!
  const end = first + m.listCount[list]!
  for (let e = first * STRIDE; e < end * STRIDE; e += STRIDE) if (named(m, e, name, pass)) return e
  return -1
}

/** The last `pk` list read, and its names: every change of a table carries the same. */
const lastPk = new LastBytes()
let lastPkNames: ReadonlyArray<unknown> = []

/** The names in wal2json's `pk` list (the immediate primary key), as the parsed elements' `name`s. */
export const pkNames = (m: Message): ReadonlyArray<unknown> => {
  if (m.kinds[Field.pk] !== Kind.Array) return []
  const pkStart = m.starts[Field.pk]!
  const pkEnd = m.ends[Field.pk]!
  if (lastPk.same(m.bytes, pkStart, pkEnd)) return lastPkNames
  const names: Array<unknown> = []
  const el = m.elements
  const first = m.listFirst[List.pk]!
  const end = first + m.listCount[List.pk]!
  for (let e = first * STRIDE; e < end * STRIDE; e += STRIDE) {
    if (el[e] !== Kind.Object) {
      names.push(undefined)
      continue
    }
    const start = el[e + NAME + 1]!
    const stop = el[e + NAME + 2]!
    switch (el[e + NAME]) {
      case Kind.String: names.push(JsonScan.stringValue(m.bytes, start, stop, interned)); break
      case Kind.Number: names.push(numberAt(m.bytes, start, stop)); break
      case Kind.True: names.push(true); break
      case Kind.False: names.push(false); break
      case Kind.Null: names.push(null); break
      case Kind.Absent: names.push(undefined); break
      default: names.push(unmatchable)
    }
  }
  lastPk.keep(m.bytes, pkStart, pkEnd)
  lastPkNames = names
  return names
}

/** Key column names repeat on every change of a table. */
const interned = JsonScan.makeInterner()

/** Whether element `e`'s `type` is an integer type. */
const integerTyped = (m: Message, e: number): boolean => {
  if (m.elements[e + TYPE] !== Kind.String) return false
  const start = m.elements[e + TYPE + 1]!
  const end = m.elements[e + TYPE + 2]!
  for (const type of integerTypes) if (stringIs(m.bytes, start, end, type)) return true
  return false
}

/** The JSON text of a key string value: as JSON.stringify renders the parsed string. */
const stringText = (b: Uint8Array, start: number, end: number): string => {
  for (let i = start + 1; i < end - 1; i++) {
    // an escape wal2json wrote may not be the one JSON.stringify writes
    if (b[i] === 0x5c) return JSON.stringify(JSON.parse(JsonScan.text(b, start, end)))
  }
  // no escape: nothing JSON.stringify would escape either (raw control characters are not JSON)
  return JsonScan.text(b, start, end)
}

/** Where {@link renderKey} writes a key's bytes; a key that does not fit is rendered as text. */
const keyBytes = Buffer.allocUnsafeSlow(4096)

const { latin1Slice } = Buffer.prototype as unknown as {
  readonly latin1Slice: (this: Buffer, start: number, end: number) => string
}

/** Writes `[start, end)` of `b` into {@link keyBytes} at `o`: the index after them, or -1 when they do not fit. */
const putBytes = (b: Uint8Array, start: number, end: number, o: number): number => {
  // room for the bytes, a `,` or the closing `]`
  if (o + (end - start) + 1 >= keyBytes.length) return -1
  for (let i = start; i < end; i++) keyBytes[o++] = b[i]!
  return o
}

/** Writes ASCII `text` into {@link keyBytes} at `o`: the index after it, or -1 when it does not fit. */
const putText = (text: string, o: number): number => {
  if (o + text.length + 1 >= keyBytes.length) return -1
  for (let i = 0; i < text.length; i++) keyBytes[o++] = text.charCodeAt(i)
  return o
}

/** Whether a checked JSON number `[start, end)` is an integer as `String` prints it: `-?(0|[1-9][0-9]*)`, not `-0`. */
const canonicalInteger = (b: Uint8Array, start: number, end: number): boolean => {
  let i = start
  if (b[i] === 0x2d) i++
  if (i >= end || (b[i] === 0x30 && (end - i > 1 || i > start))) return false
  for (; i < end; i++) if (b[i]! < 0x30 || b[i]! > 0x39) return false
  return true
}

/**
 * {@link renderKeyText}, written as bytes and made one string: the common key (integers, ASCII
 * strings without escapes, literals) without a string per piece; any other rendered as text.
 */
const renderKey = (m: Message, names: ReadonlyArray<unknown>, row: List, fallback: List | -1, pass: Pass): string | undefined => {
  if (names.length === 0) return undefined
  const b = m.bytes
  const el = m.elements
  let o = 0
  keyBytes[o++] = 0x5b // [
  for (let i = 0; i < names.length; i++) {
    let e = findColumn(m, row, names[i], pass)
    if (e < 0 && fallback !== -1) e = findColumn(m, fallback, names[i], pass)
    if (e < 0) return undefined
    if (i > 0) keyBytes[o++] = 0x2c // ,
    const start = el[e + VALUE + 1]!
    const end = el[e + VALUE + 2]!
    switch (el[e + VALUE]) {
      case Kind.Absent: return undefined
      case Kind.String:
        // as JSON.stringify renders it only when plain ASCII without an escape
        o = plain(b, start + 1, end - 1) ? putBytes(b, start, end, o) : -1
        break
      case Kind.Number: {
        if (pass === 2) {
          o = putBytes(b, start, end, o)
          break
        }
        const value = numberAt(b, start, end)
        if (!Number.isSafeInteger(value) || !integerTyped(m, e)) return INEXACT
        o = canonicalInteger(b, start, end) ? putBytes(b, start, end, o) : putText(String(value), o)
        break
      }
      case Kind.True: o = putText("true", o); break
      case Kind.False: o = putText("false", o); break
      case Kind.Null: o = putText("null", o); break
      default: o = -1
    }
    if (o < 0) return renderKeyText(m, names, row, fallback, pass)
  }
  keyBytes[o++] = 0x5d // ]
  return latin1Slice.call(keyBytes, 0, o)
}

/**
 * The key columns' values as a JSON array, each read from `row`, else from `fallback`. `undefined`
 * when there are no key columns or one is absent; "inexact" when, in the first pass, a number may
 * not print back as wal2json wrote it.
 */
const renderKeyText = (m: Message, names: ReadonlyArray<unknown>, row: List, fallback: List | -1, pass: Pass): string | undefined => {
  if (names.length === 0) return undefined
  const b = m.bytes
  const el = m.elements
  let text = "["
  for (let i = 0; i < names.length; i++) {
    let e = findColumn(m, row, names[i], pass)
    if (e < 0 && fallback !== -1) e = findColumn(m, fallback, names[i], pass)
    if (e < 0) return undefined
    if (i > 0) text += ","
    const start = el[e + VALUE + 1]!
    const end = el[e + VALUE + 2]!
    switch (el[e + VALUE]) {
      case Kind.Absent: return undefined
      case Kind.String: text += stringText(b, start, end); break
      case Kind.Number: {
        if (pass === 2) {
          text += JsonScan.ascii(b, start, end)
          break
        }
        const value = numberAt(b, start, end)
        if (!Number.isSafeInteger(value) || !integerTyped(m, e)) return INEXACT
        text += String(value)
        break
      }
      case Kind.True: text += "true"; break
      case Kind.False: text += "false"; break
      case Kind.Null: text += "null"; break
      default: {
        const json = JsonScan.text(b, start, end)
        text += JSON.stringify(pass === 1 ? JSON.parse(json) : JSON.parse(json, keepNumberSource))
      }
    }
  }
  return text + "]"
}

/** Whether the values of two elements are the same value (`a === b`, a safe integer if a number, not an object). */
const sameValue = (m: Message, a: number, b: number, pass: Pass): boolean => {
  const el = m.elements
  const kind = el[a + VALUE]
  if (kind !== el[b + VALUE]) return false
  switch (kind) {
    case Kind.String:
      return sameString(m.bytes, el[a + VALUE + 1]!, el[a + VALUE + 2]!, el[b + VALUE + 1]!, el[b + VALUE + 2]!)
    case Kind.Number: {
      if (pass === 2) return false
      const value = numberAt(m.bytes, el[a + VALUE + 1]!, el[a + VALUE + 2]!)
      return value === numberAt(m.bytes, el[b + VALUE + 1]!, el[b + VALUE + 2]!) && Number.isSafeInteger(value)
    }
    case Kind.Object:
    case Kind.Array:
      return false
    default:
      return true
  }
}

/**
 * Whether an update's new row surely has its old key (the common case, told without rendering the
 * old key): every key column absent from the new row (an unchanged TOAST value) or equal to the old.
 */
const sameKey = (m: Message, names: ReadonlyArray<unknown>, pass: Pass): boolean => {
  for (const name of names) {
    const now = findColumn(m, List.columns, name, pass)
    if (now < 0) continue
    const before = findColumn(m, List.identity, name, pass)
    if (before < 0 || !sameValue(m, now, before, pass)) return false
  }
  return true
}

/** A row change's key (the new row's for I and U, the old row's for D) and, for U, the old row's. */
export interface RowKeys {
  readonly key: string | undefined
  readonly oldKey: string | undefined
}

const renderKeys = (m: Message, action: "I" | "U" | "D", names: ReadonlyArray<unknown>, pass: Pass): RowKeys => {
  if (action === "D") return { key: renderKey(m, names, List.identity, -1, pass), oldKey: undefined }
  // an unchanged TOAST key column is absent from the new row: it is the old one
  const key = renderKey(m, names, List.columns, List.identity, pass)
  if (action !== "U" || m.kinds[Field.identity] !== Kind.Array) return { key, oldKey: undefined }
  return { key, oldKey: sameKey(m, names, pass) ? key : renderKey(m, names, List.identity, -1, pass) }
}

/** The keys of a row change, under the key columns `names`. */
export const rowKeys = (m: Message, action: "I" | "U" | "D", names: ReadonlyArray<unknown>): RowKeys => {
  const first = renderKeys(m, action, names, 1)
  if (first.key !== INEXACT && first.oldKey !== INEXACT) return first
  // a decimal or very large key: every number as the text wal2json wrote
  const exact = renderKeys(m, action, names, 2)
  return { key: exact.key === INEXACT ? undefined : exact.key, oldKey: exact.oldKey === INEXACT ? undefined : exact.oldKey }
}

/** A row's values (name → value as JSON text) from a column list (deferrable keys only: each value parsed). */
export const imageOf = (m: Message, list: List): Map<string, string> => {
  const image = new Map<string, string>()
  if (m.kinds[Field.columns + list] !== Kind.Array) return image
  const el = m.elements
  const first = m.listFirst[list]!
  const end = first + m.listCount[list]!
  for (let e = first * STRIDE; e < end * STRIDE; e += STRIDE) {
    if (el[e] !== Kind.Object || el[e + NAME] !== Kind.String) continue
    const name = JsonScan.stringValue(m.bytes, el[e + NAME + 1]!, el[e + NAME + 2]!)
    const value = el[e + VALUE] === Kind.Absent ? undefined : parsedAt(m.bytes, el[e + VALUE + 1]!, el[e + VALUE + 2]!)
    image.set(name, JSON.stringify(value) ?? "null")
  }
  return image
}

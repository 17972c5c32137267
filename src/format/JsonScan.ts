/**
 * A byte-level JSON scanner for record bodies: finds where values start and end without building
 * them, so a body can be cut and re-assembled with every byte it carried (numbers keep their exact
 * text, strings keep bytes that are not valid UTF-8). Structural characters are ASCII, so scanning
 * bytes is safe for any content. Functions throw {@link Malformed} on input that is not JSON.
 */

export class Malformed extends Error {}

const QUOTE = 0x22
const lenient = new TextDecoder("utf-8")
const BACKSLASH = 0x5c

/** The index of the first non-whitespace byte at or after `i` (at most `end`). */
export const skipWs = (b: Uint8Array, i: number, end: number = b.length): number => {
  while (i < end) {
    const c = b[i]!
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
  }
  return i
}

/** `i` at an opening quote: the index after the closing quote. */
export const skipString = (b: Uint8Array, i: number): number => {
  if (b[i] !== QUOTE) throw new Malformed(`expected a string at ${i}`)
  // short strings (names, types, most values) by hand; long ones with a native search
  const near = Math.min(b.length, i + 48)
  for (let j = i + 1; j < near; j++) {
    const c = b[j]!
    if (c === QUOTE) return j + 1
    if (c === BACKSLASH) j++
  }
  let from = near
  if (b[near - 1] === BACKSLASH) {
    // the loop above may have stopped inside an escape: find where the escape run started
    let run = 0
    for (let k = near - 1; k > i && b[k] === BACKSLASH; k--) run++
    if (run % 2 === 1) from = near + 1
  }
  while (true) {
    // the next quote, then whether an odd run of backslashes escapes it
    const quote = Uint8Array.prototype.indexOf.call(b, QUOTE, from)
    if (quote < 0) throw new Malformed("unterminated string")
    let backslashes = 0
    for (let k = quote - 1; k > i && b[k] === BACKSLASH; k--) backslashes++
    if (backslashes % 2 === 0) return quote + 1
    from = quote + 1
  }
}

/** `i` at the start of any value: the index after it. */
export const skipValue = (b: Uint8Array, i: number): number => {
  const c = b[i]
  if (c === QUOTE) return skipString(b, i)
  if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
    let depth = 0
    while (i < b.length) {
      const d = b[i]!
      if (d === QUOTE) {
        i = skipString(b, i)
        continue
      }
      if (d === 0x7b || d === 0x5b) depth++
      else if (d === 0x7d || d === 0x5d) {
        depth--
        if (depth === 0) return i + 1
      }
      i++
    }
    throw new Malformed("unterminated object or array")
  }
  // a number or a literal: up to the next delimiter
  const start = i
  while (i < b.length) {
    const d = b[i]!
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break
    i++
  }
  if (i === start) throw new Malformed(`expected a value at ${start}`)
  return i
}

/** The bytes `[start, end)` as text (invalid UTF-8 becomes U+FFFD). */
export const text = (b: Uint8Array, start: number, end: number): string => lenient.decode(b.subarray(start, end))

const { latin1Slice } = Buffer.prototype as unknown as {
  readonly latin1Slice: (this: Buffer, start: number, end: number) => string
}

/** An ASCII-only span as text, without a decoder (keys, numbers, literals). */
export const ascii = (b: Uint8Array, start: number, end: number): string => {
  // a Buffer's bytes as one string, made natively (no string per character added)
  if (b instanceof Buffer) return latin1Slice.call(b, start, end)
  // a decoder call costs about as much as a dozen characters added one by one
  if (end - start > 12) return lenient.decode(b.subarray(start, end))
  let out = ""
  for (let i = start; i < end; i++) out += String.fromCharCode(b[i]!)
  return out
}

/**
 * Strings made once for the same ASCII bytes (keys, column names and types repeat on every record),
 * by hash; kept by each reader that wants them (a formatter), not by the module. Cleared at 8192.
 */
export type Interner = Map<number, string>

/** A new, empty {@link Interner}. */
export const makeInterner = (): Interner => new Map()

const internedAt = (interned: Interner, b: Uint8Array, start: number, end: number, hash: number): string => {
  const known = interned.get(hash)
  if (known !== undefined && known.length === end - start) {
    let same = true
    for (let i = 0; i < known.length; i++) {
      if (known.charCodeAt(i) !== b[start + i]) {
        same = false
        break
      }
    }
    if (same) return known
  }
  const text = ascii(b, start, end)
  if (interned.size >= 8192) interned.clear()
  interned.set(hash, text)
  return text
}

/**
 * The string value whose quoted span is `[start, end)`, unescaped; with an {@link Interner}, a
 * short ASCII value is the same string object each time for the same bytes.
 */
export const stringValue = (b: Uint8Array, start: number, end: number, interned?: Interner): string => {
  if (end - start > 66) return JSON.parse(text(b, start, end)) as string
  if (interned === undefined) {
    for (let i = start + 1; i < end - 1; i++) {
      const c = b[i]!
      if (c === BACKSLASH || c >= 0x80) return JSON.parse(text(b, start, end)) as string
    }
    return ascii(b, start + 1, end - 1)
  }
  // one pass: whether it is plain ASCII, and its hash for the interned copy
  let hash = 0x811c9dc5 ^ (end - start - 2)
  for (let i = start + 1; i < end - 1; i++) {
    const c = b[i]!
    if (c === BACKSLASH || c >= 0x80) return JSON.parse(text(b, start, end)) as string
    hash = Math.imul(hash ^ c, 16777619)
  }
  return internedAt(interned, b, start + 1, end - 1, hash)
}

/**
 * The bytes of the string value whose quoted span is `[start, end)`, unescaped byte by byte: raw
 * bytes (valid UTF-8 or not) pass as they are, escapes become the bytes they stand for (a `\u00XX`
 * escape below 0x100 becomes that byte, as PostgreSQL's escape_json wrote it from one).
 */
export const stringBytes = (b: Uint8Array, start: number, end: number): Uint8Array => {
  const out = new Uint8Array(end - start)
  let o = 0
  for (let i = start + 1; i < end - 1; i++) {
    const c = b[i]!
    if (c !== BACKSLASH) {
      out[o++] = c
      continue
    }
    const e = b[++i]!
    switch (e) {
      case 0x62: out[o++] = 0x08; break
      case 0x74: out[o++] = 0x09; break
      case 0x6e: out[o++] = 0x0a; break
      case 0x66: out[o++] = 0x0c; break
      case 0x72: out[o++] = 0x0d; break
      case 0x75: { // uXXXX (PostgreSQL escapes only control characters so; others as JSON says)
        let code = parseInt(ascii(b, i + 1, i + 5), 16)
        i += 4
        if (code < 0x80) {
          out[o++] = code
          break
        }
        let char = String.fromCharCode(code)
        if (code >= 0xd800 && code < 0xdc00 && b[i + 1] === BACKSLASH && b[i + 2] === 0x75) {
          code = parseInt(ascii(b, i + 3, i + 7), 16)
          char += String.fromCharCode(code)
          i += 6
        }
        const encoded = Buffer.from(char, "utf8")
        out.set(encoded, o)
        o += encoded.length
        break
      }
      default:
        out[o++] = e
    }
  }
  return out.subarray(0, o)
}

/** A key and the span of its value, in an object. */
export interface Member {
  readonly key: string
  readonly start: number
  readonly end: number
}

/**
 * Calls `visit` for each member of the object starting at `i` (its `{`); returns the index after
 * its `}`. Keys are read as ASCII (the keys of record bodies are).
 */
export const members = (b: Uint8Array, i: number, visit: (key: string, start: number, end: number) => void): number => {
  if (b[i] !== 0x7b) throw new Malformed(`expected an object at ${i}`)
  i = skipWs(b, i + 1)
  if (b[i] === 0x7d) return i + 1
  while (i < b.length) {
    const keyEnd = skipString(b, i)
    const key = stringValue(b, i, keyEnd)
    i = skipWs(b, keyEnd)
    if (b[i] !== 0x3a /* : */) throw new Malformed(`expected : at ${i}`)
    const start = skipWs(b, i + 1)
    const end = skipValue(b, start)
    visit(key, start, end)
    i = skipWs(b, end)
    if (b[i] === 0x2c) {
      i = skipWs(b, i + 1)
      continue
    }
    if (b[i] === 0x7d) return i + 1
    throw new Malformed(`expected , or } at ${i}`)
  }
  throw new Malformed("unterminated object")
}

/** Calls `visit` for each element of the array starting at `i` (its `[`); returns the index after its `]`. */
export const elements = (b: Uint8Array, i: number, visit: (start: number, end: number) => void): number => {
  if (b[i] !== 0x5b) throw new Malformed(`expected an array at ${i}`)
  i = skipWs(b, i + 1)
  if (b[i] === 0x5d) return i + 1
  while (i < b.length) {
    const end = skipValue(b, i)
    visit(i, end)
    i = skipWs(b, end)
    if (b[i] === 0x2c) {
      i = skipWs(b, i + 1)
      continue
    }
    if (b[i] === 0x5d) return i + 1
    throw new Malformed(`expected , or ] at ${i}`)
  }
  throw new Malformed("unterminated array")
}

/*
 * Validating scans: each accepts exactly what JSON.parse accepts of the text the bytes decode to
 * (bytes that are not valid UTF-8 may only be inside strings, where a lenient decoder makes them
 * U+FFFD) and throws {@link Malformed} on anything else. Used where a message must be known to be
 * JSON without parsing it. Each reads no byte at or past `end` (by default the array's length), so
 * a value can be checked in place among other bytes (a message in its socket read's buffer).
 */

/** Bytes that end a run of plain string content: control characters (invalid raw), `"` and `\`. */
const stringStop = new Uint8Array(256)
for (let c = 0; c < 0x20; c++) stringStop[c] = 1
stringStop[QUOTE] = 1
stringStop[BACKSLASH] = 1

/** The characters allowed after a backslash other than `u`: `" \ / b f n r t`. */
const simpleEscape = new Uint8Array(256)
for (const c of `"\\/bfnrt`) simpleEscape[c.charCodeAt(0)] = 1

const isHex = (c: number | undefined): boolean =>
  c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66))

/** `i` at an opening quote: the index after the closing quote, having checked every escape and that no control character is raw. */
export const checkString = (b: Uint8Array, i: number, end: number = b.length): number => {
  if (i >= end || b[i] !== QUOTE) throw new Malformed(`expected a string at ${i}`)
  let j = i + 1
  for (;;) {
    while (j < end && stringStop[b[j]!] === 0) j++
    if (j >= end) throw new Malformed("unterminated string")
    const c = b[j]!
    if (c === QUOTE) return j + 1
    if (c !== BACKSLASH) throw new Malformed(`control character in a string at ${j}`)
    // an escape and at least the closing quote after it
    if (j + 2 >= end) throw new Malformed("unterminated string")
    const e = b[j + 1]!
    if (e === 0x75 /* u */) {
      if (j + 6 >= end || !isHex(b[j + 2]) || !isHex(b[j + 3]) || !isHex(b[j + 4]) || !isHex(b[j + 5])) {
        throw new Malformed(`bad unicode escape at ${j}`)
      }
      j += 6
    } else if (simpleEscape[e] === 1) j += 2
    else throw new Malformed(`bad escape at ${j}`)
  }
}

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39

/** Whether the byte at `j` (before `end`) is a digit. */
const digitAt = (b: Uint8Array, j: number, end: number): boolean => j < end && b[j]! >= 0x30 && b[j]! <= 0x39

/** `i` at the start of a number: the index after it, having checked it is a JSON number. */
export const checkNumber = (b: Uint8Array, i: number, end: number = b.length): number => {
  let j = i
  if (j < end && b[j] === 0x2d /* - */) j++
  if (j < end && b[j] === 0x30) j++
  else if (digitAt(b, j, end)) while (digitAt(b, ++j, end));
  else throw new Malformed(`expected a number at ${i}`)
  if (j < end && b[j] === 0x2e /* . */) {
    if (!digitAt(b, ++j, end)) throw new Malformed(`expected a digit at ${j}`)
    while (digitAt(b, ++j, end));
  }
  if (j < end && (b[j] === 0x65 || b[j] === 0x45) /* e E */) {
    j++
    if (j < end && (b[j] === 0x2b || b[j] === 0x2d)) j++
    if (!digitAt(b, j, end)) throw new Malformed(`expected a digit at ${j}`)
    while (digitAt(b, ++j, end));
  }
  return j
}

const literalAt = (b: Uint8Array, i: number, literal: string, end: number): number => {
  if (i + literal.length > end) throw new Malformed(`expected ${literal} at ${i}`)
  for (let k = 0; k < literal.length; k++) {
    if (b[i + k] !== literal.charCodeAt(k)) throw new Malformed(`expected ${literal} at ${i}`)
  }
  return i + literal.length
}

/** What a value starting with a byte is (a value that is not one of these is rejected when checked). */
export const Kind = { Absent: 0, String: 1, Number: 2, True: 3, False: 4, Null: 5, Object: 6, Array: 7 } as const
export type Kind = (typeof Kind)[keyof typeof Kind]

/** The kind of the value starting at `i` (its first byte); Absent when no value starts there. */
export const kindAt = (b: Uint8Array, i: number, end: number = b.length): Kind => {
  const c = i < end ? b[i] : undefined
  switch (c) {
    case QUOTE: return Kind.String
    case 0x7b: return Kind.Object
    case 0x5b: return Kind.Array
    case 0x74: return Kind.True
    case 0x66: return Kind.False
    case 0x6e: return Kind.Null
    default: return c === 0x2d || isDigit(c) ? Kind.Number : Kind.Absent
  }
}

/** Open containers of {@link checkValue}: 1 object, 2 array (grown as needed, any depth). */
let openContainers = new Uint8Array(64)

/**
 * `i` at the start of any value: the index after it, having checked all of it. Nesting is followed
 * with a stack of its own, so any depth JSON.parse accepts is accepted.
 */
export const checkValue = (b: Uint8Array, i: number, end: number = b.length): number => {
  let depth = 0
  for (;;) {
    // a value starts at i
    const c = i < end ? b[i] : undefined
    if (c === QUOTE) i = checkString(b, i, end)
    else if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d
      const first = skipWs(b, i + 1, end)
      if (first < end && b[first] === close) i = first + 1
      else {
        if (depth === openContainers.length) {
          const grown = new Uint8Array(depth * 2)
          grown.set(openContainers)
          openContainers = grown
        }
        openContainers[depth++] = c === 0x7b ? 1 : 2
        i = c === 0x7b ? memberValue(b, first, end) : first
        continue
      }
    } else if (c === 0x74) i = literalAt(b, i, "true", end)
    else if (c === 0x66) i = literalAt(b, i, "false", end)
    else if (c === 0x6e) i = literalAt(b, i, "null", end)
    else i = checkNumber(b, i, end)
    // after a value: the next one in its container, or the container's end
    for (;;) {
      if (depth === 0) return i
      i = skipWs(b, i, end)
      const d = i < end ? b[i] : undefined
      const inObject = openContainers[depth - 1] === 1
      if (d === 0x2c /* , */) {
        i = skipWs(b, i + 1, end)
        if (inObject) i = memberValue(b, i, end)
        break
      }
      if (d === (inObject ? 0x7d : 0x5d)) {
        depth--
        i++
        continue
      }
      throw new Malformed(`expected , or ${inObject ? "}" : "]"} at ${i}`)
    }
  }
}

/** `i` at a member's key: the index of its value, past the key and the colon (checked). */
const memberValue = (b: Uint8Array, i: number, end: number): number => afterColon(b, checkString(b, i, end), end)

/** `i` just after a member's key: the index of its value, past the colon (checked). */
export const afterColon = (b: Uint8Array, i: number, end: number = b.length): number => {
  i = skipWs(b, i, end)
  if (i >= end || b[i] !== 0x3a /* : */) throw new Malformed(`expected : at ${i}`)
  return skipWs(b, i + 1, end)
}

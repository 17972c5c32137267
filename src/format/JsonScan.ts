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

/** The index of the first non-whitespace byte at or after `i`. */
export const skipWs = (b: Uint8Array, i: number): number => {
  while (i < b.length) {
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

/** An ASCII-only span as text, without a decoder (keys, numbers, literals). */
export const ascii = (b: Uint8Array, start: number, end: number): string => {
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

/**
 * Repairs the one thing wal2json (format-version 2) is known to write as invalid JSON: a column's
 * `"type"` whose name PostgreSQL's `format_type` quotes (a type in a schema named `"App"`, a type
 * named `we"ird`) is written as the name itself, unescaped (`"type":"App".role`). Only the `type`
 * of the objects in the message's top-level `columns`, `identity` and `pk` arrays is rewritten, as
 * a JSON string of the name as `format_type` shows it (`"type":"\"App\".role"`); everything else is
 * copied as it is. Called only after `JSON.parse` failed; `undefined` when the text cannot be
 * repaired this way (a name crafted to contain wal2json's own `,"value":` may be one).
 */

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/** The end of the JSON string starting at `at` (the index after its closing quote), or -1. */
const stringEnd = (text: string, at: number): number => {
  if (text[at] !== `"`) return -1
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x5c /* \ */) i++
    else if (c === 0x22 /* " */) return i + 1
  }
  return -1
}

/** The end of the JSON value starting at `at` (not checked in detail: the whole is parsed afterwards), or -1. */
const valueEnd = (text: string, at: number): number => {
  const c = text[at]
  if (c === `"`) return stringEnd(text, at)
  if (c === "{" || c === "[") {
    let depth = 0
    for (let i = at; i < text.length; i++) {
      const d = text[i]
      if (d === `"`) {
        const end = stringEnd(text, i)
        if (end < 0) return -1
        i = end - 1
      } else if (d === "{" || d === "[") depth++
      else if (d === "}" || d === "]") {
        depth--
        if (depth === 0) return i + 1
      }
    }
    return -1
  }
  let i = at
  while (i < text.length && text[i] !== "," && text[i] !== "}" && text[i] !== "]" && !isSpace(text.charCodeAt(i))) i++
  return i === at ? -1 : i
}

/**
 * The end of a type name as `format_type` writes it, starting at `at`: dot-separated identifiers,
 * each quoted (`"…"`, `""` for a quote, a backslash as itself) or plain, then an optional `(…)`
 * modifier and any `[]`, ending before a `,` or `}`. -1 when the text there is not one.
 */
const typeNameEnd = (text: string, at: number): number => {
  let i = at
  for (;;) {
    if (text[i] === `"`) {
      i++
      for (;;) {
        if (i >= text.length) return -1
        if (text[i] === `"`) {
          if (text[i + 1] === `"`) i += 2
          else break
        } else i++
      }
      i++
    } else {
      const start = i
      while (i < text.length && !`".,(){}[]`.includes(text[i]!)) i++
      if (i === start) return -1
    }
    if (text[i] !== ".") break
    i++
  }
  if (text[i] === "(") {
    const close = text.indexOf(")", i)
    if (close < 0) return -1
    i = close + 1
  }
  while (text.startsWith("[]", i)) i += 2
  return fits(text, i) ? i : -1
}

/** Whether a column's `type` can end at `at`: wal2json writes `,"value":` next, or ends a `pk` entry. */
const fits = (text: string, at: number): boolean =>
  text.startsWith(`,"value":`, at) || (text[at] === "}" && (text[at + 1] === "," || text[at + 1] === "]"))

/** A `type` value at `at`: its end and, when it had to be rewritten, its JSON string. */
const typeValue = (text: string, at: number): { readonly end: number; readonly json: string | undefined } | undefined => {
  // a proper JSON string (wal2json escapes most names, `"char"` is written quoted as it is)
  const asString = stringEnd(text, at)
  if (asString > 0 && fits(text, asString)) {
    try {
      JSON.parse(text.slice(at, asString))
      return { end: asString, json: undefined }
    } catch {
      // not valid as a JSON string: read as a type name below
    }
  }
  const end = typeNameEnd(text, at)
  return end < 0 ? undefined : { end, json: JSON.stringify(text.slice(at, end)) }
}

/** The repaired text of a wal2json v2 message whose `type`s were written unescaped, or `undefined`. */
export const repairTypes = (text: string): string | undefined => {
  let out = ""
  let copied = 0
  let i = 0
  const skipSpace = () => {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++
  }
  /** Reads `"key":` at i, returning the key. */
  const key = (): string | undefined => {
    skipSpace()
    const end = stringEnd(text, i)
    if (end < 0) return undefined
    let name: string
    try {
      name = JSON.parse(text.slice(i, end)) as string
    } catch {
      return undefined
    }
    i = end
    skipSpace()
    if (text[i] !== ":") return undefined
    i++
    skipSpace()
    return name
  }
  /** One object of a column list, its `type` repaired. */
  const column = (): boolean => {
    if (text[i] !== "{") return false
    i++
    skipSpace()
    if (text[i] === "}") {
      i++
      return true
    }
    for (;;) {
      const name = key()
      if (name === undefined) return false
      if (name === "type" && text[i] === `"`) {
        const value = typeValue(text, i)
        if (value === undefined) return false
        if (value.json !== undefined) {
          out += text.slice(copied, i) + value.json
          copied = value.end
        }
        i = value.end
      } else {
        const end = valueEnd(text, i)
        if (end < 0) return false
        i = end
      }
      skipSpace()
      if (text[i] === "}") {
        i++
        return true
      }
      if (text[i] !== ",") return false
      i++
    }
  }
  skipSpace()
  if (text[i] !== "{") return undefined
  i++
  skipSpace()
  if (text[i] !== "}") {
    for (;;) {
      const name = key()
      if (name === undefined) return undefined
      if ((name === "columns" || name === "identity" || name === "pk") && text[i] === "[") {
        i++
        skipSpace()
        if (text[i] !== "]") {
          for (;;) {
            skipSpace()
            if (!column()) return undefined
            skipSpace()
            if (text[i] === "]") break
            if (text[i] !== ",") return undefined
            i++
          }
        }
        i++
      } else {
        const end = valueEnd(text, i)
        if (end < 0) return undefined
        i = end
      }
      skipSpace()
      if (text[i] === "}") break
      if (text[i] !== ",") return undefined
      i++
    }
  }
  if (copied === 0) return undefined
  return out + text.slice(copied)
}

/**
 * Column values as Debezium's PostgreSQL connector writes them through Kafka Connect's JSON
 * converter (default settings, except numeric: `decimal.handling.mode=string`), from the values of
 * the wal2json shape (the server's text, numbers and booleans unquoted, bytea as hex). A converter
 * is chosen once per type name (cached); a value it cannot read is published as the server's text.
 *
 * - integers, floats, boolean: JSON numbers and booleans, as the server wrote them
 * - numeric: the exact decimal as a JSON string (Debezium's default would be base64 bytes)
 * - bytea: base64
 * - date: days since 1970-01-01; time / timestamp: microseconds (milliseconds for precision 0-3)
 *   since midnight / 1970-01-01; timetz / timestamptz: ISO-8601 text in UTC
 * - interval: microseconds, a month counted as 30.4375 days (Debezium's MicroDuration)
 * - arrays: JSON arrays of their elements, each converted like a value of its type
 * - everything else (text, json, jsonb, uuid, enums, …): the server's text, as a JSON string
 */

/** A value's JSON text from its JSON text in the wal2json shape; `undefined`: keep it as it is. */
export type Converter = (json: string) => string | undefined

/** The converter of types whose wal2json value is already what Debezium writes. */
export const keep: Converter = () => undefined

// ---------------------------------------------------------------------------------------------
// dates and times

/** Days from 1970-01-01 to a proleptic Gregorian date (year 0 = 1 BC); exact for every year. */
export const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const mp = (month + 9) % 12
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

const civilFromDays = (days: number): readonly [number, number, number] => {
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day]
}

const MICROS_PER_DAY = 86_400_000_000

/** `a * b + c` as exact integer text (values beyond 2^53 computed with BigInt). */
const exact = (days: number, perDay: number, within: number): string => {
  const value = days * perDay + within
  return Number.isSafeInteger(value) ? String(value) : (BigInt(days) * BigInt(perDay) + BigInt(within)).toString()
}

const dateText = /^(\d{4,})-(\d\d)-(\d\d)( BC)?$/
const timeText = /^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/
const zoneText = /^([+-])(\d\d)(?::?(\d\d))?(?::(\d\d))?$/
const timestampText = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-]\d\d(?::?\d\d)?(?::\d\d)?)?( BC)?$/

const unquote = (json: string): string | undefined =>
  json.length >= 2 && json.charCodeAt(0) === 0x22 && json.indexOf("\\") < 0 ? json.slice(1, -1) : undefined

const yearOf = (digits: string, bc: string | undefined): number => bc === undefined ? Number(digits) : 1 - Number(digits)

const microsOf = (fraction: string | undefined): number => fraction === undefined ? 0 : Number(fraction.padEnd(6, "0"))

const offsetSeconds = (zone: string): number | undefined => {
  const m = zoneText.exec(zone)
  if (m === null) return undefined
  const seconds = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0)
  return m[1] === "-" ? -seconds : seconds
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0")

/** `.123456` without trailing zeros, or "" for a whole second. */
const fractionText = (micros: number): string => micros === 0 ? "" : "." + pad(micros, 6).replace(/0+$/, "")

const date: Converter = (json) => {
  const m = dateText.exec(unquote(json) ?? "")
  if (m === null) return undefined
  return String(daysFromCivil(yearOf(m[1]!, m[4]), Number(m[2]), Number(m[3])))
}

/** Microseconds (or milliseconds) since midnight. */
const time = (millis: boolean): Converter => (json) => {
  const m = timeText.exec(unquote(json) ?? "")
  if (m === null) return undefined
  const micros = ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1_000_000 + microsOf(m[4])
  return String(millis ? Math.floor(micros / 1000) : micros)
}

/** `HH:MM:SS[.f]±zz` → the same instant of the day in UTC, `HH:MM:SS[.f]Z`. */
const timeWithZone: Converter = (json) => {
  const text = unquote(json) ?? ""
  const split = text.search(/[+-]/)
  if (split < 0) return undefined
  const m = timeText.exec(text.slice(0, split))
  const offset = offsetSeconds(text.slice(split))
  if (m === null || offset === undefined) return undefined
  const seconds = (((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3]) - offset) % 86_400 + 86_400) % 86_400
  return `"${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}${fractionText(microsOf(m[4]))}Z"`
}

/** Microseconds (or milliseconds) since 1970-01-01, the local time read as UTC. */
const timestamp = (millis: boolean): Converter => (json) => {
  const m = timestampText.exec(unquote(json) ?? "")
  if (m === null || m[8] !== undefined) return undefined
  const days = daysFromCivil(yearOf(m[1]!, m[9]), Number(m[2]), Number(m[3]))
  const micros = ((Number(m[4]) * 60 + Number(m[5])) * 60 + Number(m[6])) * 1_000_000 + microsOf(m[7])
  return millis ? exact(days, 86_400_000, Math.floor(micros / 1000)) : exact(days, MICROS_PER_DAY, micros)
}

/** The instant in UTC as ISO-8601: `2024-01-02T03:04:05.123456Z`. */
const timestampWithZone: Converter = (json) => {
  const m = timestampText.exec(unquote(json) ?? "")
  if (m === null || m[8] === undefined) return undefined
  const offset = offsetSeconds(m[8])
  if (offset === undefined) return undefined
  // UTC already (the usual server TimeZone): the text says it all
  if (offset === 0 && m[9] === undefined && m[1]!.length === 4) {
    return `"${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] === undefined ? "" : "." + m[7].replace(/0+$/, "")}Z"`
  }
  let days = daysFromCivil(yearOf(m[1]!, m[9]), Number(m[2]), Number(m[3]))
  let seconds = (Number(m[4]) * 60 + Number(m[5])) * 60 + Number(m[6]) - offset
  days += Math.floor(seconds / 86_400)
  seconds = ((seconds % 86_400) + 86_400) % 86_400
  const [year, month, day] = civilFromDays(days)
  if (year < 0 || year > 9999) return undefined
  return `"${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:` +
    `${pad(seconds % 60)}${fractionText(microsOf(m[7]))}Z"`
}

const intervalPart = /^([+-]?\d+) (year|years|mon|mons|day|days)$/
const intervalTime = /^([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/
const DAYS_PER_MONTH = 365.25 / 12

/** PostgreSQL's `postgres` IntervalStyle → microseconds, as Debezium's MicroDuration counts them. */
const interval: Converter = (json) => {
  const text = unquote(json)
  if (text === undefined) return undefined
  const words = text.split(" ")
  let months = 0
  let days = 0
  let micros = 0
  for (let i = 0; i < words.length; i++) {
    const time = intervalTime.exec(words[i]!)
    if (time !== null) {
      const value = ((Number(time[2]) * 60 + Number(time[3])) * 60 + Number(time[4])) * 1_000_000 + microsOf(time[5])
      micros += time[1] === "-" ? -value : value
      continue
    }
    const part = intervalPart.exec(`${words[i]} ${words[i + 1] ?? ""}`)
    if (part === null) return undefined
    i++
    const n = Number(part[1])
    if (part[2]!.startsWith("year")) months += 12 * n
    else if (part[2]!.startsWith("mon")) months += n
    else days += n
  }
  return String(Math.trunc((months * DAYS_PER_MONTH + days) * MICROS_PER_DAY + micros))
}

// ---------------------------------------------------------------------------------------------
// other scalars

const numericAsString: Converter = (json) => (json === "null" || json.charCodeAt(0) === 0x22 ? undefined : `"${json}"`)

const bytea: Converter = (json) => {
  const hex = unquote(json)
  if (hex === undefined || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined
  return `"${Buffer.from(hex, "hex").toString("base64")}"`
}

// ---------------------------------------------------------------------------------------------
// arrays

/** A PostgreSQL array literal's elements: text, `null` for NULL, nested arrays. */
type Element = string | null | Array<Element>

/** Parses `{a,"b c",NULL,{1,2}}` (after an optional `[1:2]=` bounds decoration); `undefined` if not one. */
export const parseArray = (text: string): Array<Element> | undefined => {
  let i = text.startsWith("[") ? text.indexOf("=") + 1 : 0
  if (text[i] !== "{") return undefined
  const parseLevel = (): Array<Element> | undefined => {
    i++ // {
    const items: Array<Element> = []
    if (text[i] === "}") {
      i++
      return items
    }
    while (i < text.length) {
      let item: Element
      if (text[i] === "{") {
        const nested = parseLevel()
        if (nested === undefined) return undefined
        item = nested
      } else if (text[i] === "\"") {
        i++
        let value = ""
        while (i < text.length && text[i] !== "\"") {
          if (text[i] === "\\") i++
          value += text[i]
          i++
        }
        if (i >= text.length) return undefined
        i++
        item = value
      } else {
        const start = i
        while (i < text.length && text[i] !== "," && text[i] !== "}") i++
        const raw = text.slice(start, i).trim()
        item = raw === "NULL" ? null : raw
      }
      items.push(item)
      if (text[i] === ",") {
        i++
        continue
      }
      if (text[i] === "}") {
        i++
        return items
      }
      return undefined
    }
    return undefined
  }
  const parsed = parseLevel()
  return parsed !== undefined && i === text.length ? parsed : undefined
}

/** An element's text as the JSON the wal2json shape would give a scalar of its type. */
type ElementJson = (text: string) => string

const numberElement: ElementJson = (text) => (text === "NaN" || text.endsWith("Infinity") ? "null" : text)
const booleanElement: ElementJson = (text) => (text === "t" ? "true" : "false")
const byteaElement: ElementJson = (text) => JSON.stringify(text.startsWith("\\x") ? text.slice(2) : text)
const stringElement: ElementJson = (text) => JSON.stringify(text)

const array = (elementJson: ElementJson, element: Converter): Converter => (json) => {
  if (json === "null" || json.charCodeAt(0) !== 0x22) return undefined
  const items = parseArray(JSON.parse(json) as string)
  if (items === undefined) return undefined
  const render = (items: ReadonlyArray<Element>): string =>
    "[" + items.map((item) => {
      if (item === null) return "null"
      if (Array.isArray(item)) return render(item)
      const scalar = elementJson(item)
      return element(scalar) ?? scalar
    }).join(",") + "]"
  return render(items)
}

// ---------------------------------------------------------------------------------------------
// by type name

/** `timestamp(3) without time zone` → 3; no typmod → 6. */
const precisionOf = (type: string): number => {
  const m = /\((\d+)\)/.exec(type)
  return m === null ? 6 : Number(m[1])
}

const numberTypes = new Set(["smallint", "integer", "bigint", "oid", "real", "double precision"])

/** The scalar converter and its array elements' JSON, for a type name without `[]`. */
const scalar = (type: string): readonly [Converter, ElementJson] => {
  const base = type.replace(/\([^)]*\)/, "")
  if (numberTypes.has(base)) return [keep, numberElement]
  switch (base) {
    case "numeric":
      return [numericAsString, numberElement]
    case "boolean":
      return [keep, booleanElement]
    case "bytea":
      return [bytea, byteaElement]
    case "date":
      return [date, stringElement]
    case "time without time zone":
      return [time(precisionOf(type) <= 3), stringElement]
    case "time with time zone":
      return [timeWithZone, stringElement]
    case "timestamp without time zone":
      return [timestamp(precisionOf(type) <= 3), stringElement]
    case "timestamp with time zone":
      return [timestampWithZone, stringElement]
    default:
      // interval with a field restriction (`interval day to second`) prints the same text
      return base.startsWith("interval") ? [interval, stringElement] : [keep, stringElement]
  }
}

/**
 * The converters by type name, made once per name and kept by each formatter (not by the module):
 * `converterFor` for a column type as wal2json names it (`integer`, `numeric(10,2)`, `text[]`, …),
 * `domainConverterFor` for a domain column given its base type's name (wal2json writes a domain's
 * value as a string whatever its base type, so numbers and booleans are unquoted first). Each map
 * is cleared past 10,000 names.
 */
export interface Converters {
  readonly converterFor: (type: string) => Converter
  readonly domainConverterFor: (base: string) => Converter
}

/** A new {@link Converters} with empty caches. */
export const makeConverters = (): Converters => {
  const converters = new Map<string, Converter>()
  const domainConverters = new Map<string, Converter>()
  const converterFor = (type: string): Converter => {
    let converter = converters.get(type)
    if (converter === undefined) {
      if (type.endsWith("[]")) {
        const [element, elementJson] = scalar(type.slice(0, -2))
        converter = array(elementJson, element)
      } else converter = scalar(type)[0]
      if (converters.size > 10_000) converters.clear()
      converters.set(type, converter)
    }
    return converter
  }
  const domainConverterFor = (base: string): Converter => {
    let converter = domainConverters.get(base)
    if (converter === undefined) {
      const inner = converterFor(base)
      const plain = base.replace(/\([^)]*\)/, "")
      const unquote: (json: string) => string = numberTypes.has(plain) || plain === "numeric"
        ? (json) => (/^"-?\d+(\.\d+)?(e[+-]?\d+)?"$/i.test(json) ? json.slice(1, -1) : json)
        : plain === "boolean"
        ? (json) => (json === `"t"` ? "true" : json === `"f"` ? "false" : json)
        : (json) => json
      converter = (json) => {
        const value = unquote(json)
        return inner(value) ?? (value === json ? undefined : value)
      }
      if (domainConverters.size > 10_000) domainConverters.clear()
      domainConverters.set(base, converter)
    }
    return converter
  }
  return { converterFor, domainConverterFor }
}

/**
 * Whether a type's values are JSON numbers or booleans: one written as a string (a domain over
 * it, which both plugins write as text) is converted with {@link domainConverterFor}.
 */
export const isUnquotedScalar = (type: string): boolean => {
  const plain = type.replace(/\([^)]*\)/, "")
  return numberTypes.has(plain) || plain === "boolean"
}

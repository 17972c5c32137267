/**
 * The service's loggers: one JSON object per line on stdout (LOG_FORMAT=json, the default) or a
 * readable line for people (LOG_FORMAT=plain), at LOG_LEVEL and above.
 *
 * A record is `timestamp`, `level`, `message` (the event name) and the fields flattened beside
 * them: log annotations, plus any plain objects logged after the message
 * (`Effect.logInfo("slot_created", { slot })`). bigints print as decimal strings, errors as
 * `{ tag, message }`, bytes as their length.
 *
 * Secrets never print: a field whose key looks like a password, secret, token or key prints as
 * `<redacted>`, `Redacted` values print as `<redacted>`, credentials inside connection URLs are
 * masked, and the values of any secrets handed to the layer are masked wherever they appear.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import type * as LogLevel from "effect/LogLevel"
import type { LogFormat } from "../config/ServiceConfig.ts"
import { ServiceConfig } from "../config/ServiceConfig.ts"

export const REDACTED = "<redacted>"

/** One log event after normalization and redaction. */
export interface LogRecord {
  readonly timestamp: string
  readonly level: string
  readonly message: string
  readonly fields: Readonly<Record<string, unknown>>
  readonly spans: Readonly<Record<string, number>>
  readonly cause: string | undefined
}

const secretKey = /pass(word|wd|phrase)?$|pwd$|secret|token|credential|api[-_]?key|private[-_]?key|authorization|cookie/i

/** Whether a field of this name holds something that must never be printed. */
export const isSecretKey = (key: string): boolean => secretKey.test(key)

const urlCredentials = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/?#\s]*@/gi

/** Masks the password part of `scheme://user:password@host` anywhere in a text. */
export const maskUrlCredentials = (text: string): string => text.replace(urlCredentials, `$1:${REDACTED}@`)

const MAX_DEPTH = 6

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/** A JSON-safe, redacted copy of a logged value. */
export const normalize = (value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown => {
  switch (typeof value) {
    case "string":
      return maskUrlCredentials(value)
    case "number":
      return Number.isFinite(value) ? value : String(value)
    case "boolean":
      return value
    case "bigint":
      return value.toString()
    case "undefined":
      return undefined
    case "symbol":
      return value.toString()
    case "function":
      return `<function ${value.name}>`
  }
  if (value === null) return null
  if (Redacted.isRedacted(value)) return REDACTED
  const object = value as object
  if (seen.has(object)) return "<circular>"
  if (depth >= MAX_DEPTH) return "<nested>"
  if (object instanceof Date) return object.toISOString()
  if (object instanceof Uint8Array) return `<${object.byteLength} bytes>`
  seen.add(object)
  try {
    if (object instanceof Error) {
      const tag = "_tag" in object && typeof object._tag === "string" ? object._tag : object.name
      return { tag, message: maskUrlCredentials(object.message) }
    }
    if (Array.isArray(object)) return object.map((item) => normalize(item, depth + 1, seen))
    if (object instanceof Map) return normalizeEntries(Array.from(object, ([k, v]) => [String(k), v]), depth, seen)
    if (object instanceof Set) return Array.from(object, (item) => normalize(item, depth + 1, seen))
    if ("toJSON" in object && typeof object.toJSON === "function") return normalize(object.toJSON(), depth + 1, seen)
    return normalizeEntries(Object.entries(object), depth, seen)
  } finally {
    seen.delete(object)
  }
}

const normalizeEntries = (
  entries: ReadonlyArray<readonly [string, unknown]>,
  depth: number,
  seen: WeakSet<object>
): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, v] of entries) out[key] = isSecretKey(key) ? REDACTED : normalize(v, depth + 1, seen)
  return out
}

const reserved = new Set(["timestamp", "level", "message", "spans", "cause"])

const addField = (fields: Record<string, unknown>, key: string, value: unknown): void => {
  const name = reserved.has(key) ? `field_${key}` : key
  fields[name] = isSecretKey(key) ? REDACTED : normalize(value)
}

/** Turns what a logger receives into a {@link LogRecord}. */
export const toRecord = (options: Logger.Options<unknown>): LogRecord => {
  const parts = Array.isArray(options.message) ? options.message : [options.message]
  const fields: Record<string, unknown> = {}
  const annotations = options.fiber.getRef(References.CurrentLogAnnotations)
  for (const key of Object.keys(annotations)) addField(fields, key, annotations[key])

  let message = ""
  const details: Array<unknown> = []
  parts.forEach((part, i) => {
    if (i === 0 && typeof part === "string") message = maskUrlCredentials(part)
    else if (isPlainObject(part)) for (const key of Object.keys(part)) addField(fields, key, part[key])
    else details.push(normalize(part))
  })
  if (details.length > 0) fields.details = details

  const spans: Record<string, number> = {}
  const now = options.date.getTime()
  for (const [label, start] of options.fiber.getRef(References.CurrentLogSpans)) spans[label] = now - start

  return {
    timestamp: options.date.toISOString(),
    level: options.logLevel.toUpperCase(),
    message,
    fields,
    spans,
    cause: options.cause.reasons.length > 0 ? maskUrlCredentials(Cause.pretty(options.cause)) : undefined
  }
}

const stringifyBigint = (_key: string, v: unknown): unknown => typeof v === "bigint" ? v.toString() : v

/** One line of JSON. */
export const renderJson = (record: LogRecord): string => {
  const out: Record<string, unknown> = { timestamp: record.timestamp, level: record.level, message: record.message, ...record.fields }
  if (Object.keys(record.spans).length > 0) out.spans = record.spans
  if (record.cause !== undefined) out.cause = record.cause
  return JSON.stringify(out, stringifyBigint)
}

const plainValue = (v: unknown): string => {
  const text = typeof v === "string" ? v : JSON.stringify(v, stringifyBigint) ?? "undefined"
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)
}

/** `timestamp LEVEL message key=value …`, then the cause indented below, for people. */
export const renderPlain = (record: LogRecord): string => {
  const pairs = Object.entries(record.fields).map(([k, v]) => `${k}=${plainValue(v)}`)
  const spans = Object.entries(record.spans).map(([k, v]) => `${k}=${v}ms`)
  const head = [record.timestamp, record.level.padEnd(5), record.message, ...pairs, ...spans].join(" ")
  return record.cause === undefined ? head : `${head}\n${record.cause.replace(/^/gm, "    ")}`
}

/** Replaces every occurrence of each secret's value. */
const masker = (secrets: ReadonlyArray<Redacted.Redacted<string>>): (line: string) => string => {
  const values = secrets.map((s) => Redacted.value(s)).filter((v) => v.length > 0)
  if (values.length === 0) return (line) => line
  return (line) => values.reduce((acc, v) => acc.includes(v) ? acc.split(v).join(REDACTED) : acc, line)
}

/** Also masks a secret as it appears inside a JSON string (quotes and backslashes escaped). */
const jsonEscaped = (secret: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(JSON.stringify(Redacted.value(secret)).slice(1, -1))

export interface LoggingOptions {
  readonly format: LogFormat
  readonly level: LogLevel.LogLevel
  /** Values that must never be printed, e.g. PGPASSWORD. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>>
  /** Where lines go; stdout by default. */
  readonly write?: (line: string) => void
}

const writeStdout = (line: string): void => {
  process.stdout.write(line + "\n")
}

/** A logger that writes each event as one line in `format`. */
export const make = (options: Omit<LoggingOptions, "level">): Logger.Logger<unknown, void> => {
  const render = options.format === "json" ? renderJson : renderPlain
  const secrets = options.secrets ?? []
  const mask = masker([...secrets, ...secrets.map(jsonEscaped)])
  const write = options.write ?? writeStdout
  return Logger.make((logOptions) => write(mask(render(toRecord(logOptions)))))
}

/** Replaces the default loggers and sets the minimum level. */
export const layer = (options: LoggingOptions): Layer.Layer<never> =>
  Layer.mergeAll(
    Logger.layer([make(options)]),
    Layer.succeed(References.MinimumLogLevel, options.level)
  )

/** LOG_FORMAT and LOG_LEVEL from the service configuration; PGPASSWORD is masked wherever it appears. */
export const layerConfig: Layer.Layer<never, never, ServiceConfig> = Layer.unwrap(
  Effect.map(Effect.service(ServiceConfig), (config) =>
    layer({
      format: config.observability.logFormat,
      level: config.observability.logLevel,
      secrets: config.pg.password === undefined ? [] : [config.pg.password]
    }))
)

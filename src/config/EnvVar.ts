/**
 * Environment variables read from the installed `ConfigProvider` (the process environment unless
 * a test installs another), each validated on its own so that a bad configuration is reported
 * whole: every bad variable, named, with the reason, in one message.
 *
 * A field is an effect that never fails: it yields a `Result` holding either the parsed value or
 * the problem with that variable. `collect` turns a record of fields into the parsed record or an
 * {@link InvalidConfig} listing every problem. Secrets are read as `Redacted` and never echoed.
 *
 * Each variable is one string parsed by its own function, so fields read the provider's raw value
 * instead of going through `effect/Config`: that module loads Effect's Schema (about 60 modules,
 * ~10 ms of every start) for nothing the service needs.
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"

/** One bad variable and why. */
export interface ConfigProblem {
  readonly variable: string
  readonly reason: string
}

/** Configuration that cannot be used; fatal (exit code 2), reported once with every problem. */
export class InvalidConfig extends Data.TaggedError("InvalidConfig")<{
  readonly problems: ReadonlyArray<ConfigProblem>
}> {
  readonly reason = "Invalid"
  readonly retriable = false
  override get message(): string {
    return "invalid configuration: " + this.problems.map((p) => `${p.variable}: ${p.reason}`).join("; ")
  }
}

/** A config field: a variable's parsed value, or the problem with it. */
export type Field<A> = Effect.Effect<Result.Result<A, ConfigProblem>>

type Parse<A> = (raw: string) => Result.Result<A, string>

/**
 * The variable's value as the provider has it, `undefined` when unset; a provider that cannot be
 * read is the variable's problem.
 */
const raw = (name: string): Effect.Effect<Result.Result<string | undefined, ConfigProblem>> =>
  Effect.service(ConfigProvider.ConfigProvider).pipe(
    Effect.flatMap((provider) => provider.load([name])),
    // a record or array node (other variables extend this name: `NAME_...`) may carry the value too
    Effect.map((node) => Result.succeed(node?.value)),
    Effect.catch((error) => Effect.succeed(Result.fail({ variable: name, reason: error.message })))
  )

const field = <A>(name: string, parse: Parse<A>, fallback: { readonly value: A } | "required"): Field<A> =>
  Effect.map(raw(name), (read): Result.Result<A, ConfigProblem> => {
    if (Result.isFailure(read)) return Result.fail(read.failure)
    const value = read.success?.trim()
    if (value === undefined || value.length === 0) {
      return fallback === "required"
        ? Result.fail({ variable: name, reason: "is required but not set" })
        : Result.succeed(fallback.value)
    }
    return Result.mapError(parse(value), (reason) => ({ variable: name, reason }))
  })

/** A required variable. */
export const required = <A>(name: string, parse: Parse<A>): Field<A> => field(name, parse, "required")

/** A variable with a default used when it is unset or empty. */
export const withDefault = <A>(name: string, parse: Parse<A>, fallback: A): Field<A> =>
  field(name, parse, { value: fallback })

/** An optional variable: `undefined` when unset or empty. */
export const optional = <A>(name: string, parse: Parse<A>): Field<A | undefined> =>
  field<A | undefined>(name, parse, { value: undefined })

/** A secret: never part of any message, wrapped in `Redacted`. */
export const secret = (name: string): Field<Redacted.Redacted<string> | undefined> =>
  Effect.map(raw(name), (read) =>
    Result.map(read, (value) => value === undefined || value.length === 0 ? undefined : Redacted.make(value)))

// ---------------------------------------------------------------------------------------------
// parsers

export const string: Parse<string> = (raw) => Result.succeed(raw)

export const integer = (options: { readonly min?: number; readonly max?: number } = {}): Parse<number> => (raw) => {
  if (!/^-?\d+$/.test(raw)) return Result.fail(`must be an integer, got ${JSON.stringify(raw)}`)
  const n = Number(raw)
  if (!Number.isSafeInteger(n)) return Result.fail(`must be a safe integer, got ${raw}`)
  if (options.min !== undefined && n < options.min) return Result.fail(`must be >= ${options.min}, got ${n}`)
  if (options.max !== undefined && n > options.max) return Result.fail(`must be <= ${options.max}, got ${n}`)
  return Result.succeed(n)
}

export const port: Parse<number> = integer({ min: 1, max: 65535 })

export const bigint: Parse<bigint> = (raw) =>
  /^-?\d+$/.test(raw) ? Result.succeed(BigInt(raw)) : Result.fail(`must be an integer, got ${JSON.stringify(raw)}`)

export const boolean: Parse<boolean> = (raw) => {
  const v = raw.toLowerCase()
  if (["true", "1", "yes", "on"].includes(v)) return Result.succeed(true)
  if (["false", "0", "no", "off"].includes(v)) return Result.succeed(false)
  return Result.fail(`must be true or false, got ${JSON.stringify(raw)}`)
}

/** One of a fixed set of words, compared case-insensitively; yields the canonical spelling. */
export const oneOf = <const L extends string>(choices: ReadonlyArray<L>): Parse<L> => (raw) => {
  const found = choices.find((c) => c.toLowerCase() === raw.toLowerCase())
  return found === undefined
    ? Result.fail(`must be one of ${choices.join(" | ")}, got ${JSON.stringify(raw)}`)
    : Result.succeed(found)
}

/** A comma-separated list of non-empty items. */
export const list: Parse<ReadonlyArray<string>> = (raw) =>
  Result.succeed(raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0))

// ---------------------------------------------------------------------------------------------
// collecting

type FieldsOf<A> = { readonly [K in keyof A]: Field<A[K]> }

/** Reads every field; fails with one {@link InvalidConfig} naming every bad variable. */
export const collect = <A>(fields: FieldsOf<A>): Effect.Effect<A, InvalidConfig> =>
  Effect.gen(function*() {
    const out: Record<string, unknown> = {}
    const problems: Array<ConfigProblem> = []
    for (const [key, config] of Object.entries(fields) as Array<[string, Field<unknown>]>) {
      const result = yield* config
      if (Result.isSuccess(result)) out[key] = result.success
      else problems.push(result.failure)
    }
    if (problems.length > 0) return yield* new InvalidConfig({ problems })
    return out as A
  })

/** Adds a cross-field problem check to an already-collected config. */
export const check = <A>(
  validate: (a: A) => ReadonlyArray<ConfigProblem>
) =>
<E>(self: Effect.Effect<A, E>): Effect.Effect<A, E | InvalidConfig> =>
  Effect.flatMap(self, (a) => {
    const problems = validate(a)
    return problems.length === 0 ? Effect.succeed(a) : Effect.fail(new InvalidConfig({ problems }))
  })

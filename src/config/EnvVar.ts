/**
 * Environment variables read through Effect `Config`, each validated on its own so that a bad
 * configuration is reported whole: every bad variable, named, with the reason, in one message.
 *
 * A field is a `Config` that never fails: it yields a `Result` holding either the parsed value or
 * the problem with that variable. `collect` turns a record of fields into the parsed record or an
 * {@link InvalidConfig} listing every problem. Secrets are read as `Redacted` and never echoed.
 */
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
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
export type Field<A> = Config.Config<Result.Result<A, ConfigProblem>>

type Parse<A> = (raw: string) => Result.Result<A, string>

const field = <A>(name: string, parse: Parse<A>, fallback: Option.Option<A> | "required"): Field<A> =>
  Config.String(name).pipe(
    Config.option,
    Config.map((raw): Result.Result<A, ConfigProblem> => {
      const value = Option.map(raw, (s) => s.trim()).pipe(Option.filter((s) => s.length > 0))
      if (Option.isNone(value)) {
        if (fallback === "required") return Result.fail({ variable: name, reason: "is required but not set" })
        return Option.isSome(fallback)
          ? Result.succeed(fallback.value)
          : Result.fail({ variable: name, reason: "is required but not set" })
      }
      return Result.mapError(parse(value.value), (reason) => ({ variable: name, reason }))
    })
  )

/** A required variable. */
export const required = <A>(name: string, parse: Parse<A>): Field<A> => field(name, parse, "required")

/** A variable with a default used when it is unset or empty. */
export const withDefault = <A>(name: string, parse: Parse<A>, fallback: A): Field<A> =>
  field(name, parse, Option.some(fallback))

/** An optional variable: `undefined` when unset or empty. */
export const optional = <A>(name: string, parse: Parse<A>): Field<A | undefined> =>
  field<A | undefined>(name, parse, Option.some(undefined))

/** A secret: never part of any message, wrapped in `Redacted`. */
export const secret = (name: string): Field<Redacted.Redacted<string> | undefined> =>
  Config.Redacted(name).pipe(
    Config.option,
    Config.map((value) =>
      Result.succeed(Option.getOrUndefined(Option.filter(value, (r) => Redacted.value(r).length > 0)))
    )
  )

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
      const result = yield* Effect.catch(
        config,
        (error) => Effect.succeed(Result.fail<ConfigProblem>({ variable: key, reason: error.message }))
      )
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

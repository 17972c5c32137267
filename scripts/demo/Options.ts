/** `npm run demo` arguments (effect/cli flags): how long to write (until Ctrl-C by default) and how fast. */
import * as Flag from "effect/cli/Flag"
import * as Option from "effect/Option"
import { type Parsed, parse } from "../../support/Cli.ts"

export interface Options {
  /** Write for this long, then wait for every change to arrive and exit; undefined: until Ctrl-C. */
  readonly seconds: number | undefined
  /** Changes per second. */
  readonly rate: number
}

const positive = (name: string) => Flag.filter((n: number) => n > 0, (n) => `--${name} must be positive, got ${n}`)

export const flags = {
  seconds: Flag.Int("seconds").pipe(positive("seconds"), Flag.optional,
    Flag.withDescription("Write for this long, wait (30 s at most) for every change to arrive, print a summary; exit 0 only if all arrived")),
  rate: Flag.Int("rate").pipe(positive("rate"), Flag.withDefault(100), Flag.withDescription("Changes per second"))
} as const

export const parseOptions = async (args: ReadonlyArray<string>): Promise<Parsed<Options>> => {
  const parsed = await parse("demo", "PostgreSQL → the service → kinesalite, with a workload and the stream read back", flags, args)
  return parsed._tag === "Exit"
    ? parsed
    : { _tag: "Parsed", value: { seconds: Option.getOrUndefined(parsed.value.seconds), rate: parsed.value.rate } }
}

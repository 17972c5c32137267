/**
 * `npm run bench` arguments (effect/cli flags) and the settings they give: a full run by default,
 * `--quick` for a small one; every count positive; where the results go.
 */
import * as Path from "node:path"
import * as Flag from "effect/cli/Flag"
import * as Option from "effect/Option"
import { type Parsed, parse } from "../support/Cli.ts"
import { repoRoot } from "../support/Paths.ts"
import type { Settings } from "./Bench.ts"

const MiB = 1024 * 1024

/** The scenarios of bench/scenarios/, as `--only` names them (bench/run.ts maps each to its module). */
export const scenarioNames = ["drains", "memory", "huge-row", "stuck-key", "latency", "backfill", "scaling"] as const
export type ScenarioName = (typeof scenarioNames)[number]

const positive = (name: string) => Flag.filter((n: number) => n > 0, (n) => `--${name} must be positive, got ${n}`)

export const flags = {
  quick: Flag.Boolean("quick").pipe(Flag.withDefault(false),
    Flag.withDescription("A small run (20,000 changes, 5 s of load) that checks everything works")),
  changes: Flag.Int("changes").pipe(positive("changes"), Flag.optional,
    Flag.withDescription("Changes in the backlog (default 500,000; quick 20,000)")),
  latencyRate: Flag.Int("latency-rate").pipe(positive("latency-rate"), Flag.optional,
    Flag.withDescription("Transactions per second of the latency load (default 5,000; quick 1,000)")),
  latencySeconds: Flag.Int("latency-seconds").pipe(positive("latency-seconds"), Flag.optional,
    Flag.withDescription("Seconds of the latency load (default 30; quick 5)")),
  stuckSeconds: Flag.Int("stuck-seconds").pipe(positive("stuck-seconds"), Flag.optional,
    Flag.withDescription("Seconds the stuck-key scenario fails one key under load (default 300; quick 10)")),
  scaling: Flag.Boolean("scaling").pipe(Flag.withDefault(false),
    Flag.withDescription("Also measure the scaling table: KINESIS_MAX_INFLIGHT × endpoint latency (0, 20, 100 ms), and rows with 16- and 8,000-character payloads (long: use --changes to shorten)")),
  only: Flag.Literals("only", scenarioNames).pipe(Flag.atLeast(0),
    Flag.withDescription("Run only these scenarios (repeat the flag for several); the ceilings always run")),
  baseline: Flag.Directory("baseline", { mustExist: true }).pipe(Flag.optional,
    Flag.withDescription("A checkout of the baseline commit (bench/BASELINE.md), with node_modules: its 20 ms drains run beside this one's, and CPU per change is compared with them too")),
  results: Flag.String("results").pipe(Flag.optional,
    Flag.withDescription("Where to write the JSON results (default bench/results/latest.json for a full run; none for a quick one)"))
} as const

export interface Arguments {
  readonly settings: Settings
  /** undefined: print only (a quick run without --results). */
  readonly resultsFile: string | undefined
}

export const parseArguments = async (args: ReadonlyArray<string>): Promise<Parsed<Arguments>> => {
  const parsed = await parse("bench", "Measures the service against what PostgreSQL itself streams, on this machine", flags, args)
  if (parsed._tag === "Exit") return parsed
  const { quick, changes, latencyRate, latencySeconds, stuckSeconds, scaling, only, baseline, results } = parsed.value
  return {
    _tag: "Parsed",
    value: {
      settings: {
        quick,
        // full: bodies of at least 4x the default QUEUE_MAX_BYTES, so the default drains measure memory too
        changes: Option.getOrElse(changes, () => (quick ? 20_000 : 500_000)),
        latencyRate: Option.getOrElse(latencyRate, () => (quick ? 1_000 : 5_000)),
        latencySeconds: Option.getOrElse(latencySeconds, () => (quick ? 5 : 30)),
        stuckSeconds: Option.getOrElse(stuckSeconds, () => (quick ? 10 : 300)),
        memoryQueueBytes: quick ? 2 * MiB : 16 * MiB,
        baselineCheckout: Option.getOrUndefined(Option.map(baseline, (dir) => Path.resolve(dir))),
        scaling: scaling || only.includes("scaling"),
        only
      },
      resultsFile: Option.match(results, {
        onNone: () => (quick ? undefined : Path.join(repoRoot, "bench", "results", "latest.json")),
        onSome: (file) => Path.resolve(file)
      })
    }
  }
}

/**
 * The benchmark (`npm run bench`, `npm run bench -- --quick`): a throwaway PostgreSQL, one backlog
 * in a slot per measurement, the pg_recvlogical ceiling of each plugin (wal2json, pgoutput) on a
 * twin slot, then the scenarios of bench/scenarios/ in turn: drains of both plugins into the bench
 * endpoint (0 and 20 ms per request) and kinesalite, memory with a small queue, commit → ack latency
 * under a steady load. Prints a markdown report (rates, CPU per change, peak RSS, targets met or
 * missed) and writes the results to one JSON file: bench/results/latest.json for a full run (a quick
 * run writes only with --results). Every figure is measured; when the service does not stream, the
 * run fails with the service's output instead of reporting anything.
 */
import * as Os from "node:os"
import * as Path from "node:path"
import * as Flag from "effect/cli/Flag"
import * as Option from "effect/Option"
import { parseArgs } from "../support/Cli.ts"
import { repoRoot } from "../support/Paths.ts"
import { type Bench, cleanUp, log, machine, type Scenario, setUp, type Settings } from "./Bench.ts"
import { markdown, writeResults } from "./Report.ts"
import type { BenchResults, DrainFigures, LatencyFigures, MemoryFigures } from "./Report.ts"
import * as Drains from "./scenarios/Drains.ts"
import * as Latency from "./scenarios/Latency.ts"
import * as Memory from "./scenarios/Memory.ts"
import { checkTargets } from "./Targets.ts"

/** Run in this order; each adds rows to the results. */
const scenarios: ReadonlyArray<Scenario> = [Drains.scenario, Memory.scenario, Latency.scenario]

const MiB = 1024 * 1024

const args = await parseArgs("bench", "Measures the service against what PostgreSQL itself streams, on this machine", {
  quick: Flag.Boolean("quick").pipe(Flag.withDescription("A small run (20,000 changes, 5 s of load) that checks everything works")),
  changes: Flag.Int("changes").pipe(Flag.optional, Flag.withDescription("Changes in the backlog (default 500,000; quick 20,000)")),
  latencyRate: Flag.Int("latency-rate").pipe(Flag.optional, Flag.withDescription("Transactions per second of the latency load (default 5,000; quick 1,000)")),
  latencySeconds: Flag.Int("latency-seconds").pipe(Flag.optional, Flag.withDescription("Seconds of the latency load (default 30; quick 5)")),
  results: Flag.String("results").pipe(Flag.optional, Flag.withDescription("Where to write the JSON results (default bench/results/latest.json for a full run; none for a quick one)"))
})

const positive = (name: string, value: Option.Option<number>, fallback: number): number => {
  const n = Option.getOrElse(value, () => fallback)
  if (n <= 0) {
    process.stderr.write(`bench: --${name} must be positive, got ${n}\n`)
    process.exit(2)
  }
  return n
}

const settings: Settings = {
  quick: args.quick,
  // full: bodies of at least 4x the default QUEUE_MAX_BYTES, so the default drains measure memory too
  changes: positive("changes", args.changes, args.quick ? 20_000 : 500_000),
  latencyRate: positive("latency-rate", args.latencyRate, args.quick ? 1_000 : 5_000),
  latencySeconds: positive("latency-seconds", args.latencySeconds, args.quick ? 5 : 30),
  memoryQueueBytes: args.quick ? 2 * MiB : 16 * MiB
}
const resultsFile = Option.match(args.results, {
  onNone: () => (args.quick ? undefined : Path.join(repoRoot, "bench", "results", "latest.json")),
  onSome: (file) => Path.resolve(file)
})

const main = async (): Promise<void> => {
  const startedAt = new Date().toISOString()
  const loadAverageAtStart = Os.loadavg()[0] ?? 0
  const bench: Bench = await setUp(settings, scenarios)
  const rows = { drains: [] as Array<DrainFigures>, latency: [] as Array<LatencyFigures>, memory: [] as Array<MemoryFigures> }
  for (const scenario of scenarios) {
    const added = await scenario.run(bench)
    rows.drains.push(...(added.drains ?? []))
    rows.latency.push(...(added.latency ?? []))
    rows.memory.push(...(added.memory ?? []))
  }
  const { changes, transactions, byAction, bodyBytes } = bench.backlog
  const measured = {
    startedAt, quick: settings.quick, machine: await machine(bench.pg, loadAverageAtStart),
    backlog: { changes, transactions, byAction, bodyBytes },
    ceilings: [bench.ceiling("wal2json"), bench.ceiling("pgoutput")],
    ...rows
  }
  const results: BenchResults = { ...measured, targets: checkTargets(measured) }
  process.stdout.write(markdown(results) + "\n")
  if (resultsFile === undefined) {
    log("results not written (a quick run writes them only with --results FILE)")
  } else {
    writeResults(resultsFile, results)
    log(`results written to ${resultsFile}`)
  }
}

let interrupted = false
const onSignal = (): void => {
  if (interrupted) process.exit(130)
  interrupted = true
  log("interrupted: cleaning up")
  void cleanUp().then(() => process.exit(130))
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

try {
  await main()
  await cleanUp()
} catch (error) {
  process.stderr.write(`\nBENCHMARK FAILED: ${error instanceof Error ? error.message : String(error)}\n`)
  await cleanUp()
  process.exitCode = 1
}

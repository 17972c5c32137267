/**
 * The benchmark (`npm run bench`, `npm run bench -- --quick`): a throwaway PostgreSQL, one backlog
 * in a slot per measurement, the pg_recvlogical ceiling of each plugin (wal2json, pgoutput) on a
 * twin slot, then the scenarios of bench/scenarios/ in turn: drains of both plugins into the bench
 * endpoint (0 and 20 ms per request) and kinesalite, memory with a small queue, memory while one
 * 300 MB row passes, memory while one key fails for five minutes under load on other keys, commit →
 * ack latency under a steady load; with --baseline, the baseline
 * commit's 20 ms drains beside this checkout's; with --scaling, the scaling table (drain rate against
 * KINESIS_MAX_INFLIGHT, the endpoint's latency and the row size). Prints a markdown report (rates, CPU per change,
 * peak RSS, targets met or missed) and writes the results to one JSON file: bench/results/latest.json
 * for a full run (a quick run writes only with --results). Every figure is measured; when the service
 * does not stream, the run fails with the service's output instead of reporting anything.
 */
import * as Os from "node:os"
import { parseArguments, type ScenarioName, scenarioNames } from "./Arguments.ts"
import { type Bench, cleanUp, log, machine, type Scenario, setUp } from "./Bench.ts"
import { markdown, writeResults } from "./Report.ts"
import type { BackfillFigures, BenchResults, DrainFigures, LatencyFigures, MemoryFigures, ScalingFigures } from "./Report.ts"
import * as Backfill from "./scenarios/Backfill.ts"
import * as Drains from "./scenarios/Drains.ts"
import * as HugeRow from "./scenarios/HugeRow.ts"
import * as Latency from "./scenarios/Latency.ts"
import * as Memory from "./scenarios/Memory.ts"
import * as Scaling from "./scenarios/Scaling.ts"
import * as StuckKey from "./scenarios/StuckKey.ts"
import { checkTargets } from "./Targets.ts"

const parsed = await parseArguments(process.argv.slice(2))
if (parsed._tag === "Exit") process.exit(parsed.code)
const { settings, resultsFile } = parsed.value

/** Every scenario by its `--only` name; they run in the order of `scenarioNames`, each adding rows to the results. */
const byName: Readonly<Record<ScenarioName, Scenario>> = {
  drains: Drains.scenario,
  memory: Memory.scenario,
  "huge-row": HugeRow.scenario,
  "stuck-key": StuckKey.scenario,
  latency: Latency.scenario,
  backfill: Backfill.scenario,
  scaling: Scaling.scenario
}
const scenarios: ReadonlyArray<Scenario> = scenarioNames
  .filter((name) => (settings.only.length === 0 ? name !== "scaling" || settings.scaling : settings.only.includes(name)))
  .map((name) => byName[name])

const main = async (): Promise<void> => {
  const startedAt = new Date().toISOString()
  const loadAverageAtStart = Os.loadavg()[0] ?? 0
  const bench: Bench = await setUp(settings, scenarios)
  const drains: Array<DrainFigures> = []
  const latency: Array<LatencyFigures> = []
  const memory: Array<MemoryFigures> = []
  const scaling: Array<ScalingFigures> = []
  const backfill: Array<BackfillFigures> = []
  for (const scenario of scenarios) {
    const added = await scenario.run(bench)
    drains.push(...(added.drains ?? []))
    latency.push(...(added.latency ?? []))
    memory.push(...(added.memory ?? []))
    scaling.push(...(added.scaling ?? []))
    backfill.push(...(added.backfill ?? []))
  }
  const { changes, transactions, byAction, bodyBytes } = bench.backlog
  const measured = {
    startedAt, quick: settings.quick, machine: await machine(bench.pg, loadAverageAtStart),
    backlog: { changes, transactions, byAction, bodyBytes },
    ceilings: [bench.ceiling("wal2json"), bench.ceiling("pgoutput")],
    drains, latency, memory, scaling, backfill
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

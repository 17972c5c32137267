/**
 * `npm run bench -- --quick` as a user runs it: it completes and reports every figure (the values
 * are the benchmark's business, not a test's). Needs the service to stream end to end.
 */
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import type { BenchResults } from "../../bench/Report.ts"
import { stuckRunPrefix } from "../../bench/scenarios/StuckKey.ts"
import { repoRoot } from "../../support/Paths.ts"

const run = (args: ReadonlyArray<string>): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile("npm", ["run", "--silent", "bench", "--", ...args], {
      cwd: repoRoot,
      env: { ...process.env, PATH: `${Path.join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}` },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 170_000
    }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
  })

const positive = (n: number | undefined): void => {
  expect(n).toBeTypeOf("number")
  expect(Number.isFinite(n)).toBe(true)
  expect(n).toBeGreaterThan(0)
}

describe("npm run bench -- --quick", () => {
  it("completes and reports every figure", async () => {
    const resultsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-bench-results-"))
    try {
      const resultsFile = Path.join(resultsDir, "quick.json")
      const { code, stdout, stderr } = await run(["--quick", "--results", resultsFile])
      expect(code, `bench failed:\n${stderr.slice(-4000)}`).toBe(0)
      const results = JSON.parse(Fs.readFileSync(resultsFile, "utf8")) as BenchResults
      expect(results.quick).toBe(true)
      positive(results.machine.cores)
      expect(results.machine.node).toBe(process.versions.node)
      expect(results.machine.postgres).toMatch(/^PostgreSQL \d+/)
      expect(results.backlog.changes).toBe(20_000)
      positive(results.backlog.bodyBytes)
      // both plugins, each with its own ceiling and CPU per change
      expect(results.ceilings.map((c) => c.plugin)).toEqual(["wal2json", "pgoutput"])
      for (const c of results.ceilings) {
        positive(c.changesPerSecond)
        positive(c.megabytesPerSecond)
        positive(c.cpuSeconds)
        positive(c.cpuMicrosPerChange)
      }
      // the name tells the endpoint, its latency and a RECORD_FORMAT other than the default
      expect(results.drains.map((d) => [d.plugin, d.name])).toEqual([
        ["wal2json", "bench endpoint, 0 ms"],
        ["wal2json", "bench endpoint, 20 ms"],
        ["pgoutput", "bench endpoint, 20 ms"],
        ["wal2json", "kinesalite"],
        ["wal2json", "bench endpoint, 20 ms, RECORD_FORMAT=debezium"],
        ["pgoutput", "bench endpoint, 20 ms, RECORD_FORMAT=debezium"]
      ])
      for (const d of results.drains) {
        positive(d.changesPerSecond)
        positive(d.megabytesPerSecond)
        positive(d.ratioToCeiling)
        positive(d.peakRssBytes)
        positive(d.serviceCpuSeconds)
        // how late the polls may have seen the end is stated, and small beside the drain
        positive(d.endWithinSeconds)
        expect(d.endWithinSeconds!).toBeLessThan(d.seconds / 4)
        expect(d.serviceCpuMicrosPerChange).toBeCloseTo((d.serviceCpuSeconds / d.changes) * 1e6, 6)
        expect(d.ratioToCeiling).toBeCloseTo(d.changesPerSecond / results.ceilings.find((c) => c.plugin === d.plugin)!.changesPerSecond, 6)
        if (d.endpoint === "bench endpoint") expect(d.recordsAcknowledged).toBeGreaterThanOrEqual(results.backlog.changes)
      }
      // the service's latency, then the floor: pg_recvlogical alone under the same load
      expect(results.latency.map((l) => l.floor === true)).toEqual([false, true])
      for (const l of results.latency) {
        positive(l.transactions)
        expect(l.latencyMs.count).toBeGreaterThanOrEqual(l.transactions)
        for (const p of [l.latencyMs.p50, l.latencyMs.p95, l.latencyMs.p99, l.latencyMs.max]) positive(p)
      }
      expect(results.scaling).toEqual([]) // only with --scaling
      // the backfill: every row, its rate beside COPY's, live latency with and without it
      expect(results.backfill.length).toBe(1)
      for (const b of results.backfill) {
        expect(b.rows).toBe(100_000)
        for (const n of [b.rowsPerSecond, b.copyRowsPerSecond, b.liveWithoutMs.p99, b.liveDuringMs.p99]) positive(n)
        expect(b.rowsPerSecond).toBeCloseTo(b.rows / b.seconds, 6)
      }
      expect(results.memory.length).toBeGreaterThanOrEqual(1)
      expect(results.memory.filter((m) => m.run.startsWith(stuckRunPrefix))).toHaveLength(1)
      for (const m of results.memory) {
        // a drain streams at least 4× the queue; the stuck-key run streams what its load wrote
        if (!m.run.startsWith(stuckRunPrefix)) expect(m.streamedBytes).toBeGreaterThanOrEqual(4 * m.queueMaxBytes)
        positive(m.peakRssBytes)
      }
      // every target is listed, met or missed, or said to be not measured by a quick run
      const targets = results.targets.map((t) => t.target).join("\n")
      for (const plugin of ["wal2json", "pgoutput"]) {
        expect(targets).toContain(`${plugin} drain at 20 ms ≥ 0.8× its pg_recvlogical ceiling`)
        expect(targets).toContain(`${plugin} service CPU per change at 20 ms`)
      }
      expect(targets).toContain("p99 commit → ack ≤ 20 ms at 5,000 changes/s")
      expect(results.targets.filter((t) => t.target.startsWith("peak RSS")).length).toBe(results.memory.length)
      expect(results.targets.filter((t) => t.target.includes("CPU per change")).every((t) => t.met === undefined)).toBe(true)
      // the stuck-key run checks that RSS returns; a quick run ends 5 s after recovery, before the idle release
      const returns = results.targets.filter((t) => t.target.startsWith("RSS returns"))
      expect(returns.map((t) => [t.met, t.measured.includes("not comparable: measured after 5 s, not 60")])).toEqual([[undefined, true]])
      // the markdown report names each figure
      for (const heading of [
        "ceiling: pg_recvlogical, wal2json", "ceiling: pg_recvlogical, pgoutput", "service, wal2json → bench endpoint, 0 ms",
        "service, wal2json → bench endpoint, 20 ms", "service, pgoutput → bench endpoint, 20 ms", "kinesalite", "CPU per change",
        "p99", "Peak RSS", "Target (queue + 150 MB)", "| Target | Measured | Result |"
      ]) {
        expect(stdout).toContain(heading)
      }
    } finally {
      Fs.rmSync(resultsDir, { recursive: true, force: true })
    }
  }, 180_000)
})

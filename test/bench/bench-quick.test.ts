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
import { repoRoot } from "../../bench/ServiceProcess.ts"

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
      const { code, stdout, stderr } = await run(["--quick", "--results-dir", resultsDir])
      expect(code, `bench failed:\n${stderr.slice(-4000)}`).toBe(0)
      const results = JSON.parse(Fs.readFileSync(Path.join(resultsDir, "latest-quick.json"), "utf8")) as BenchResults
      expect(results.quick).toBe(true)
      positive(results.machine.cores)
      expect(results.machine.node).toBe(process.versions.node)
      expect(results.machine.postgres).toMatch(/^PostgreSQL \d+/)
      expect(results.backlog.changes).toBe(20_000)
      positive(results.backlog.bodyBytes)
      positive(results.ceiling.changesPerSecond)
      positive(results.ceiling.megabytesPerSecond)
      expect(results.drains.map((d) => [d.endpoint, d.endpointLatencyMs])).toEqual([
        ["bench endpoint", 0], ["bench endpoint", 20], ["kinesalite", 0]
      ])
      for (const d of results.drains) {
        positive(d.changesPerSecond)
        positive(d.megabytesPerSecond)
        positive(d.ratioToCeiling)
        positive(d.peakRssBytes)
        if (d.endpoint === "bench endpoint") expect(d.recordsAcknowledged).toBeGreaterThanOrEqual(results.backlog.changes)
      }
      positive(results.latency.transactions)
      expect(results.latency.latencyMs.count).toBeGreaterThanOrEqual(results.latency.transactions)
      for (const p of [results.latency.latencyMs.p50, results.latency.latencyMs.p95, results.latency.latencyMs.p99, results.latency.latencyMs.max]) positive(p)
      expect(results.memory.length).toBeGreaterThanOrEqual(1)
      for (const m of results.memory) {
        expect(m.backlogBodyBytes).toBeGreaterThanOrEqual(4 * m.queueMaxBytes)
        positive(m.peakRssBytes)
      }
      // the markdown table names each figure
      for (const heading of ["ceiling: pg_recvlogical", "bench endpoint, 0 ms", "bench endpoint, 20 ms", "kinesalite", "p99", "Peak RSS", "Target (queue + 150 MB)"]) {
        expect(stdout).toContain(heading)
      }
    } finally {
      Fs.rmSync(resultsDir, { recursive: true, force: true })
    }
  }, 180_000)
})

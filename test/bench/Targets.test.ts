/**
 * The bench's targets checked against results: met, missed, or not measured (and why), for the
 * drain ratio, CPU per change (recorded baseline and same-run baseline), latency and memory.
 */
import { describe, expect, it } from "vitest"
import type { BenchResults, DrainFigures } from "../../bench/Report.ts"
import { baselineCpuMicrosPerChange, checkTargets } from "../../bench/Targets.ts"

const MiB = 1024 * 1024

const drain = (plugin: "wal2json" | "pgoutput", ratio: number, cpuMicros: number, checkout = "this"): DrainFigures => ({
  name: "bench endpoint, 20 ms", plugin, checkout, endpoint: "bench endpoint", endpointLatencyMs: 20, changes: 500_000,
  recordsAcknowledged: 500_000, secondsToFirstAck: 0.5, seconds: 10, changesPerSecond: 50_000, megabytesPerSecond: 27,
  ratioToCeiling: ratio, peakRssBytes: 150 * MiB, serviceCpuSeconds: (cpuMicros * 500_000) / 1e6, serviceCpuMicrosPerChange: cpuMicros
})

const results = (overrides: Partial<Omit<BenchResults, "targets">> = {}): Omit<BenchResults, "targets"> => ({
  startedAt: "2026-11-29T06:00:00.000Z",
  quick: false,
  machine: { cores: 2, cpuModel: "test", memoryGiB: 8, node: "24", postgres: "PostgreSQL 15", loadAverageAtStart: 1 },
  backlog: { changes: 500_000, transactions: 1, byAction: {}, bodyBytes: 276_000_000 },
  ceilings: [],
  drains: [drain("wal2json", 0.85, 12.0), drain("pgoutput", 0.7, 13.0)],
  latency: [{ name: "wal2json", offeredRate: 5_000, seconds: 30, transactions: 150_000, achievedTps: 5_000,
    latencyMs: { count: 150_000, min: 1, p50: 3, p95: 10, p99: 19, max: 40 } }],
  memory: [
    { run: "16 MiB queue", queueMaxBytes: 16 * MiB, streamedBytes: 263 * MiB, seconds: 10, peakRssBytes: 159 * MiB },
    { run: "default queue", queueMaxBytes: 64 * MiB, streamedBytes: 263 * MiB, seconds: 10, peakRssBytes: 250 * MiB }
  ],
  scaling: [],
  backfill: [],
  ...overrides
})

const byTarget = (r: Omit<BenchResults, "targets">, fragment: string) => checkTargets(r).filter((t) => t.target.includes(fragment))

describe("bench targets", () => {
  it("drain ratio ≥ 0.8 and CPU per change ≤ 60% of the recorded baseline, per plugin", () => {
    const r = results()
    expect(byTarget(r, "drain at 20 ms").map((t) => [t.target.split(" ")[0], t.met])).toEqual([["wal2json", true], ["pgoutput", false]])
    // wal2json: 12.0 ≤ 0.6 × 20.2 = 12.12; pgoutput: 13.0 > 0.6 × 20.0 = 12.0
    expect(baselineCpuMicrosPerChange).toEqual({ wal2json: 20.2, pgoutput: 20.0 })
    expect(byTarget(r, "below the baseline 2").map((t) => t.met)).toEqual([true, false])
  })

  it("CPU per change is not compared when the backlog differs from the baseline's", () => {
    const r = results({ backlog: { changes: 20_000, transactions: 1, byAction: {}, bodyBytes: 11_000_000 } })
    const cpu = byTarget(r, "below the baseline 2")
    expect(cpu.map((t) => t.met)).toEqual([undefined, undefined])
    expect(cpu[0]!.measured).toContain("not comparable")
  })

  it("with a baseline checkout in the run, CPU per change is also compared with it", () => {
    const r = results({ drains: [drain("wal2json", 0.85, 12.0), drain("wal2json", 0.6, 25.0, "baseline /tmp/b"), drain("pgoutput", 0.7, 16.0), drain("pgoutput", 0.5, 20.0, "baseline /tmp/b")] })
    const sameRun = byTarget(r, "baseline checkout's in this run")
    expect(sameRun.map((t) => t.met)).toEqual([true, false])
    expect(sameRun[0]!.measured).toBe("12.0 µs against 25.0 µs: 52% lower")
    expect(sameRun[1]!.measured).toBe("16.0 µs against 20.0 µs: 20% lower")
    // the drain-ratio target looks at this checkout's drain only
    expect(byTarget(r, "drain at 20 ms").map((t) => t.measured)).toEqual(["0.85×", "0.70×"])
  })

  it("latency p99 only at the target's offered rate; memory against each row's queue + 150 MB", () => {
    expect(byTarget(results(), "p99").map((t) => t.met)).toEqual([true])
    const slower = results({ latency: [{ ...results().latency[0]!, offeredRate: 1_000 }] })
    expect(byTarget(slower, "p99").map((t) => t.met)).toEqual([undefined])
    // the floor (pg_recvlogical alone) is shown, not a target
    const withFloor = results({ latency: [...results().latency, { ...results().latency[0]!, name: "floor", floor: true }] })
    expect(byTarget(withFloor, "p99").map((t) => t.met)).toEqual([true])
    // 16 MiB + 150 MB = 159.05 MiB: 159 MiB met; 64 MiB + 150 MB = 207.05 MiB: 250 MiB missed
    expect(byTarget(results(), "peak RSS").map((t) => t.met)).toEqual([true, false])
  })

  it("a drain that did not run is not measured, never met", () => {
    const r = results({ drains: [] })
    const perPlugin = checkTargets(r).filter((t) => t.target.startsWith("wal2json") || t.target.startsWith("pgoutput"))
    expect(perPlugin.length).toBe(4)
    expect(perPlugin.every((t) => t.met === undefined && t.measured === "no such drain in this run")).toBe(true)
  })

  it("live p99 during a backfill of 1,000,000 rows under 2,000 changes/s ≤ 3× without; other sizes not comparable", () => {
    const backfill = (rows: number, withoutP99: number, duringP99: number) => ({
      rows, seconds: 50, rowsPerSecond: rows / 50, copySeconds: 2, copyRowsPerSecond: rows / 2, liveRate: 2_000, loadSeconds: 30,
      backfillOutlastedLoad: true,
      liveWithoutMs: { count: 60_000, min: 1, p50: 3, p95: 6, p99: withoutP99, max: 20 },
      liveDuringMs: { count: 60_000, min: 1, p50: 5, p95: 15, p99: duringP99, max: 90 }
    })
    expect(byTarget(results({ backfill: [backfill(1_000_000, 10, 29)] }), "during a backfill").map((t) => t.met)).toEqual([true])
    expect(byTarget(results({ backfill: [backfill(1_000_000, 10, 31)] }), "during a backfill").map((t) => t.met)).toEqual([false])
    const quick = byTarget(results({ backfill: [backfill(100_000, 10, 12)] }), "during a backfill")
    expect(quick.map((t) => t.met)).toEqual([undefined])
    expect(quick[0]!.measured).toContain("not comparable: 100,000 rows")
  })

  it("RSS returns: 60 s idle after a stuck key's load ≤ RSS before + 20 MiB; other idle times not comparable; rows without it have no such target", () => {
    const stuck = (afterMiB: number, idleSeconds = 60) => results({
      memory: [
        { run: "16 MiB queue", queueMaxBytes: 16 * MiB, streamedBytes: 263 * MiB, seconds: 10, peakRssBytes: 159 * MiB },
        { run: "one key failing 300 s", queueMaxBytes: 64 * MiB, streamedBytes: 50 * MiB, seconds: 330, peakRssBytes: 180 * MiB,
          returned: { rssBeforeBytes: 110 * MiB, idleSeconds, rssAfterBytes: afterMiB * MiB } }
      ]
    })
    expect(byTarget(stuck(130), "RSS returns").map((t) => [t.met, t.measured])).toEqual([[true, "130.0 MiB 60 s after, 110.0 MiB before (+20.0 MiB)"]])
    expect(byTarget(stuck(130.5), "RSS returns").map((t) => t.met)).toEqual([false])
    expect(byTarget(stuck(105), "RSS returns").map((t) => t.measured)).toEqual(["105.0 MiB 60 s after, 110.0 MiB before (−5.0 MiB)"])
    const quick = byTarget(stuck(170, 5), "RSS returns")
    expect(quick.map((t) => t.met)).toEqual([undefined])
    expect(quick[0]!.measured).toContain("not comparable: measured after 5 s, not 60")
    expect(byTarget(results(), "RSS returns")).toEqual([])
  })
})

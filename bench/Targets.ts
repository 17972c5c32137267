/**
 * The performance targets of issue 14 and the baseline they are measured against, and their check
 * against a run's results: each target met, missed, or not measured by this run (and why).
 */
import type { Plugin } from "./Ceiling.ts"
import type { BenchResults } from "./Report.ts"

/**
 * Service CPU per change (µs, user + system ÷ changes, 20 ms endpoint, 500,000-change backlog) on
 * main at a4d9f5e before the performance work: bench/BASELINE.md.
 */
export const baselineCpuMicrosPerChange: Readonly<Record<Plugin, number>> = { wal2json: 20.2, pgoutput: 20.0 }
/** The backlog the baseline was measured on; CPU per change includes startup, so only this size compares. */
export const baselineBacklogChanges = 500_000

export const targets = {
  /** Drain into the 20 ms endpoint ≥ this × the plugin's pg_recvlogical ceiling. */
  drainRatioAt20Ms: 0.8,
  /** p99 commit → ack at `latencyRate` changes/s. */
  latencyP99Ms: 20,
  latencyRate: 5_000,
  /** Service CPU per change at least this far below the baseline. */
  cpuReduction: 0.4,
  /** Peak RSS ≤ QUEUE_MAX_BYTES + this. */
  memoryAboveQueueBytes: 150 * 1_000_000,
  /**
   * Memory returns after a load (issue 11: a key stuck for minutes): RSS `returnIdleSeconds` after all
   * is acknowledged ≤ RSS before the load + this. What the process keeps legitimately after its first
   * real load (optimised code, a full-size young generation) measured 2 MiB once everything freed was
   * returned; 20 MiB leaves room for run-to-run variation and is well under the 55–60 MiB a stuck key
   * adds, so memory left behind cannot pass.
   */
  returnAboveBeforeBytes: 20 * 1024 * 1024,
  /** Idle seconds after the load at which {@link targets.returnAboveBeforeBytes} is checked. */
  returnIdleSeconds: 60,
  /** Live p99 during a backfill of `backfillRows` under `backfillLiveRate` changes/s ≤ this × without (issue 13). */
  backfillP99Factor: 3,
  backfillRows: 1_000_000,
  backfillLiveRate: 2_000
} as const

export interface TargetCheck {
  readonly target: string
  readonly measured: string
  /** undefined: this run does not measure it (see `measured`). */
  readonly met: boolean | undefined
}

const MiB = 1024 * 1024

/** Every target, checked against the results. */
export const checkTargets = (r: Omit<BenchResults, "targets">): ReadonlyArray<TargetCheck> => {
  const checks: Array<TargetCheck> = []
  for (const plugin of ["wal2json", "pgoutput"] as const) {
    const at20 = (checkout: (c: string) => boolean) =>
      r.drains.find((d) => d.plugin === plugin && checkout(d.checkout) && d.endpoint === "bench endpoint" && d.endpointLatencyMs === 20)
    const drain = at20((c) => c === "this")
    const sameRunBaseline = at20((c) => c !== "this")
    checks.push({
      target: `${plugin} drain at 20 ms ≥ ${targets.drainRatioAt20Ms}× its pg_recvlogical ceiling`,
      measured: drain === undefined ? "no such drain in this run" : `${drain.ratioToCeiling.toFixed(2)}×`,
      met: drain === undefined ? undefined : drain.ratioToCeiling >= targets.drainRatioAt20Ms
    })
    const limit = baselineCpuMicrosPerChange[plugin] * (1 - targets.cpuReduction)
    const cpuTarget = `${plugin} service CPU per change at 20 ms ≤ ${limit.toFixed(1)} µs (${targets.cpuReduction * 100}% below the baseline ${baselineCpuMicrosPerChange[plugin]} µs)`
    if (drain === undefined) {
      checks.push({ target: cpuTarget, measured: "no such drain in this run", met: undefined })
    } else if (r.backlog.changes !== baselineBacklogChanges) {
      checks.push({
        target: cpuTarget,
        measured: `${drain.serviceCpuMicrosPerChange.toFixed(1)} µs, not comparable: the baseline's backlog is ${baselineBacklogChanges.toLocaleString("en-US")} changes, this one ${r.backlog.changes.toLocaleString("en-US")}`,
        met: undefined
      })
    } else {
      checks.push({ target: cpuTarget, measured: `${drain.serviceCpuMicrosPerChange.toFixed(1)} µs`, met: drain.serviceCpuMicrosPerChange <= limit })
    }
    if (drain !== undefined && sameRunBaseline !== undefined) {
      const sameRunLimit = sameRunBaseline.serviceCpuMicrosPerChange * (1 - targets.cpuReduction)
      const lower = 1 - drain.serviceCpuMicrosPerChange / sameRunBaseline.serviceCpuMicrosPerChange
      checks.push({
        target: `${plugin} service CPU per change at 20 ms ≥ ${targets.cpuReduction * 100}% below the baseline checkout's in this run (≤ ${sameRunLimit.toFixed(1)} µs)`,
        measured: `${drain.serviceCpuMicrosPerChange.toFixed(1)} µs against ${sameRunBaseline.serviceCpuMicrosPerChange.toFixed(1)} µs: ` +
          `${Math.abs(lower * 100).toFixed(0)}% ${lower >= 0 ? "lower" : "higher"}`,
        met: drain.serviceCpuMicrosPerChange <= sameRunLimit
      })
    }
  }
  for (const l of r.latency) {
    if (l.floor === true) continue
    const measured = `p99 ${l.latencyMs.p99.toFixed(1)} ms at ${Math.round(l.achievedTps).toLocaleString("en-US")}/s achieved`
    checks.push({
      target: `p99 commit → ack ≤ ${targets.latencyP99Ms} ms at ${targets.latencyRate.toLocaleString("en-US")} changes/s (${l.name})`,
      measured: l.offeredRate === targets.latencyRate ? measured : `${measured}, not comparable: offered ${l.offeredRate.toLocaleString("en-US")}/s`,
      met: l.offeredRate === targets.latencyRate ? l.latencyMs.p99 <= targets.latencyP99Ms : undefined
    })
  }
  for (const b of r.backfill) {
    const comparable = b.rows === targets.backfillRows && b.liveRate === targets.backfillLiveRate
    const measured = `p99 ${b.liveDuringMs.p99.toFixed(1)} ms during against ${b.liveWithoutMs.p99.toFixed(1)} ms without ` +
      `(${(b.liveDuringMs.p99 / b.liveWithoutMs.p99).toFixed(1)}×)`
    checks.push({
      target: `live p99 during a backfill of ${targets.backfillRows.toLocaleString("en-US")} rows under ${targets.backfillLiveRate.toLocaleString("en-US")} changes/s ≤ ${targets.backfillP99Factor}× without`,
      measured: comparable ? measured : `${measured}, not comparable: ${b.rows.toLocaleString("en-US")} rows`,
      met: comparable ? b.liveDuringMs.p99 <= targets.backfillP99Factor * b.liveWithoutMs.p99 : undefined
    })
  }
  for (const m of r.memory) {
    const limit = m.queueMaxBytes + targets.memoryAboveQueueBytes
    checks.push({
      target: `peak RSS ≤ QUEUE_MAX_BYTES + 150 MB (${m.run}: ${(limit / MiB).toFixed(1)} MiB)`,
      measured: `${(m.peakRssBytes / MiB).toFixed(1)} MiB`,
      met: m.peakRssBytes <= limit
    })
    if (m.returned !== undefined) {
      const { idleSeconds, rssAfterBytes, rssBeforeBytes } = m.returned
      const measured = `${(rssAfterBytes / MiB).toFixed(1)} MiB ${idleSeconds} s after, ${(rssBeforeBytes / MiB).toFixed(1)} MiB before ` +
        `(${rssAfterBytes >= rssBeforeBytes ? "+" : "−"}${(Math.abs(rssAfterBytes - rssBeforeBytes) / MiB).toFixed(1)} MiB)`
      const comparable = idleSeconds >= targets.returnIdleSeconds
      checks.push({
        target: `RSS returns: ${targets.returnIdleSeconds} s idle after all is acknowledged ≤ RSS before + ${targets.returnAboveBeforeBytes / MiB} MiB (${m.run})`,
        measured: comparable ? measured : `${measured}, not comparable: measured after ${idleSeconds} s, not ${targets.returnIdleSeconds}`,
        met: comparable ? rssAfterBytes <= rssBeforeBytes + targets.returnAboveBeforeBytes : undefined
      })
    }
  }
  return checks
}

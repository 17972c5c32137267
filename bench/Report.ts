/**
 * The benchmark's results: their shape, the markdown table printed at the end, and the JSON files
 * written to bench/results/.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Distribution } from "./KinesisLimits.ts"

export interface Machine {
  readonly cores: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
  readonly postgres: string
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  readonly loadAverageAtStart: number
}

export interface BacklogFigures {
  readonly changes: number
  readonly transactions: number
  readonly byAction: Readonly<Record<string, number>>
  readonly bodyBytes: number
}

export interface Throughput {
  readonly seconds: number
  readonly changesPerSecond: number
  readonly megabytesPerSecond: number
}

export interface DrainFigures extends Throughput {
  readonly name: string
  readonly endpoint: "bench endpoint" | "kinesalite"
  readonly endpointLatencyMs: number
  readonly changes: number
  /** Records the endpoint acknowledged (at least `changes`; more only if some were sent twice). */
  readonly recordsAcknowledged: number | undefined
  /** From spawning the service to the endpoint's first acknowledgement (startup), when known. */
  readonly secondsToFirstAck: number | undefined
  readonly ratioToCeiling: number
  readonly peakRssBytes: number | undefined
}

export interface LatencyFigures {
  readonly offeredRate: number
  readonly seconds: number
  readonly transactions: number
  readonly achievedTps: number
  readonly latencyMs: Distribution
}

export interface MemoryFigures {
  /** Which run: the small-queue memory run, or the default-settings drain. */
  readonly run: string
  readonly queueMaxBytes: number
  readonly backlogBodyBytes: number
  readonly seconds: number
  readonly peakRssBytes: number
}

export interface BenchResults {
  readonly startedAt: string
  readonly quick: boolean
  readonly machine: Machine
  readonly backlog: BacklogFigures
  readonly ceiling: Throughput
  readonly drains: ReadonlyArray<DrainFigures>
  readonly latency: LatencyFigures
  readonly memory: ReadonlyArray<MemoryFigures>
}

/** The issue's targets: drain at 20 ms ≥ 0.5× the ceiling, p99 ≤ 50 ms, peak RSS ≤ QUEUE_MAX_BYTES + 150 MB. */
export const targets = {
  drainRatioAt20Ms: 0.5,
  latencyP99Ms: 50,
  memoryAboveQueueBytes: 150 * 1_000_000
} as const

export const MB = 1_000_000
const MiB = 1024 * 1024

export const throughput = (changes: number, bytes: number, seconds: number): Throughput => ({
  seconds,
  changesPerSecond: changes / seconds,
  megabytesPerSecond: bytes / MB / seconds
})

const int = (n: number): string => Math.round(n).toLocaleString("en-US")
const fixed = (n: number, digits = 1): string => n.toFixed(digits)
const mib = (n: number | undefined): string => (n === undefined ? "n/a" : `${fixed(n / MiB)} MiB`)

/** The results as a markdown report (tables). */
export const markdown = (r: BenchResults): string => {
  const lines: Array<string> = []
  lines.push(`## Benchmark ${r.quick ? "(quick) " : ""}— ${r.startedAt}`)
  lines.push("")
  lines.push(`${r.machine.cores} cores (${r.machine.cpuModel}), ${fixed(r.machine.memoryGiB, 0)} GiB, Node ${r.machine.node}, ${r.machine.postgres}; load average ${fixed(r.machine.loadAverageAtStart, 2)} at start`)
  lines.push("")
  lines.push(`Backlog: ${int(r.backlog.changes)} changes in ${int(r.backlog.transactions)} transactions ` +
    `(${Object.entries(r.backlog.byAction).filter(([a]) => "IUD".includes(a)).map(([a, n]) => `${a} ${int(n)}`).join(", ")}), ` +
    `${fixed(r.backlog.bodyBytes / MB)} MB of change bodies (${int(r.backlog.bodyBytes / r.backlog.changes)} B average)`)
  lines.push("")
  lines.push("| Drain (seconds from start to the backlog's end) | Seconds | of which startup | Changes/s | MB/s | vs ceiling | Peak RSS |")
  lines.push("|---|---:|---:|---:|---:|---:|---:|")
  lines.push(`| ceiling: pg_recvlogical | ${fixed(r.ceiling.seconds, 2)} | | ${int(r.ceiling.changesPerSecond)} | ${fixed(r.ceiling.megabytesPerSecond)} | 100% | |`)
  for (const d of r.drains) {
    const startup = d.secondsToFirstAck === undefined ? "n/a" : fixed(d.secondsToFirstAck, 2)
    lines.push(`| service → ${d.name} | ${fixed(d.seconds, 2)} | ${startup} | ${int(d.changesPerSecond)} | ${fixed(d.megabytesPerSecond)} | ${fixed(d.ratioToCeiling * 100, 0)}% | ${mib(d.peakRssBytes)} |`)
  }
  lines.push("")
  const l = r.latency
  lines.push(`| End-to-end latency (commit → Kinesis ack) | Offered | Achieved | Changes | min | p50 | p95 | p99 | max |`)
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  lines.push(`| ${l.seconds} s of single-row transactions | ${int(l.offeredRate)}/s | ${int(l.achievedTps)}/s | ${int(l.latencyMs.count)} | ` +
    `${fixed(l.latencyMs.min)} ms | ${fixed(l.latencyMs.p50)} ms | ${fixed(l.latencyMs.p95)} ms | ${fixed(l.latencyMs.p99)} ms | ${fixed(l.latencyMs.max)} ms |`)
  lines.push("")
  lines.push("| Memory | QUEUE_MAX_BYTES | Backlog bodies | Drain seconds | Peak RSS | Target (queue + 150 MB) |")
  lines.push("|---|---:|---:|---:|---:|---:|")
  for (const m of r.memory) {
    const target = m.queueMaxBytes + targets.memoryAboveQueueBytes
    lines.push(`| ${m.run}, backlog ${fixed(m.backlogBodyBytes / m.queueMaxBytes, 1)}× the queue | ${mib(m.queueMaxBytes)} | ` +
      `${mib(m.backlogBodyBytes)} | ${fixed(m.seconds, 2)} | ${mib(m.peakRssBytes)} | ${mib(target)}: ${m.peakRssBytes <= target ? "met" : "missed"} |`)
  }
  const at20 = r.drains.find((d) => d.endpoint === "bench endpoint" && d.endpointLatencyMs === 20)
  if (at20 !== undefined) {
    lines.push("")
    lines.push(`Targets: drain at 20 ms ${fixed(at20.ratioToCeiling, 2)}× the ceiling (≥ ${targets.drainRatioAt20Ms}: ` +
      `${at20.ratioToCeiling >= targets.drainRatioAt20Ms ? "met" : "missed"}); latency p99 ${fixed(l.latencyMs.p99)} ms ` +
      `(≤ ${targets.latencyP99Ms} ms: ${l.latencyMs.p99 <= targets.latencyP99Ms ? "met" : "missed"}).`)
  }
  return lines.join("\n")
}

/**
 * Writes <dir>/<timestamp>.json and <dir>/latest.json (latest-quick.json for a quick run, so a quick
 * run never replaces the full results); returns the first path.
 */
export const writeResults = (dir: string, results: BenchResults): string => {
  Fs.mkdirSync(dir, { recursive: true })
  const text = JSON.stringify(results, null, 2) + "\n"
  const file = Path.join(dir, `${results.startedAt.replace(/[:.]/g, "-")}${results.quick ? "-quick" : ""}.json`)
  Fs.writeFileSync(file, text)
  Fs.writeFileSync(Path.join(dir, results.quick ? "latest-quick.json" : "latest.json"), text)
  return file
}

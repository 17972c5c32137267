/**
 * The benchmark's results: their shape, the markdown report printed at the end, and the one JSON
 * file they are written to (bench/results/latest.json for a full run; history lives in git).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Plugin } from "./Ceiling.ts"
import type { Distribution } from "../support/Distribution.ts"
import type { TargetCheck } from "./Targets.ts"

export interface Machine {
  readonly cores: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
  readonly postgres: string
  /** 1-minute load average when the run started: other work on the machine skews every rate (not CPU per change). */
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

/** pg_recvlogical draining the backlog from a twin slot: what PostgreSQL itself streams here. */
export interface CeilingFigures extends Throughput {
  readonly plugin: Plugin
  /** pg_recvlogical's user + system CPU time. */
  readonly cpuSeconds: number
  readonly cpuMicrosPerChange: number
}

export interface DrainFigures extends Throughput {
  readonly name: string
  readonly plugin: Plugin
  /** Whose code ran: "this" checkout, or "baseline <path>" (`--baseline`). */
  readonly checkout: string
  readonly endpoint: "bench endpoint" | "kinesalite"
  readonly endpointLatencyMs: number
  readonly changes: number
  /** Records the endpoint acknowledged (at least `changes`; more only if some were sent twice). */
  readonly recordsAcknowledged: number | undefined
  /** From spawning the service to the endpoint's first acknowledgement (startup), when known. */
  readonly secondsToFirstAck: number | undefined
  /** Against the same plugin's ceiling. */
  readonly ratioToCeiling: number
  readonly peakRssBytes: number | undefined
  /**
   * How late `seconds` may be: the drain ended after the last poll of the service's frontier that
   * saw it short of the backlog's end and before the next (undefined in results from before it was kept).
   */
  readonly endWithinSeconds?: number | undefined
  /** The service's user + system CPU time from spawn until its frontier was seen past the backlog's end. */
  readonly serviceCpuSeconds: number
  readonly serviceCpuMicrosPerChange: number
}

export interface LatencyFigures {
  readonly name: string
  /** pg_recvlogical's commit → receipt under the same load (no service): the floor, not a target. */
  readonly floor?: boolean | undefined
  readonly offeredRate: number
  readonly seconds: number
  readonly transactions: number
  readonly achievedTps: number
  readonly latencyMs: Distribution
}

export interface MemoryFigures {
  /** What ran (e.g. "16 MiB queue, backlog drain"). */
  readonly run: string
  readonly queueMaxBytes: number
  /** Bytes of change bodies the service streamed (or was given) during the run. */
  readonly streamedBytes: number
  readonly seconds: number
  readonly peakRssBytes: number
  /** A run that measures whether memory returns once the load is over (the stuck-key run): RSS before the load and after it. */
  readonly returned?: RssReturned
}

/** RSS before a load, and `idleSeconds` after all of it was acknowledged, the service idle since. */
export interface RssReturned {
  readonly rssBeforeBytes: number
  readonly idleSeconds: number
  readonly rssAfterBytes: number
}

/** One cell of the scaling table (`--scaling`): a wal2json drain into the bench endpoint. */
export interface ScalingFigures extends Throughput {
  /** Which backlog: the shared one, or one of other rows. */
  readonly rows: string
  readonly averageBodyBytes: number
  readonly kinesisMaxInflight: number
  readonly endpointLatencyMs: number
  readonly changes: number
  /** Against pg_recvlogical on the same backlog. */
  readonly ratioToCeiling: number
  readonly serviceCpuMicrosPerChange: number
  /** The service's CPU seconds ÷ the drain's seconds (1 = one core busy all along). */
  readonly serviceCpuUtilization: number
  /** In-flight requests × full batches (500 records) ÷ the endpoint's latency; none at 0 ms. */
  readonly requestBoundChangesPerSecond: number | undefined
}

/** A backfill under a live load (issue 13), against COPY of the same table. */
export interface BackfillFigures {
  readonly rows: number
  /** From `backfill_started` to `backfill_finished`. */
  readonly seconds: number
  readonly rowsPerSecond: number
  /** `COPY (SELECT * FROM …) TO STDOUT` of the same table through psql into /dev/null. */
  readonly copySeconds: number
  readonly copyRowsPerSecond: number
  /** Offered single-row transactions per second, for `loadSeconds`, alone and then during the backfill. */
  readonly liveRate: number
  readonly loadSeconds: number
  readonly backfillOutlastedLoad: boolean
  readonly liveWithoutMs: Distribution
  readonly liveDuringMs: Distribution
}

export interface BenchResults {
  readonly startedAt: string
  readonly quick: boolean
  readonly machine: Machine
  readonly backlog: BacklogFigures
  readonly ceilings: ReadonlyArray<CeilingFigures>
  readonly drains: ReadonlyArray<DrainFigures>
  readonly latency: ReadonlyArray<LatencyFigures>
  readonly memory: ReadonlyArray<MemoryFigures>
  /** Empty unless the run was given --scaling. */
  readonly scaling: ReadonlyArray<ScalingFigures>
  readonly backfill: ReadonlyArray<BackfillFigures>
  readonly targets: ReadonlyArray<TargetCheck>
}

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
    `${fixed(r.backlog.bodyBytes / MB)} MB of wal2json change bodies (${int(r.backlog.bodyBytes / r.backlog.changes)} B average)`)
  lines.push("")
  lines.push("| Drain (seconds from start to the backlog's end) | Seconds | of which startup | Changes/s | MB/s | vs ceiling | CPU per change | Peak RSS |")
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|")
  for (const c of r.ceilings) {
    lines.push(`| ceiling: pg_recvlogical, ${c.plugin} | ${fixed(c.seconds, 2)} | | ${int(c.changesPerSecond)} | ${fixed(c.megabytesPerSecond)} | 100% | ${fixed(c.cpuMicrosPerChange)} µs | |`)
  }
  for (const d of r.drains) {
    const startup = d.secondsToFirstAck === undefined ? "n/a" : fixed(d.secondsToFirstAck, 2)
    lines.push(`| service${d.checkout === "this" ? "" : ` (${d.checkout})`}, ${d.plugin} → ${d.name} | ${fixed(d.seconds, 2)} | ${startup} | ${int(d.changesPerSecond)} | ` +
      `${fixed(d.megabytesPerSecond)} | ${fixed(d.ratioToCeiling * 100, 0)}% | ${fixed(d.serviceCpuMicrosPerChange)} µs | ${mib(d.peakRssBytes)} |`)
  }
  lines.push("")
  lines.push("CPU per change: user + system CPU time of the process (the service, or pg_recvlogical) ÷ changes; it stays " +
    "comparable between runs on a shared machine, where the rates do not.")
  const late = r.drains.flatMap((d) => (d.endWithinSeconds === undefined ? [] : [d.endWithinSeconds]))
  if (late.length > 0) {
    lines.push("")
    lines.push("A drain's end is seen by polling the service's /metrics for its frontier, every 200 ms while the end is far and " +
      `every 25 ms near it (answering a poll costs the service CPU time): each drain's seconds are at most ${fixed(Math.max(...late) * 1000, 0)} ms late.`)
  }
  lines.push("")
  lines.push(`| End-to-end latency (commit → Kinesis ack; the floor: commit → received by pg_recvlogical) | Offered | Achieved | Changes | min | p50 | p95 | p99 | max |`)
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  for (const l of r.latency) {
    lines.push(`| ${l.name}, ${l.seconds} s of single-row transactions | ${int(l.offeredRate)}/s | ${int(l.achievedTps)}/s | ${int(l.latencyMs.count)} | ` +
      `${fixed(l.latencyMs.min)} ms | ${fixed(l.latencyMs.p50)} ms | ${fixed(l.latencyMs.p95)} ms | ${fixed(l.latencyMs.p99)} ms | ${fixed(l.latencyMs.max)} ms |`)
  }
  lines.push("")
  lines.push("| Memory | QUEUE_MAX_BYTES | Streamed | Seconds | Peak RSS | Target (queue + 150 MB) |")
  lines.push("|---|---:|---:|---:|---:|---:|")
  for (const m of r.memory) {
    lines.push(`| ${m.run} | ${mib(m.queueMaxBytes)} | ${mib(m.streamedBytes)} | ${fixed(m.seconds, 2)} | ${mib(m.peakRssBytes)} | ${mib(m.queueMaxBytes + 150 * MB)} |`)
  }
  if (r.scaling.length > 0) {
    lines.push("")
    lines.push("| Scaling: wal2json drain into the bench endpoint | Average body | KINESIS_MAX_INFLIGHT | Endpoint latency | Changes/s | MB/s | vs ceiling | Service CPU busy | Request bound | CPU per change |")
    lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (const x of r.scaling) {
      const bound = x.requestBoundChangesPerSecond === undefined ? "n/a" : `${int(x.requestBoundChangesPerSecond)}/s`
      lines.push(`| ${int(x.changes)} changes, ${x.rows} | ${int(x.averageBodyBytes)} B | ${x.kinesisMaxInflight} | ${x.endpointLatencyMs} ms | ` +
        `${int(x.changesPerSecond)} | ${fixed(x.megabytesPerSecond)} | ${fixed(x.ratioToCeiling * 100, 0)}% | ${fixed(x.serviceCpuUtilization * 100, 0)}% | ${bound} | ${fixed(x.serviceCpuMicrosPerChange)} µs |`)
    }
  }
  for (const b of r.backfill) {
    lines.push("")
    lines.push(`| Backfill of ${int(b.rows)} rows under ${int(b.liveRate)} live changes/s | Rows/s | Seconds | vs COPY | live p50 | live p99 | live max |`)
    lines.push("|---|---:|---:|---:|---:|---:|---:|")
    lines.push(`| COPY (SELECT …) TO STDOUT (ceiling) | ${int(b.copyRowsPerSecond)} | ${fixed(b.copySeconds, 2)} | 100% | | | |`)
    lines.push(`| live load alone, ${b.loadSeconds} s | | | | ${fixed(b.liveWithoutMs.p50)} ms | ${fixed(b.liveWithoutMs.p99)} ms | ${fixed(b.liveWithoutMs.max)} ms |`)
    lines.push(`| backfill, with the live load for its first ${b.loadSeconds} s${b.backfillOutlastedLoad ? "" : " (it finished sooner)"} | ${int(b.rowsPerSecond)} | ` +
      `${fixed(b.seconds, 2)} | ${fixed((b.rowsPerSecond / b.copyRowsPerSecond) * 100, 0)}% | ${fixed(b.liveDuringMs.p50)} ms | ${fixed(b.liveDuringMs.p99)} ms | ${fixed(b.liveDuringMs.max)} ms |`)
  }
  lines.push("")
  lines.push("| Target | Measured | Result |")
  lines.push("|---|---|---|")
  for (const t of r.targets) {
    lines.push(`| ${t.target} | ${t.measured} | ${t.met === undefined ? "not measured" : t.met ? "met" : "missed"} |`)
  }
  return lines.join("\n")
}

/** Writes the results as JSON to `file` (replacing it). */
export const writeResults = (file: string, results: BenchResults): void => {
  Fs.mkdirSync(Path.dirname(file), { recursive: true })
  Fs.writeFileSync(file, JSON.stringify(results, null, 2) + "\n")
}

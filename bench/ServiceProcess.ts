/**
 * Runs the service exactly as production does (`node src/main.ts` with its configuration in the
 * environment) as a child process: its logs go to a file, its /metrics is scraped, its peak RSS is
 * read from /proc. Used by the benchmark and the demo.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { launchEnvironment, nodeFlags } from "../src/NodeFlags.ts"
import { fileURLToPath } from "node:url"
import { parsePrometheus, scrape } from "./Prometheus.ts"
import type { MetricValues } from "./Prometheus.ts"

export const repoRoot = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

/** A TCP port free on 127.0.0.1 right now (the test harness's). */
export { freePort } from "../test/support/PostgresHarness.ts"

export interface ServiceProcess {
  readonly pid: number
  readonly httpPort: number
  readonly logFile: string
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>
  readonly hasExited: () => boolean
  /** The current metrics, or undefined when /metrics does not answer. */
  readonly metrics: () => Promise<MetricValues | undefined>
  /** Peak and current resident set size in bytes (VmHWM, VmRSS), while the process runs. */
  readonly memory: () => { readonly peakRssBytes: number; readonly rssBytes: number } | undefined
  /** The last lines of the service's log, for error messages. */
  readonly logTail: (lines?: number) => string
  /** SIGTERM, then SIGKILL after `graceMs`. */
  readonly stop: (graceMs?: number) => Promise<number | null>
}

const statusField = (status: string, field: string): number | undefined => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)
  return match === null ? undefined : Number(match[1]) * 1024
}

export const readMemory = (pid: number): { readonly peakRssBytes: number; readonly rssBytes: number } | undefined => {
  try {
    const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const peak = statusField(status, "VmHWM")
    const rss = statusField(status, "VmRSS")
    return peak === undefined || rss === undefined ? undefined : { peakRssBytes: peak, rssBytes: rss }
  } catch {
    return undefined
  }
}

export interface StartServiceOptions {
  /** The service's environment (PG*, REPLICATION_*, AWS_*, KINESIS_*, HTTP_PORT, ...). */
  readonly env: Readonly<Record<string, string>>
  readonly httpPort: number
  readonly logFile: string
}

/** Spawns the service; resolves once it is spawned (not necessarily streaming yet). */
export const startService = (options: StartServiceOptions): ServiceProcess => {
  const log = Fs.openSync(options.logFile, "a")
  const child: ChildProcess = spawn(process.execPath, [...nodeFlags, Path.join(repoRoot, "src", "main.ts")], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      ...launchEnvironment(repoRoot),
      ...options.env,
      HTTP_PORT: String(options.httpPort)
    },
    stdio: ["ignore", log, log]
  })
  Fs.closeSync(log)
  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => {
      exitCode = code ?? (signal === null ? null : 128)
      resolve(exitCode)
    })
  })
  const logTail = (lines = 20): string => {
    try {
      return Fs.readFileSync(options.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
    } catch {
      return "(no log)"
    }
  }
  return {
    pid: child.pid!,
    httpPort: options.httpPort,
    logFile: options.logFile,
    exited,
    hasExited: () => exitCode !== undefined,
    metrics: async () => {
      const text = await scrape(options.httpPort)
      return text === undefined ? undefined : parsePrometheus(text)
    },
    memory: () => readMemory(child.pid!),
    logTail,
    stop: async (graceMs = 15_000) => {
      if (exitCode !== undefined) return exitCode
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}

/** Polls until `condition` yields a value, the service exits (error), or the deadline passes (error). */
export const waitFor = async <A>(
  what: string,
  condition: () => Promise<A | undefined>,
  options: { readonly timeoutMs: number; readonly intervalMs?: number; readonly service?: ServiceProcess }
): Promise<A> => {
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    const value = await condition()
    if (value !== undefined) return value
    if (options.service?.hasExited()) {
      throw new Error(`the service exited (code ${await options.service.exited}) while waiting for ${what}; its log ends with:\n${options.service.logTail()}`)
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}` +
        (options.service ? `; the service's log ends with:\n${options.service.logTail()}` : ""))
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50))
  }
}

/**
 * Runs the service as users run it, `node src/main.ts` in its own process, for end-to-end tests:
 * JSON logs captured line by line, /metrics scraped, signals sent, exit awaited.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { launchEnvironment, nodeFlags } from "../../src/NodeFlags.ts"

const root = Path.resolve(import.meta.dirname, "../..")

export interface LogLine {
  readonly timestamp: string
  readonly level: string
  readonly message: string
  readonly [field: string]: unknown
}

export interface ServiceProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Every JSON log line so far (stdout). */
  readonly logs: () => ReadonlyArray<LogLine>
  /** stdout lines that were not JSON, and all of stderr. */
  readonly otherOutput: () => string
  /** Waits for a log line whose message matches (and optional predicate). */
  readonly waitForLog: (message: string | RegExp, options?: { readonly timeoutMs?: number; readonly where?: (line: LogLine) => boolean }) => Promise<LogLine>
  /** The probe server's port (from the `http_listening` line). */
  readonly httpPort: () => Promise<number>
  /** GET a probe path: status and body. */
  readonly get: (path: string) => Promise<{ readonly status: number; readonly body: string }>
  /** The value of a Prometheus sample (`name{labels}`), summed over matching label sets; 0 when absent. */
  readonly metric: (name: string, labels?: Readonly<Record<string, string>>) => Promise<number>
  readonly kill: (signal: NodeJS.Signals) => void
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>
}

/**
 * The environment of a service streaming from a test cluster into a test Kinesis: its own slot and
 * stream, no leader election, a free probe port, JSON logs, fast status updates.
 */
export const serviceEnvFor = (
  pg: { readonly env: Readonly<Record<string, string>> },
  kinesis: { readonly endpoint: string; readonly region: string },
  options: { readonly slot: string; readonly stream: string }
): Record<string, string> => ({
  ...pg.env,
  AWS_REGION: kinesis.region,
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_ENDPOINT_URL_KINESIS: kinesis.endpoint,
  KINESIS_STREAM: options.stream,
  REPLICATION_SLOT: options.slot,
  LEADER_ELECTION: "false",
  HTTP_PORT: "0",
  LOG_FORMAT: "json",
  STATUS_INTERVAL_MS: "200"
})

/** Parses Prometheus text into samples. */
export const parseMetrics = (text: string): Array<{ name: string; labels: Record<string, string>; value: number }> =>
  text.split("\n").filter((l) => l.length > 0 && !l.startsWith("#")).flatMap((line) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) return []
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    return [{ name: m[1]!, labels, value: Number(m[3]) }]
  })

export const startService = (env: Readonly<Record<string, string>>): ServiceProcess => {
  const child = spawn(process.execPath, [...nodeFlags, Path.join(root, "src/main.ts")], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...launchEnvironment(root), HTTP_PORT: "0", LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<LogLine> = []
  let other = ""
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const w of [...waiters]) w()
  }
  let stdoutRest = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    const parts = (stdoutRest + chunk).split("\n")
    stdoutRest = parts.pop() ?? ""
    for (const part of parts) {
      if (part.trim() === "") continue
      try {
        lines.push(JSON.parse(part) as LogLine)
      } catch {
        other += part + "\n"
      }
    }
    notify()
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    other += chunk
  })
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      notify()
      resolve(code ?? signal ?? "unknown")
    })
  })

  const waitForLog: ServiceProcess["waitForLog"] = (message, options = {}) =>
    new Promise((resolve, reject) => {
      const matches = (l: LogLine) =>
        (typeof message === "string" ? l.message === message : message.test(l.message)) && (options.where?.(l) ?? true)
      const check = () => {
        const found = lines.find(matches)
        if (found) {
          cleanup()
          resolve(found)
        } else if (child.exitCode !== null || child.signalCode !== null) {
          cleanup()
          reject(new Error(`service exited before logging ${String(message)}; output:\n${other}\nlogs:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`))
        }
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`no log ${String(message)} within ${options.timeoutMs ?? 30_000} ms; logs:\n${lines.map((l) => JSON.stringify(l)).join("\n")}\n${other}`))
      }, options.timeoutMs ?? 30_000)
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })

  let port: Promise<number> | undefined
  const httpPort = () => (port ??= waitForLog("http_listening").then((l) => Number(l.port)))
  const get: ServiceProcess["get"] = async (path) => {
    const response = await fetch(`http://127.0.0.1:${await httpPort()}${path}`)
    return { status: response.status, body: await response.text() }
  }
  const metric: ServiceProcess["metric"] = async (name, labels = {}) => {
    const { body } = await get("/metrics")
    return parseMetrics(body)
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0)
  }
  return {
    child,
    pid: child.pid!,
    logs: () => lines,
    otherOutput: () => other,
    waitForLog,
    httpPort,
    get,
    metric,
    kill: (signal) => {
      child.kill(signal)
    },
    exited
  }
}

/** Polls `check` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export const eventually = async <A>(
  what: string,
  check: () => Promise<A | undefined | false> | A | undefined | false,
  timeoutMs = 30_000,
  intervalMs = 100
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (e) {
      last = e
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`)
}

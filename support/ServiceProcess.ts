/**
 * Runs the service as users run it, `node src/main.ts` in its own process with its configuration in
 * the environment, for tests, the benchmark and the demo: JSON log lines captured, /metrics scraped,
 * memory and CPU read from /proc, signals sent, exit awaited.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Path from "node:path"
import { launchEnvironment, nodeFlags } from "../src/NodeFlags.ts"
import { type Sample, scrape, valueOf } from "./Metrics.ts"
import { repoRoot } from "./Paths.ts"
import { cpuSecondsOf, type Memory, memoryOf } from "./ProcessStats.ts"

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
  /** The last `lines` lines of output (log lines as JSON, then other output), for error messages. */
  readonly logTail: (lines?: number) => string
  /** Waits for a log line whose message matches (and optional predicate). */
  readonly waitForLog: (message: string | RegExp, options?: { readonly timeoutMs?: number; readonly where?: (line: LogLine) => boolean }) => Promise<LogLine>
  /** The probe server's port (from the `http_listening` line). */
  readonly httpPort: () => Promise<number>
  /** GET a probe path: status and body. */
  readonly get: (path: string) => Promise<{ readonly status: number; readonly body: string }>
  /** The value of a Prometheus sample (`name{labels}`), summed over matching label sets; 0 when absent. */
  readonly metric: (name: string, labels?: Readonly<Record<string, string>>) => Promise<number>
  /** The current metrics without waiting: undefined until the probe server listens, or when it does not answer. */
  readonly metricsNow: () => Promise<ReadonlyArray<Sample> | undefined>
  /** Peak and current RSS while the process runs. */
  readonly memory: () => Memory | undefined
  /** User + system CPU seconds so far, while the process runs. */
  readonly cpuSeconds: () => number | undefined
  readonly kill: (signal: NodeJS.Signals) => void
  readonly hasExited: () => boolean
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  readonly stop: (graceMs?: number) => Promise<number | string>
  /**
   * Polls `check` until it yields a value (not undefined/false); fails with the log's tail when the
   * service exits first or `timeoutMs` passes.
   */
  readonly waitUntil: <A>(
    what: string,
    check: () => Promise<A | undefined | false> | A | undefined | false,
    options?: { readonly timeoutMs?: number; readonly intervalMs?: number }
  ) => Promise<A>
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

/** Polls `check` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export const eventually = async <A>(
  what: string,
  check: () => Promise<A | undefined | false> | A | undefined | false,
  timeoutMs = 30_000,
  intervalMs = 100,
  /** A reason to give up at once (e.g. the process exited), checked between attempts. */
  giveUp: () => string | undefined = () => undefined
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (e) {
      last = e
    }
    const reason = giveUp()
    if (reason !== undefined) throw new Error(`${reason} while waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`)
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Which code to run: a checkout's `src/main.ts` with its own launch flags and environment (src/NodeFlags.ts). */
export interface Checkout {
  readonly root: string
  readonly nodeFlags: ReadonlyArray<string>
  readonly environment: Readonly<Record<string, string>>
}

/** This repository. */
export const thisCheckout: Checkout = { root: repoRoot, nodeFlags, environment: launchEnvironment(repoRoot) }

/** Another checkout of the service (with its node_modules), e.g. an earlier commit to compare with. */
export const checkoutAt = async (root: string): Promise<Checkout> => {
  const flags = (await import(Path.join(Path.resolve(root), "src", "NodeFlags.ts"))) as {
    readonly nodeFlags: ReadonlyArray<string>
    readonly launchEnvironment: (root: string) => Readonly<Record<string, string>>
  }
  return { root: Path.resolve(root), nodeFlags: flags.nodeFlags, environment: flags.launchEnvironment(Path.resolve(root)) }
}

/**
 * Fills a checkout's compile cache (src/NodeFlags.ts) the way the container image is built: the
 * service started with no configuration loads every module, then exits with code 2. Cache entries
 * are per file and contents, so after a change the first start strips and compiles every changed
 * module again (measured: ~14 MiB more RSS at idle and twice the CPU to start), which a measurement
 * of that start would otherwise count.
 */
export const warmCompileCache = (checkout: Checkout = thisCheckout): void => {
  const result = spawnSync(process.execPath, [...checkout.nodeFlags, Path.join(checkout.root, "src/main.ts")], {
    cwd: checkout.root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...checkout.environment },
    stdio: "ignore",
    timeout: 120_000
  })
  if (result.status !== 2) {
    throw new Error(`warming the compile cache of ${checkout.root}: expected exit code 2 (no configuration), got ${result.status ?? result.signal}`)
  }
}

/**
 * Spawns `node src/main.ts` (of this checkout unless told otherwise) with its launch flags and `env`
 * (HTTP_PORT=0 and LOG_FORMAT=json unless `env` says otherwise); stdout and stderr are captured.
 */
export const startService = (env: Readonly<Record<string, string>>, checkout: Checkout = thisCheckout): ServiceProcess => {
  const child = spawn(process.execPath, [...checkout.nodeFlags, Path.join(checkout.root, "src/main.ts")], {
    cwd: checkout.root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...checkout.environment, HTTP_PORT: "0", LOG_FORMAT: "json", ...env },
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
  let exitedWith: number | string | undefined
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      exitedWith = code ?? signal ?? "unknown"
      notify()
      resolve(exitedWith)
    })
  })
  const hasExited = () => exitedWith !== undefined

  const logTail = (count = 20): string => {
    const all = [...lines.map((l) => JSON.stringify(l)), ...other.trimEnd().split("\n").filter((l) => l !== "")]
    return all.length === 0 ? "(no output)" : all.slice(-count).join("\n")
  }

  const waitForLog: ServiceProcess["waitForLog"] = (message, options = {}) =>
    new Promise((resolve, reject) => {
      const matches = (l: LogLine) =>
        (typeof message === "string" ? l.message === message : message.test(l.message)) && (options.where?.(l) ?? true)
      const check = () => {
        const found = lines.find(matches)
        if (found) {
          cleanup()
          resolve(found)
        } else if (hasExited()) {
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
  const listeningPort = (): number | undefined => {
    const line = lines.find((l) => l.message === "http_listening")
    return line === undefined ? undefined : Number(line.port)
  }
  const get: ServiceProcess["get"] = async (path) => {
    const response = await fetch(`http://127.0.0.1:${await httpPort()}${path}`)
    return { status: response.status, body: await response.text() }
  }
  const metricsNow: ServiceProcess["metricsNow"] = async () => {
    const known = listeningPort()
    return known === undefined ? undefined : scrape(known)
  }
  const metric: ServiceProcess["metric"] = async (name, labels = {}) => {
    const samples = await scrape(await httpPort())
    if (samples === undefined) throw new Error("the service's /metrics did not answer")
    return valueOf(samples, name, labels) ?? 0
  }
  const stop: ServiceProcess["stop"] = async (graceMs = 15_000) => {
    if (exitedWith !== undefined) return exitedWith
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    const result = await exited
    clearTimeout(timer)
    return result
  }
  const waitUntil: ServiceProcess["waitUntil"] = (what, check, options = {}) =>
    eventually(what, check, options.timeoutMs ?? 30_000, options.intervalMs ?? 50, () =>
      hasExited() ? `the service exited (${String(exitedWith)}); its output ends with:\n${logTail()}\n` : undefined).catch((error: unknown) => {
      if (hasExited()) throw error
      throw new Error(`${error instanceof Error ? error.message : String(error)}; the service's output ends with:\n${logTail()}`)
    })
  return {
    child,
    pid: child.pid!,
    logs: () => lines,
    otherOutput: () => other,
    logTail,
    waitForLog,
    httpPort,
    get,
    metric,
    metricsNow,
    memory: () => memoryOf(child.pid!),
    cpuSeconds: () => cpuSecondsOf(child.pid!),
    kill: (signal) => {
      child.kill(signal)
    },
    hasExited,
    exited,
    stop,
    waitUntil
  }
}

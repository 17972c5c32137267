/**
 * Runs the Kinesis-compatible servers the benchmark measures against as child processes (so they
 * never share the measured service's event loop): bench/KinesisEndpoint.ts (with its stats, reset)
 * and kinesalite (support/KinesaliteHarness.ts). Each prints `{"port":N}` once it is ready.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import type { EndpointStats } from "./KinesisEndpoint.ts"

const here = Path.dirname(fileURLToPath(import.meta.url))
const kinesaliteScript = Path.join(here, "..", "support", "KinesaliteHarness.ts")

export interface ChildServer {
  readonly url: string
  readonly pid: number
  readonly stop: () => Promise<void>
}

export interface EndpointProcess extends ChildServer {
  readonly stats: () => Promise<EndpointStats>
  readonly reset: () => Promise<void>
  /** Fails every record of `partitionKey` with ProvisionedThroughputExceededException; "" stops. */
  readonly failKey: (partitionKey: string) => Promise<void>
}

/** Spawns `node <script> ...args` and waits for its `{"port":N}` line. */
const spawnServer = async (script: string, args: ReadonlyArray<string>): Promise<ChildServer> => {
  const child = spawn(process.execPath, [Path.resolve(here, script), ...args], { stdio: ["ignore", "pipe", "inherit"] })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    const lines = Readline.createInterface({ input: child.stdout })
    lines.once("line", (line) => {
      const parsed: unknown = JSON.parse(line)
      const value = typeof parsed === "object" && parsed !== null && "port" in parsed ? parsed.port : undefined
      if (typeof value === "number") resolve(value)
      else reject(new Error(`${script} printed ${line}`))
    })
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code} before listening`)))
  })
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}

export interface EndpointProcessOptions {
  readonly latencyMs?: number
  readonly streamName?: string
  readonly shards?: number
}

export const startEndpointProcess = async (options: EndpointProcessOptions = {}): Promise<EndpointProcess> => {
  const server = await spawnServer("KinesisEndpoint.ts", [
    "--port", "0",
    "--endpoint-latency-ms", String(options.latencyMs ?? 0),
    "--stream", options.streamName ?? "bench",
    "--shards", String(options.shards ?? 4)
  ])
  return {
    ...server,
    stats: async () => {
      const response = await fetch(`${server.url}/stats`)
      if (!response.ok) throw new Error(`endpoint /stats answered ${response.status}`)
      return (await response.json()) as EndpointStats
    },
    reset: async () => {
      const response = await fetch(`${server.url}/reset`, { method: "POST" })
      if (!response.ok) throw new Error(`endpoint /reset answered ${response.status}`)
    },
    failKey: async (partitionKey) => {
      const response = await fetch(`${server.url}/fail-key`, { method: "POST", body: partitionKey })
      if (!response.ok) throw new Error(`endpoint /fail-key answered ${response.status}`)
    }
  }
}

export const startKinesaliteProcess = (options: { readonly streamName: string; readonly shards: number }): Promise<ChildServer> =>
  spawnServer(kinesaliteScript, ["--stream", options.streamName, "--shards", String(options.shards)])

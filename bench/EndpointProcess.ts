/**
 * Runs bench/KinesisEndpoint.ts as a child process (so it never shares the measured service's event
 * loop) and talks to it: its URL for AWS_ENDPOINT_URL_KINESIS, its stats, reset and stop.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import type { EndpointStats } from "./KinesisEndpoint.ts"

export interface EndpointProcess {
  readonly url: string
  readonly pid: number
  readonly stats: () => Promise<EndpointStats>
  readonly reset: () => Promise<void>
  readonly stop: () => Promise<void>
}

const script = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "KinesisEndpoint.ts")

export interface EndpointProcessOptions {
  readonly latencyMs?: number
  readonly streamName?: string
  readonly shards?: number
}

export const startEndpointProcess = async (options: EndpointProcessOptions = {}): Promise<EndpointProcess> => {
  const args = [
    script, "--port", "0",
    "--endpoint-latency-ms", String(options.latencyMs ?? 0),
    "--stream", options.streamName ?? "bench",
    "--shards", String(options.shards ?? 4)
  ]
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    const lines = Readline.createInterface({ input: child.stdout })
    lines.once("line", (line) => {
      const parsed: unknown = JSON.parse(line)
      const value = typeof parsed === "object" && parsed !== null && "port" in parsed ? parsed.port : undefined
      if (typeof value === "number") resolve(value)
      else reject(new Error(`endpoint printed ${line}`))
    })
    child.once("exit", (code) => reject(new Error(`endpoint exited with ${code} before listening`)))
  })
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    pid: child.pid!,
    stats: async () => {
      const response = await fetch(`${url}/stats`)
      if (!response.ok) throw new Error(`endpoint /stats answered ${response.status}`)
      return (await response.json()) as EndpointStats
    },
    reset: async () => {
      const response = await fetch(`${url}/reset`, { method: "POST" })
      if (!response.ok) throw new Error(`endpoint /reset answered ${response.status}`)
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}

/**
 * kinesalite (a Kinesis implementation in Node, in memory) with one stream created and ACTIVE.
 * In process for the demo; as a child process for the benchmark (`node bench/Kinesalite.ts
 * --stream s --shards n` prints `{"port":N}` once the stream is active).
 */
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { createRequire } from "node:module"

interface KinesaliteOptions {
  readonly createStreamMs?: number
  readonly deleteStreamMs?: number
  readonly updateStreamMs?: number
  readonly shardLimit?: number
}

// kinesalite ships no type declarations; this is the one function it exports
const kinesalite = createRequire(import.meta.url)("kinesalite") as (options: KinesaliteOptions) => Server

export interface RunningKinesalite {
  readonly url: string
  readonly streamName: string
  readonly region: string
  /** An SDK client for this server (HTTP/1.1). */
  readonly client: KinesisClient
  readonly close: () => Promise<void>
}

export const kinesisClient = (url: string, region: string): KinesisClient =>
  new KinesisClient({
    endpoint: url,
    region,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    requestHandler: new NodeHttpHandler()
  })

/** Starts kinesalite on a free port of 127.0.0.1 and creates `streamName`, waiting until it is ACTIVE. */
export const startKinesalite = async (options: { readonly streamName: string; readonly shards: number; readonly region?: string }): Promise<RunningKinesalite> => {
  const region = options.region ?? "us-east-1"
  const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: Math.max(10, options.shards) })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const client = kinesisClient(url, region)
  await client.send(new CreateStreamCommand({ StreamName: options.streamName, ShardCount: options.shards }))
  for (let attempt = 0; ; attempt++) {
    const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: options.streamName }))
    if (out.StreamDescriptionSummary?.StreamStatus === "ACTIVE") break
    if (attempt > 200) throw new Error(`kinesalite stream ${options.streamName} did not become ACTIVE`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return {
    url,
    streamName: options.streamName,
    region,
    client,
    close: () =>
      new Promise<void>((resolve) => {
        client.destroy()
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const arg = (name: string, fallback: string): string => {
    const at = args.indexOf(name)
    return at >= 0 ? (args[at + 1] ?? fallback) : fallback
  }
  const running = await startKinesalite({ streamName: arg("--stream", "bench"), shards: Number(arg("--shards", "4")) })
  process.stdout.write(JSON.stringify({ port: Number(new URL(running.url).port) }) + "\n")
  const stop = (): void => void running.close().then(() => process.exit(0))
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
}

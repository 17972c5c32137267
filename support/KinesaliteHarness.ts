/**
 * A throwaway Kinesis (kinesalite, in memory) on a free port, for tests, the demo, the benchmark and
 * `npm run kinesis:local`: create streams, read back everything a stream holds. Dummy credentials
 * are put in the environment (the SDK's default chain finds them) unless some are already set.
 * As its own process (the benchmark runs it so, away from the measured service):
 *   node support/KinesaliteHarness.ts --stream s --shards n [--port p]
 * prints `{"port":N}` once the stream is ACTIVE.
 */
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand
} from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import kinesalite from "kinesalite"
import * as Flag from "effect/cli/Flag"
import { parseArgs } from "./Cli.ts"
import { freePort } from "./Ports.ts"

export interface StoredRecord {
  readonly shardId: string
  readonly partitionKey: string
  readonly sequenceNumber: string
  readonly data: Uint8Array
}

export interface Kinesalite {
  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_KINESIS. */
  readonly endpoint: string
  readonly port: number
  readonly region: string
  /** An SDK client for setup and inspection. */
  readonly client: KinesisClient
  /** Creates a stream and waits until it is ACTIVE. */
  readonly createStream: (name: string, shards?: number) => Promise<void>
  /** Every record of the stream, shard by shard, each shard in sequence order. */
  readonly readAll: (name: string) => Promise<ReadonlyArray<StoredRecord>>
  readonly stop: () => Promise<void>
}

export const startKinesalite = async (
  options: { readonly region?: string; readonly port?: number; readonly shardLimit?: number } = {}
): Promise<Kinesalite> => {
  process.env.AWS_ACCESS_KEY_ID ??= "test"
  process.env.AWS_SECRET_ACCESS_KEY ??= "test"
  const region = options.region ?? "us-east-1"
  const port = options.port ?? await freePort()
  const server = kinesalite({
    createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, ...(options.shardLimit === undefined ? {} : { shardLimit: options.shardLimit })
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => resolve())
  })
  const endpoint = `http://127.0.0.1:${port}`
  // HTTP/1.1: the SDK's default handler for Kinesis is HTTP/2, which kinesalite does not speak
  const client = new KinesisClient({
    region,
    endpoint,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    requestHandler: new NodeHttpHandler()
  })

  const createStream = async (name: string, shards = 1) => {
    await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }))
    for (let i = 0; i < 200; i++) {
      const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))
      if (summary.StreamDescriptionSummary?.StreamStatus === "ACTIVE") return
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    throw new Error(`stream ${name} did not become ACTIVE`)
  }

  const readAll = async (name: string) => {
    const records: Array<StoredRecord> = []
    const shards = await client.send(new ListShardsCommand({ StreamName: name }))
    for (const shard of shards.Shards ?? []) {
      const shardId = shard.ShardId!
      let iterator = (await client.send(new GetShardIteratorCommand({
        StreamName: name,
        ShardId: shardId,
        ShardIteratorType: "TRIM_HORIZON"
      }))).ShardIterator
      while (iterator !== undefined) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
        for (const record of page.Records ?? []) {
          records.push({
            shardId,
            partitionKey: record.PartitionKey!,
            sequenceNumber: record.SequenceNumber!,
            data: record.Data!
          })
        }
        // an empty page is the end (kinesalite always reports MillisBehindLatest 0, even mid-shard)
        if ((page.Records ?? []).length === 0) break
        iterator = page.NextShardIterator
      }
    }
    return records
  }

  const stop = async () => {
    client.destroy()
    await new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()))
      server.closeAllConnections()
    })
  }

  return { endpoint, port, region, client, createStream, readAll, stop }
}

if (import.meta.main) {
  const args = await parseArgs("kinesalite", "kinesalite with one stream; prints {\"port\":N} once it is ACTIVE", {
    stream: Flag.String("stream").pipe(Flag.withDefault("bench")),
    shards: Flag.Int("shards").pipe(Flag.withDefault(4)),
    port: Flag.Int("port").pipe(Flag.withDefault(0))
  })
  const running = await startKinesalite({ ...(args.port === 0 ? {} : { port: args.port }), shardLimit: Math.max(10, args.shards) })
  await running.createStream(args.stream, args.shards)
  process.stdout.write(JSON.stringify({ port: running.port }) + "\n")
  const stop = (): void => void running.stop().finally(() => process.exit(0))
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
}

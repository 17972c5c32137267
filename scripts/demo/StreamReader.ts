/**
 * Reads the demo's Kinesis stream back, as a consumer would: every shard from TRIM_HORIZON with
 * GetRecords, and hands each record body (wal2json format-version 2 JSON) to a callback with the
 * time it was read.
 */
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis"
import type { KinesisClient } from "@aws-sdk/client-kinesis"

export interface StreamReader {
  /** Records read so far, duplicates included. */
  readonly recordsRead: () => number
  readonly stop: () => Promise<void>
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export const startStreamReader = async (
  client: KinesisClient,
  streamName: string,
  onRecord: (body: Uint8Array, readAtMs: number) => void,
  onError: (error: unknown) => void
): Promise<StreamReader> => {
  const shards = (await client.send(new ListShardsCommand({ StreamName: streamName }))).Shards ?? []
  let running = true
  let read = 0
  const readShard = async (shardId: string): Promise<void> => {
    let iterator = (await client.send(new GetShardIteratorCommand({
      StreamName: streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON"
    }))).ShardIterator
    while (running && iterator !== undefined) {
      const out = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
      const readAtMs = Date.now()
      for (const record of out.Records ?? []) {
        if (record.Data !== undefined) onRecord(record.Data, readAtMs)
      }
      read += out.Records?.length ?? 0
      iterator = out.NextShardIterator
      if ((out.Records?.length ?? 0) === 0) await sleep(100)
    }
  }
  const loops = shards.map((shard) =>
    readShard(shard.ShardId!).catch((error: unknown) => {
      if (running) onError(error)
    }))
  return {
    recordsRead: () => read,
    stop: async () => {
      running = false
      await Promise.all(loops)
    }
  }
}

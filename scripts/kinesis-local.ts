/**
 * A local Kinesis for trying the service by hand: kinesalite (in memory) on a fixed port, with the
 * stream created. `npm run kinesis:local -- [--port 4567] [--stream cdc-changes] [--shards 2]`;
 * Ctrl-C stops it. Then point the service at it with AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:4567.
 */
import * as Flag from "effect/cli/Flag"
import { parseArgs } from "../support/Cli.ts"
import { startKinesalite } from "../support/KinesaliteHarness.ts"

const args = await parseArgs("kinesis-local", "kinesalite with a stream, for trying the service by hand", {
  port: Flag.Int("port").pipe(Flag.withDefault(4567)),
  stream: Flag.String("stream").pipe(Flag.withDefault("cdc-changes")),
  shards: Flag.Int("shards").pipe(Flag.withDefault(2))
})
const kinesis = await startKinesalite({ port: args.port, shardLimit: Math.max(10, args.shards) })
await kinesis.createStream(args.stream, args.shards)
process.stdout.write(
  `kinesalite on ${kinesis.endpoint} with stream ${args.stream} (${args.shards} shards); Ctrl-C stops it\n` +
    `  export AWS_ENDPOINT_URL_KINESIS=${kinesis.endpoint} KINESIS_STREAM=${args.stream} AWS_REGION=${kinesis.region} ` +
    `AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n`
)
const stop = (): void => {
  void kinesis.stop().finally(() => process.exit(0))
}
process.once("SIGINT", stop)
process.once("SIGTERM", stop)

/**
 * A local Kinesis for trying the service by hand: kinesalite (in memory) on a fixed port, with the
 * stream created. `npm run kinesis:local -- [--port 4567] [--stream cdc-changes] [--shards 2]`;
 * Ctrl-C stops it. Then point the service at it with AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:4567.
 */
import { startKinesalite } from "../test/support/KinesaliteHarness.ts"

const option = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback
}

const port = Number(option("port", "4567"))
const stream = option("stream", "cdc-changes")
const shards = Number(option("shards", "2"))
const kinesis = await startKinesalite({ port })
await kinesis.createStream(stream, shards)
process.stdout.write(
  `kinesalite on ${kinesis.endpoint} with stream ${stream} (${shards} shards); Ctrl-C stops it\n` +
    `  export AWS_ENDPOINT_URL_KINESIS=${kinesis.endpoint} KINESIS_STREAM=${stream} AWS_REGION=${kinesis.region} ` +
    `AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n`
)
const stop = (): void => {
  void kinesis.stop().finally(() => process.exit(0))
}
process.once("SIGINT", stop)
process.once("SIGTERM", stop)

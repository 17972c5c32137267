/**
 * A micro-benchmark of the wal2json decoder alone, in process: `decode()` over batches of wal2json
 * format-version 2 messages shaped like the bench's backlog (bench/Backlog.ts: bigint key, integer,
 * two texts, a timestamptz; 100-row and single-row transactions of inserts, updates and deletes),
 * written byte for byte as wal2json writes them with the service's options (include-xids,
 * include-timestamp, include-lsn, include-pk, include-transaction), cut into batches as a 64 KiB
 * socket read would bring them, each message a {@link ReadMessage} as the reader makes them (the
 * baseline's own class when it has one). Reports CPU time (user + system) and V8 heap bytes
 * allocated per change (in use after the run minus before, plus what every collection in between
 * freed; ArrayBuffer backing stores are outside the V8 heap and not counted), and collections per
 * round. With `--baseline DIR`, the decoder of that checkout runs too, interleaved round by round,
 * and every event of both (every field, body bytes) is compared first.
 *
 *   node --expose-gc bench/Wal2JsonDecode.ts [--baseline /path/to/checkout] [--changes N] [--rounds N]
 */
import * as Path from "node:path"
import * as DecoderRounds from "./DecoderRounds.ts"
import { type Decoder, ReadMessage } from "../src/replication/Decoder.ts"
import * as Wal2JsonDecoder from "../src/replication/Wal2JsonDecoder.ts"

const { argument } = DecoderRounds
const changes = Number(argument("--changes") ?? 100_000)
const rounds = Number(argument("--rounds") ?? 7)
const baselineDir = argument("--baseline")

type Make = (options: Wal2JsonDecoder.Options) => Decoder
type Read = typeof ReadMessage
const implementations: Array<{ readonly name: string; readonly make: Make; readonly read: Read }> = [
  { name: "this", make: Wal2JsonDecoder.make, read: ReadMessage }
]
if (baselineDir !== undefined) {
  const module = (await import(Path.resolve(baselineDir, "src/replication/Wal2JsonDecoder.ts"))) as typeof Wal2JsonDecoder
  const decoderModule = (await import(Path.resolve(baselineDir, "src/replication/Decoder.ts"))) as { readonly ReadMessage?: Read }
  implementations.push({ name: "baseline", make: module.make, read: decoderModule.ReadMessage ?? ReadMessage })
}

// --- the workload: wal2json's own text ---------------------------------------------------------------

const lsnText = (lsn: bigint): string => `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`

/** A timestamptz as PostgreSQL writes it (ISO, UTC session): the fraction's trailing zeros trimmed. */
const timestampText = (micros: number): string => {
  const date = new Date(Math.floor(micros / 1000))
  const fraction = String(micros % 1_000_000).padStart(6, "0").replace(/0+$/, "")
  return `${date.toISOString().slice(0, 19).replace("T", " ")}${fraction === "" ? "" : `.${fraction}`}+00`
}

const hex = (n: number): string => {
  let s = ""
  let x = (n * 2654435761) >>> 0
  while (s.length < 220) {
    x = (x * 1103515245 + 12345) >>> 0
    s += x.toString(16).padStart(8, "0")
  }
  return s
}
const statuses = ["new", "paid", "shipped", "closed"]
const pk = `"pk":[{"name":"id","type":"bigint"}]`
const columns = (id: number, salt: number, at: string): string =>
  `"columns":[{"name":"id","type":"bigint","value":${id}},{"name":"account","type":"integer","value":${id % 1000}},` +
  `{"name":"status","type":"text","value":"${salt === 0 ? statuses[id % 4]! : salt === 1 ? "updated" : "touched"}"},` +
  `{"name":"payload","type":"text","value":"${hex(id + salt).slice(0, 10 + ((id * 7919 + salt) % 200))}"},` +
  `{"name":"updated_at","type":"timestamp with time zone","value":"${at}"}]`
const identity = (id: number): string => `"identity":[{"name":"id","type":"bigint","value":${id}}]`

interface Message {
  readonly lsn: bigint
  readonly text: string
}
const messages: Array<Message> = []
let lsn = 0x1_0000_0100n
let xid = 5000
let micros = Date.UTC(2026, 10, 29, 8, 0, 0) * 1000
let written = 0
type Row = (head: string, at: string) => string
const transaction = (rows: ReadonlyArray<Row>): void => {
  const begin = lsn
  const commitLsn = lsn + BigInt(rows.length * 360 + 40)
  micros += 137
  const at = timestampText(micros)
  const envelope = `"xid":${xid},"timestamp":"${at}","lsn":"${lsnText(commitLsn)}","nextlsn":"${lsnText(commitLsn + 48n)}"}`
  messages.push({ lsn: begin, text: `{"action":"B",${envelope}` })
  for (const row of rows) {
    lsn += 360n
    messages.push({ lsn, text: row(`"xid":${xid},"timestamp":"${at}","lsn":"${lsnText(lsn)}","schema":"public","table":"bench_items"`, at) })
  }
  messages.push({ lsn: commitLsn, text: `{"action":"C",${envelope}` })
  lsn = commitLsn + 48n
  xid++
  written += rows.length
}
const insert = (id: number): Row => (head, at) => `{"action":"I",${head},${columns(id, 0, at)},${pk}}`
const update = (id: number, salt: number): Row => (head, at) => `{"action":"U",${head},${columns(id, salt, at)},${identity(id)},${pk}}`
const remove = (id: number): Row => (head) => `{"action":"D",${head},${identity(id)},${pk}}`
// the backlog's mix: 40% multi-row inserts, 15% single inserts, 20% multi-row updates, 15% single
// updates, 10% deletes (half single, half multi-row)
let nextId = 1
while (written < changes) {
  const ids = Array.from({ length: 100 }, () => nextId++)
  transaction(ids.map(insert))
  for (let i = 0; i < 37; i++) transaction([insert(nextId++)])
  transaction(ids.slice(0, 50).map((id) => update(id, 1)))
  for (let i = 0; i < 37; i++) transaction([update(ids[50 + i]!, 2)])
  for (let i = 0; i < 12; i++) transaction([remove(ids[90 + (i % 10)]!)])
  transaction(ids.slice(60, 72).map(remove))
}

const encoder = new TextEncoder()
const reads = DecoderRounds.socketReads(messages.map((m) => ({ lsn: m.lsn, data: encoder.encode(m.text) })))
const batchesByName = new Map(implementations.map(({ name, read }) => [name, DecoderRounds.readMessages(reads, read)]))

// --- measuring (bench/DecoderRounds.ts) ----------------------------------------------------------

const options: Wal2JsonDecoder.Options = { addTables: [], filterTables: [] }

DecoderRounds.run(
  implementations.map(({ name, make }) => ({ name, decoder: () => make(options), batches: batchesByName.get(name)! })),
  { changes: written, messages: messages.length, rounds }
)

/**
 * A micro-benchmark of the pgoutput decoder alone, in process: `decode()` over batches of pgoutput
 * messages shaped like the bench's backlog (bench/Backlog.ts: bigint key, integer, two texts, a
 * timestamptz; 100-row and single-row transactions of inserts, updates and deletes), cut into
 * batches as a 64 KiB socket read would bring them, each message a {@link ReadMessage} as the
 * reader makes them (the baseline's own class when it has one; else this one's, and a decoder that
 * asks for `data` makes a view of the payload, as the reader did before). Reports CPU time (user + system) and V8 heap bytes allocated per change (in use after
 * the run minus before, plus what every collection in between freed; ArrayBuffer backing stores are
 * outside the V8 heap and not counted). With `--baseline DIR`, the decoder of that checkout runs
 * too, interleaved round by round, and every record of both is compared first.
 *
 *   node --expose-gc bench/PgOutputDecode.ts [--baseline /path/to/checkout] [--changes N] [--rounds N]
 */
import * as Path from "node:path"
import * as DecoderRounds from "./DecoderRounds.ts"
import { type Decoder, ReadMessage, type WalMessage } from "../src/replication/Decoder.ts"
import * as PgOutputDecoder from "../src/replication/PgOutputDecoder.ts"
import * as M from "../support/PgOutputMessages.ts"

const { argument } = DecoderRounds
const changes = Number(argument("--changes") ?? 100_000)
const rounds = Number(argument("--rounds") ?? 7)
const baselineDir = argument("--baseline")

type Make = (options: PgOutputDecoder.Options) => Decoder
/** A checkout's reader message class (one from before it had one: this checkout's, whose view is then made on demand). */
type Read = typeof ReadMessage
const implementations: Array<{ readonly name: string; readonly make: Make; readonly read: Read }> = [
  { name: "this", make: PgOutputDecoder.make, read: ReadMessage }
]
if (baselineDir !== undefined) {
  const module = (await import(Path.resolve(baselineDir, "src/replication/PgOutputDecoder.ts"))) as typeof PgOutputDecoder
  const decoderModule = (await import(Path.resolve(baselineDir, "src/replication/Decoder.ts"))) as { readonly ReadMessage?: Read }
  implementations.push({ name: "baseline", make: module.make, read: decoderModule.ReadMessage ?? ReadMessage })
}

// --- the workload ------------------------------------------------------------------------------

const RELATION = 16400
const relationMessage = M.relation(RELATION, "public", "bench_items", "d", [
  { flags: 1, name: "id", oid: 20, typmod: -1 },
  { flags: 0, name: "account", oid: 23, typmod: -1 },
  { flags: 0, name: "status", oid: 25, typmod: -1 },
  { flags: 0, name: "payload", oid: 25, typmod: -1 },
  { flags: 0, name: "updated_at", oid: 1184, typmod: -1 }
])

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
const row = (id: number, salt: number): Array<M.Value> => [
  M.text(String(id)),
  M.text(String(id % 1000)),
  M.text(salt === 0 ? statuses[id % 4]! : salt === 1 ? "updated" : "touched"),
  M.text(hex(id + salt).slice(0, 10 + ((id * 7919 + salt) % 200))),
  M.text(`2026-11-29 08:${String(id % 60).padStart(2, "0")}:12.${String(100000 + (id % 899999))}+00`)
]

const messages: Array<WalMessage> = [{ lsn: 0x1_0000_0000n, data: relationMessage }]
let lsn = 0x1_0000_0100n
let xid = 5000
let written = 0
const micros = 849_000_000_000_000n
const transaction = (rows: ReadonlyArray<Uint8Array>): void => {
  const begin = lsn
  const commitLsn = lsn + BigInt(rows.length * 160 + 40)
  messages.push({ lsn: begin, data: M.begin(commitLsn, micros + BigInt(xid), xid) })
  for (const data of rows) {
    lsn += 160n
    messages.push({ lsn, data })
  }
  messages.push({ lsn: commitLsn, data: M.commit(commitLsn, commitLsn + 48n, micros + BigInt(xid)) })
  lsn = commitLsn + 48n
  xid++
  written += rows.length
}
// the backlog's mix: 40% multi-row inserts, 15% single inserts, 20% multi-row updates, 15% single
// updates, 10% deletes (half single, half multi-row)
let nextId = 1
while (written < changes) {
  const ids = Array.from({ length: 100 }, () => nextId++)
  transaction(ids.map((id) => M.insert(RELATION, row(id, 0))))
  for (let i = 0; i < 37; i++) transaction([M.insert(RELATION, row(nextId++, 0))])
  transaction(ids.slice(0, 50).map((id) => M.update(RELATION, row(id, 1))))
  for (let i = 0; i < 37; i++) transaction([M.update(RELATION, row(ids[50 + i]!, 2))])
  for (let i = 0; i < 12; i++) transaction([M.remove(RELATION, "K", [M.text(String(ids[90 + (i % 10)]!)), null, null, null, null])])
  transaction(ids.slice(60, 72).map((id) => M.remove(RELATION, "K", [M.text(String(id)), null, null, null, null])))
}

const reads = DecoderRounds.socketReads(messages)
const batchesByName = new Map(implementations.map(({ name, read }) => [name, DecoderRounds.readMessages(reads, read)]))

// --- measuring (bench/DecoderRounds.ts) ----------------------------------------------------------

DecoderRounds.run(
  implementations.map(({ name, make }) => ({ name, decoder: () => make({ publication: "bench" }), batches: batchesByName.get(name)! })),
  { changes: written, messages: messages.length, rounds }
)

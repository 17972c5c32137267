/**
 * The wal2json decoder (format-version 2): one XLogData payload is one JSON object describing one
 * change or transaction boundary. Each payload is read once from its bytes, without JSON.parse
 * ({@link Wal2JsonMessage}: checked to be JSON, the fields the pipeline needs located), for its
 * action, xid, table, row key ({@link Wal2JsonKeys}) and commit time. The record body is the payload bytes as received
 * with the record's position (`"commit_lsn"`, from the B message's `lsn`, and `"commit_idx"`)
 * spliced in after the opening `{`; the bodies of one batch are written into one new buffer.
 * The row key's columns come from the catalog ({@link KeyCatalog}), else from wal2json's `pk`; an
 * update whose old key (its `identity`) differs from its new one becomes a delete and an insert,
 * cut from the payload's own bytes. With a deferrable key, a record of a row that still held a key
 * another row took in the same transaction is left out ({@link DeferredKeys}). A message that is
 * not valid JSON only because wal2json wrote a quoted type name unescaped is published repaired
 * ({@link Wal2JsonRepair}).
 */
import * as Result from "effect/Result"
import type { Action, ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import { DecodeError } from "../Errors.ts"
import * as JsonScan from "../format/JsonScan.ts"
import { type Decoder, ReadMessage, type WalMessage } from "./Decoder.ts"
import * as StartOptions from "./StartOptions.ts"
import * as DeferredKeys from "./DeferredKeys.ts"
import * as KeyCatalog from "./KeyCatalog.ts"
import * as RecordBodies from "./RecordBodies.ts"
import * as Wal2JsonKeys from "./Wal2JsonKeys.ts"
import * as Wal2JsonMessage from "./Wal2JsonMessage.ts"
import { Field, List } from "./Wal2JsonMessage.ts"
import * as Wal2JsonRepair from "./Wal2JsonRepair.ts"
import * as Wal2JsonTime from "./Wal2JsonTime.ts"

export type Options = Parameters<typeof StartOptions.wal2json>[0] & {
  /** Row keys from the catalog; a table it does not know is keyed by wal2json's `pk`. */
  readonly keys?: KeyCatalog.KeyCatalog | undefined
  /** PUBLISH_TRANSACTION_RECORDS: a BEGIN record before a transaction's first record, a COMMIT after its last. */
  readonly transactionRecords?: boolean | undefined
}

/** The START_REPLICATION options clause the decoder expects the stream to be produced with. */
export const startOptions = (options: Options): string => StartOptions.clause(StartOptions.wal2json(options))

/** A wal2json table pattern, `schema.table` with `*` for any and `\\` escaping `.`, `,` or `*`: its two parts. */
const patternParts = (pattern: string): readonly [schema: string | undefined, table: string | undefined] => {
  const parts: Array<string | undefined> = [""]
  let wildcard = [false]
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === "\\" && i + 1 < pattern.length) parts[parts.length - 1] += pattern[++i]!
    else if (c === "." && parts.length === 1) {
      parts.push("")
      wildcard = [...wildcard, false]
    } else if (c === "*" && parts[parts.length - 1] === "") wildcard[wildcard.length - 1] = true
    else parts[parts.length - 1] += c
  }
  return [wildcard[0] ? undefined : parts[0], wildcard[1] ? undefined : parts[1]]
}

/** Whether wal2json streams a table under `add-tables` / `filter-tables`, as wal2json matches them. */
export const covers = (options: Parameters<typeof StartOptions.wal2json>[0]) => {
  const matcher = (patterns: ReadonlyArray<string>) => {
    const parsed = patterns.map(patternParts)
    return (schema: string, table: string) =>
      parsed.some(([s, t]) => (s === undefined || s === schema) && (t === undefined || t === table))
  }
  const added = matcher(options.addTables)
  const filtered = matcher(options.filterTables)
  return (schema: string, table: string): boolean =>
    (options.addTables.length === 0 || added(schema, table)) && !filtered(schema, table)
}

/**
 * For the rare message that is not JSON (and for an oversized one's head): its text. Not fatal:
 * bytes that are not valid UTF-8 become U+FFFD here only; the body keeps them as sent.
 */
const lenient = new TextDecoder("utf-8")
const emptyBody = new Uint8Array(0)
const emptyBuffer = Buffer.alloc(0)

const oversizedAction = /^\{"action":"(\w)"/
const oversizedXid = /^\{"action":"\w","xid":(\d+)/
const oversizedTable = /"schema":("(?:[^"\\]|\\.)*"),"table":("(?:[^"\\]|\\.)*")/

const jsonString = (quoted: string): string => {
  try {
    return JSON.parse(quoted) as string
  } catch {
    return quoted
  }
}

const { Kind } = JsonScan

/** {@link Wal2JsonMessage.read}, `undefined` when the bytes are not JSON. */
const readOrUndefined = (m: Wal2JsonMessage.Message, bytes: Buffer): boolean | undefined => {
  try {
    return Wal2JsonMessage.read(m, bytes, 0, bytes.length)
  } catch (error) {
    if (error instanceof JsonScan.Malformed) return undefined
    throw error
  }
}

/** What JSON.parse says of a text that is not JSON (the message of a message dropped as unreadable). */
const parseError = (json: string, malformed: JsonScan.Malformed): string => {
  try {
    JSON.parse(json)
  } catch (error) {
    return (error as Error).message
  }
  return malformed.message
}

const isAction = (value: unknown): value is Action =>
  value === "I" || value === "U" || value === "D" || value === "T" || value === "M" || value === "B" || value === "C"

/** The action a message's `action` field names (a one-letter string), else `undefined`. */
const actionOf = (m: Wal2JsonMessage.Message): Action | undefined => {
  if (m.kinds[Field.action] !== Kind.String) return undefined
  const start = m.starts[Field.action]!
  if (m.ends[Field.action]! - start === 3) {
    switch (m.bytes[start + 1]) {
      case 0x49: return "I"
      case 0x55: return "U"
      case 0x44: return "D"
      case 0x54: return "T"
      case 0x4d: return "M"
      case 0x42: return "B"
      case 0x43: return "C"
    }
  }
  // an escaped letter is that letter too
  const text = Wal2JsonMessage.stringOf(m, Field.action)
  return isAction(text) ? text : undefined
}

/**
 * An update that changed the row's key as a delete of the old key and an insert of the new row,
 * cut from the server's bytes (never re-serialized): the update's envelope with its action
 * replaced, then its `identity` (for the delete) or its `columns` (for the insert), then its `pk`.
 * Returns each body without its first byte and action (`{"action":"U"`). Field names found by
 * position are safe: only column values hold unescaped JSON, and `columns` is the first field after
 * the envelope's escaped strings, `identity` and `pk` come after every value.
 */
const splitUpdate = (data: Uint8Array): { readonly remove: Uint8Array; readonly insert: Uint8Array } | undefined => {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const columnsAt = bytes.indexOf(`,"columns":[`)
  const identityAt = bytes.lastIndexOf(`,"identity":[`)
  const pkAt = bytes.lastIndexOf(`,"pk":[`)
  if (!bytes.subarray(0, updateStart.length).equals(updateStart) || columnsAt < 0 || identityAt < columnsAt || pkAt < identityAt) {
    return undefined
  }
  const envelope = bytes.subarray(updateStart.length, columnsAt)
  const pk = bytes.subarray(pkAt)
  return {
    remove: Buffer.concat([envelope, bytes.subarray(identityAt, pkAt), pk]),
    insert: Buffer.concat([envelope, bytes.subarray(columnsAt, identityAt), pk])
  }
}

const updateStart = Buffer.from(`{"action":"U"`)

/**
 * The events of a batch as they are decoded, in a list kept from batch to batch (it keeps its
 * room): the batch gets them as one array of their exact size, not one grown as they came.
 */
class EventList {
  private readonly items: Array<ChangeEvent | undefined> = []
  private count = 0
  push(event: ChangeEvent): void {
    this.items[this.count++] = event
  }
  /** The events pushed since the last take, as a new array; the list then holds none. */
  take(): Array<ChangeEvent> {
    const out = this.items.slice(0, this.count) as Array<ChangeEvent>
    this.clear()
    return out
  }
  clear(): void {
    this.items.fill(undefined, 0, this.count)
    this.count = 0
  }
}

/** An event while its batch is decoded: its body is set once the batch's bodies are written. */
type Draft = { -readonly [K in keyof ChangeEvent]: ChangeEvent[K] }

/** Builds a wal2json decoder. */
export const make = (options: Options): Decoder => {
  const catalog = options.keys ?? KeyCatalog.empty
  // Every change of a transaction carries the commit timestamp text; parse it once per transaction.
  const lastTimestamp = new Wal2JsonMessage.LastBytes()
  let lastTimestampMs: number | undefined
  let transactionTimeMs: number | undefined
  // The open transaction's commit LSN (wal2json's B carries it as "lsn") and next record index.
  let commitLsn: Lsn.Lsn | undefined
  let commitLsnText = ""
  let nextIdx = 0
  /** The open transaction's B message (for its BEGIN record), and whether that record was written. */
  let begin: { readonly lsn: Lsn.Lsn; readonly xid: number | undefined; readonly envelope: string } | undefined
  let begun = false
  /** Rows that arrived at a key of a deferrable-key table in the open transaction. */
  const sharedKeys = new DeferredKeys.TransactionKeys()

  /** The message being decoded, read from its bytes; and the schema and table names, made once. */
  const m = new Wal2JsonMessage.Message()
  /**
   * The bytes messages are read in: a Buffer over the whole ArrayBuffer of the last message's read
   * (the messages of one socket read share one; always a Buffer, so the scans see one array type),
   * made again only when a message of another read comes. `bytesOffset`: where the last message's
   * `bytes` start in it.
   */
  let whole: Buffer = emptyBuffer
  let wholeOf: ArrayBufferLike | undefined
  let lastBytes: Uint8Array | undefined
  let bytesOffset = 0
  const use = (bytes: Uint8Array): void => {
    lastBytes = bytes
    bytesOffset = bytes.byteOffset
    const arrayBuffer = bytes.buffer
    if (arrayBuffer !== wholeOf) {
      wholeOf = arrayBuffer
      whole = Buffer.from(arrayBuffer, 0, arrayBuffer.byteLength)
    }
  }
  const names = JsonScan.makeInterner()
  /** The events of the batch being decoded. */
  const scratch = new EventList()
  /** The bodies of the batch being decoded. */
  const bodies = new RecordBodies.Batch()
  /** The date and time to the second of the last commit time read. */
  const seconds = new Wal2JsonTime.Seconds()
  const lastSchema = new Wal2JsonMessage.LastString()
  const lastTable = new Wal2JsonMessage.LastString()
  /** The catalog's entry for the last table looked up (changes come in runs of one table). */
  let knownSchema: string | undefined
  let knownTable: string | undefined
  let known: KeyCatalog.TableKey | undefined

  /** The commit time the message's `timestamp` says (the open transaction's when it has none). */
  const commitTime = (): number | undefined => {
    if (m.kinds[Field.timestamp] !== Kind.String) return transactionTimeMs
    const start = m.starts[Field.timestamp]!
    const end = m.ends[Field.timestamp]!
    if (!lastTimestamp.same(m.bytes, start, end)) {
      lastTimestamp.keep(m.bytes, start, end)
      lastTimestampMs = Wal2JsonTime.millisAt(m.bytes, start, end, seconds)
    }
    return lastTimestampMs
  }

  /**
   * A message dropped for its size, or because it is not JSON: what its first bytes say
   * (format-version 2 writes action first).
   */
  const oversized = (
    lsn: Lsn.Lsn,
    head: Uint8Array,
    bytes: number,
    why: "oversizedBytes" | "unreadableBytes" = "oversizedBytes"
  ): Result.Result<ChangeEvent, DecodeError> => {
    const text = lenient.decode(head.subarray(0, 4096))
    const action = oversizedAction.exec(text)?.[1]
    if (!isAction(action) || action === "B" || action === "C") {
      return Result.fail(DecodeError.malformed(lsn, `a wal2json message of ${bytes} bytes without a readable action`))
    }
    const names = oversizedTable.exec(text)
    const xid = oversizedXid.exec(text)?.[1]
    // it keeps its place: the records after it have the indexes they would have without a limit
    const inTransaction = commitLsn !== undefined
    return Result.succeed({
      lsn,
      ackLsn: lsn,
      xid: xid === undefined ? undefined : Number(xid),
      commitLsn: inTransaction ? commitLsn! : lsn,
      commitIdx: inTransaction ? nextIdx++ : 0,
      action,
      schema: names === null ? "" : jsonString(names[1]!),
      table: names === null ? (action === "M" ? "" : "(unknown)") : jsonString(names[2]!),
      pk: undefined,
      commitTimeMs: transactionTimeMs,
      body: emptyBody,
      [why]: bytes
    })
  }

  const decodeBatch = (messages: ReadonlyArray<WalMessage>): Result.Result<ReadonlyArray<ChangeEvent>, DecodeError> => {
    const events = scratch
    /** A transaction record: BEGIN before the transaction's first record, COMMIT after its last. */
    const transactionRecord = (action: "BEGIN" | "COMMIT", lsn: Lsn.Lsn, tail: string) => {
      const commitIdx = nextIdx++
      const event: Draft = {
        lsn, ackLsn: lsn, xid: begin!.xid, commitLsn: commitLsn!, commitIdx, action, schema: "", table: "", pk: undefined,
        commitTimeMs: transactionTimeMs, body: emptyBody,
        partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
      }
      events.push(event)
      bodies.part(event, `${RecordBodies.positionPrefix(commitLsnText, commitIdx)}"action":"${action[0]}",${begin!.envelope}${tail}}`, undefined)
    }
    /** Writes the BEGIN record when the open transaction is about to get its first record. */
    const beforeRecord = () => {
      if (begin === undefined || begun || commitLsn === undefined) return
      begun = true
      transactionRecord("BEGIN", begin.lsn, "")
    }
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!
      const { lsn, oversizedBytes } = message
      if (oversizedBytes !== undefined) {
        beforeRecord()
        const event = oversized(lsn, message.data, oversizedBytes)
        if (Result.isFailure(event)) return Result.fail(event.failure)
        events.push(event.success)
        continue
      }
      // the message in place: `[start, end)` of `bytes`, no view made of it
      let bytes: Buffer
      let start: number
      let end: number
      if (message instanceof ReadMessage) {
        if (message.bytes !== lastBytes) use(message.bytes)
        start = bytesOffset + message.start
        end = bytesOffset + message.end
      } else {
        const data = message.data
        use(data)
        start = bytesOffset
        end = bytesOffset + data.length
      }
      bytes = whole
      let isObject: boolean
      try {
        isObject = Wal2JsonMessage.read(m, bytes, start, end)
      } catch (malformed) {
        if (!(malformed instanceof JsonScan.Malformed)) throw malformed
        // as rare as a message that is not JSON: the one thing wal2json is known to write wrong, repaired
        const data = bytes.subarray(start, end)
        const json = lenient.decode(data)
        const repaired = Wal2JsonRepair.repairTypes(json)
        const repairedBytes = repaired === undefined ? undefined : Buffer.from(repaired)
        const readable = repairedBytes === undefined ? undefined : readOrUndefined(m, repairedBytes)
        if (repairedBytes === undefined || readable === undefined) {
          // a change still not JSON is dropped (logged and counted), never a stop at the same LSN for ever
          if (data[0] === 0x7b /* { */ && oversizedAction.test(json)) {
            beforeRecord()
            const event = oversized(lsn, data, data.byteLength, "unreadableBytes")
            if (Result.isSuccess(event)) {
              events.push(event.success)
              continue
            }
          }
          return Result.fail(DecodeError.malformed(lsn, `not a wal2json message (${parseError(json, malformed)})`))
        }
        isObject = readable
        bytes = repairedBytes
        start = 0
        end = repairedBytes.length
      }
      if (!isObject) {
        return Result.fail(DecodeError.malformed(lsn, "not a wal2json message (not a JSON object)"))
      }
      const action = actionOf(m)
      if (action === undefined) {
        return Result.fail(DecodeError.malformed(lsn, `unknown wal2json action ${JSON.stringify(Wal2JsonMessage.parsedOf(m, Field.action)) ?? "(none)"}`))
      }
      const xid = Wal2JsonMessage.numberOf(m, Field.xid)
      if (action === "B" || action === "C") {
        const timeMs = commitTime()
        // the COMMIT record, after the last record of a transaction that had one
        if (action === "C" && begin !== undefined && begun) transactionRecord("COMMIT", lsn, `,"changes":${nextIdx - 1}`)
        transactionTimeMs = action === "B" ? timeMs : undefined
        if (action === "B") {
          const parsedCommitLsn = Wal2JsonMessage.lsnOf(m, Field.lsn)
          if (parsedCommitLsn === undefined) {
            return Result.fail(DecodeError.malformed(lsn, `wal2json "B" message without its commit "lsn"`))
          }
          commitLsn = parsedCommitLsn
          commitLsnText = Wal2JsonMessage.stringOf(m, Field.lsn)!
          nextIdx = 0
          sharedKeys.reset()
          if (options.transactionRecords === true) {
            begin = { lsn, xid, envelope: `"xid":${xid ?? null},"timestamp":${JSON.stringify(Wal2JsonMessage.parsedOf(m, Field.timestamp) ?? null)}` }
            begun = false
          }
        }
        const nextLsn = action === "C" ? Wal2JsonMessage.lsnOf(m, Field.nextlsn) : undefined
        events.push({
          lsn, ackLsn: nextLsn ?? lsn, xid, commitLsn: commitLsn ?? lsn, commitIdx: -1, action, schema: "", table: "",
          pk: undefined, commitTimeMs: timeMs, body: emptyBody
        })
        if (action === "C") {
          commitLsn = undefined
          begin = undefined
        }
        continue
      }
      let schema = ""
      let table = ""
      if (action !== "M") {
        if (m.kinds[Field.schema] !== Kind.String || m.kinds[Field.table] !== Kind.String) {
          return Result.fail(DecodeError.malformed(lsn, `wal2json "${action}" message without schema and table`))
        }
        schema = Wal2JsonMessage.stringOfCached(m, Field.schema, lastSchema, names)!
        table = Wal2JsonMessage.stringOfCached(m, Field.table, lastTable, names)!
      }
      if (bytes[start] !== 0x7b /* { */) {
        return Result.fail(DecodeError.malformed(lsn, "not a wal2json message (does not start with {)"))
      }
      // a non-transactional message is sent on its own, at its own position
      const inTransaction = commitLsn !== undefined && !(action === "M" && m.kinds[Field.transactional] === Kind.False)
      if (inTransaction) beforeRecord()
      const commitTimeMs = action === "M" && m.kinds[Field.timestamp] === Kind.Null ? undefined : commitTime()
      let keys: Wal2JsonKeys.RowKeys | undefined
      /** Whether rows of this table may share a key within the transaction (a deferrable primary key). */
      let deferrable = false
      if (action === "I" || action === "U" || action === "D") {
        if (schema !== knownSchema || table !== knownTable) {
          known = KeyCatalog.lookup(catalog, schema, table)
          knownSchema = schema
          knownTable = table
        }
        keys = Wal2JsonKeys.rowKeys(m, action, known !== undefined && known.columns.length > 0 ? known.columns : Wal2JsonKeys.pkNames(m))
        deferrable = inTransaction && known !== undefined && known.deferrablePrimaryKey && known.identity !== "i"
      }
      const split = keys !== undefined && keys.oldKey !== undefined && keys.key !== undefined && keys.oldKey !== keys.key
        ? splitUpdate(bytes.subarray(start, end))
        : undefined
      if (deferrable && keys!.key !== undefined) {
        const rowKey = `${schema}.${table}:`
        const old = Wal2JsonKeys.imageOf(m, List.identity)
        if (split !== undefined) {
          // the new holder of the key may be another row's old key: the departure is left out when so
          const departs = sharedKeys.concerns(rowKey + keys!.oldKey, old, "departed")
          sharedKeys.arrived(rowKey + keys!.key, new Map([...old, ...Wal2JsonKeys.imageOf(m, List.columns)]))
          if (!departs) {
            const event: Draft = {
              lsn, ackLsn: lsn, xid, commitLsn: commitLsn!, commitIdx: nextIdx, action: "I", schema, table, pk: keys!.key,
              commitTimeMs, body: emptyBody,
              partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
            }
            events.push(event)
            bodies.part(event, `${RecordBodies.positionPrefix(commitLsnText, nextIdx++)}"action":"I"`, split.insert)
            continue
          }
        } else if (action === "I") sharedKeys.arrived(rowKey + keys!.key, Wal2JsonKeys.imageOf(m, List.columns))
        else if (!sharedKeys.concerns(rowKey + keys!.key, old, action === "D" ? "departed" : { updated: Wal2JsonKeys.imageOf(m, List.columns) })) {
          // a record of the row that still held a key another row took in this transaction: left out
          continue
        }
      }
      if (split !== undefined && inTransaction) {
        // a key change: a delete under the old key, then an insert under the new one, at adjacent positions
        const base = {
          lsn, ackLsn: lsn, xid, commitLsn: commitLsn!, schema, table, commitTimeMs, body: emptyBody,
          partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
        }
        const removeIdx = nextIdx++
        const insertIdx = nextIdx++
        const remove: Draft = { ...base, commitIdx: removeIdx, action: "D", pk: keys!.oldKey }
        const insert: Draft = { ...base, commitIdx: insertIdx, action: "I", pk: keys!.key }
        events.push(remove)
        events.push(insert)
        bodies.part(remove, `${RecordBodies.positionPrefix(commitLsnText, removeIdx)}"action":"D"`, split.remove)
        bodies.part(insert, `${RecordBodies.positionPrefix(commitLsnText, insertIdx)}"action":"I"`, split.insert)
        continue
      }
      const recordLsn = inTransaction ? commitLsn! : lsn
      const recordIdx = inTransaction ? nextIdx++ : 0
      const event: Draft = {
        lsn,
        ackLsn: lsn,
        xid,
        commitLsn: recordLsn,
        commitIdx: recordIdx,
        action,
        schema,
        table,
        pk: keys?.key,
        commitTimeMs,
        body: emptyBody,
        // the pipeline's slots, unset
        partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
      }
      events.push(event)
      bodies.spliced(event, inTransaction ? commitLsnText : Lsn.format(recordLsn), recordIdx, bytes, start, end)
    }
    // the payloads become the record bodies as they are, behind their positions
    bodies.write()
    // the batch's events as one array of their exact number (the list they were added to is kept)
    return Result.succeed(events.take())
  }

  const decode = (messages: ReadonlyArray<WalMessage>): Result.Result<ReadonlyArray<ChangeEvent>, DecodeError> => {
    try {
      return decodeBatch(messages)
    } finally {
      // nothing of the batch kept between reads: not its last read's bytes, nor the payloads of a
      // batch that failed
      m.bytes = emptyBody
      whole = emptyBuffer
      wholeOf = undefined
      lastBytes = undefined
      bodies.clear()
      scratch.clear()
    }
  }

  return { plugin: "wal2json", startOptions: startOptions(options), decode }
}

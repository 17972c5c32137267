/**
 * The wal2json decoder as it was before it read messages without JSON.parse (src/replication/
 * Wal2JsonDecoder.ts at b705fd1): every payload parsed whole with JSON.parse. Kept only as the
 * reference the property test compares the byte-scanning decoder with (test/replication/
 * wal2json-scan.test.ts); the service never uses it.
 */
import * as Result from "effect/Result"
import type { Action, ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import { DecodeError } from "../../src/Errors.ts"
import type { Decoder, WalMessage } from "../../src/replication/Decoder.ts"
import * as StartOptions from "../../src/replication/StartOptions.ts"
import * as CommitTimestamp from "../../src/replication/CommitTimestamp.ts"
import * as DeferredKeys from "../../src/replication/DeferredKeys.ts"
import * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as RecordBodies from "../../src/replication/RecordBodies.ts"
import * as Wal2JsonRepair from "../../src/replication/Wal2JsonRepair.ts"

export type Options = Parameters<typeof StartOptions.wal2json>[0] & {
  /** Row keys from the catalog; a table it does not know is keyed by wal2json's `pk`. */
  readonly keys?: KeyCatalog.KeyCatalog | undefined
  /** PUBLISH_TRANSACTION_RECORDS: a BEGIN record before a transaction's first record, a COMMIT after its last. */
  readonly transactionRecords?: boolean | undefined
}

/** The START_REPLICATION options clause the decoder expects the stream to be produced with. */
export const startOptions = (options: Options): string => StartOptions.clause(StartOptions.wal2json(options))

/**
 * Reads the fields the pipeline needs. Not fatal: bytes that are not valid UTF-8 (a logical
 * message's bytea content, a SQL_ASCII database) become U+FFFD here only; the body keeps them as sent.
 */
const lenient = new TextDecoder("utf-8")
const emptyBody = new Uint8Array(0)

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

interface Column {
  readonly name?: unknown
  readonly type?: unknown
  readonly value?: unknown
}

/** The fields of a wal2json v2 message this decoder reads (everything else stays in the body). */
interface Wal2JsonMessage {
  readonly action?: unknown
  readonly xid?: unknown
  readonly timestamp?: unknown
  readonly lsn?: unknown
  readonly nextlsn?: unknown
  readonly transactional?: unknown
  readonly schema?: unknown
  readonly table?: unknown
  readonly columns?: ReadonlyArray<Column>
  readonly identity?: ReadonlyArray<Column>
  readonly pk?: ReadonlyArray<Column>
}

const isAction = (value: unknown): value is Action =>
  value === "I" || value === "U" || value === "D" || value === "T" || value === "M" || value === "B" || value === "C"

/** Integer types whose JSON numbers print back exactly as wal2json wrote them (when safe integers). */
const integerTypes = new Set(["smallint", "integer", "bigint", "oid"])

/** A JSON number kept as the text wal2json wrote (used only to render primary keys exactly). */
class NumberSource {
  readonly source: string
  constructor(source: string) {
    this.source = source
  }
}

const keepNumberSource = (_key: string, value: unknown, context?: { readonly source?: string }): unknown =>
  typeof value === "number" && context?.source !== undefined ? new NumberSource(context.source) : value

const findColumn = (columns: ReadonlyArray<Column> | undefined, name: unknown): Column | undefined => {
  if (!Array.isArray(columns)) return undefined
  for (const column of columns as ReadonlyArray<Column>) {
    if (column !== null && typeof column === "object" && column.name === name) return column
  }
  return undefined
}

/** The names in wal2json's `pk` list (the immediate primary key). */
const pkNames = (message: Wal2JsonMessage): ReadonlyArray<unknown> => {
  const pk = message.pk
  if (!Array.isArray(pk)) return []
  return pk.map((key: Column) => (key !== null && typeof key === "object" ? key.name : undefined))
}

/**
 * The key columns' values as a JSON array, each read from `row`, else from `fallback`. `undefined`
 * when there are no key columns or one is absent; "inexact" when a number may not print back as
 * wal2json wrote it (then the caller parses again keeping each number's source text).
 */
const renderKey = (
  names: ReadonlyArray<unknown>,
  row: ReadonlyArray<Column> | undefined,
  fallback: ReadonlyArray<Column> | undefined
): string | undefined | "inexact" => {
  if (names.length === 0) return undefined
  let text = "["
  for (let i = 0; i < names.length; i++) {
    const column = findColumn(row, names[i]) ?? findColumn(fallback, names[i])
    if (column === undefined) return undefined
    const value = column.value
    if (i > 0) text += ","
    if (value instanceof NumberSource) text += value.source
    else if (typeof value === "number") {
      if (!Number.isSafeInteger(value) || !integerTypes.has(column.type as string)) return "inexact"
      text += String(value)
    } else if (value === undefined) return undefined
    else text += JSON.stringify(value)
  }
  return text + "]"
}

/** A row change's key (the new row's for I and U, the old row's for D) and, for U, the old row's. */
interface RowKeys {
  readonly key: string | undefined
  readonly oldKey: string | undefined
}

/**
 * Whether an update's new row surely has its old key (the common case, told without rendering the
 * old key): every key column absent from the new row (an unchanged TOAST value) or equal to the old.
 */
const sameKey = (names: ReadonlyArray<unknown>, message: Wal2JsonMessage): boolean => {
  for (const name of names) {
    const now = findColumn(message.columns, name)
    if (now === undefined) continue
    const before = findColumn(message.identity, name)
    if (before === undefined) return false
    const a = now.value
    const b = before.value
    if (a !== b || (typeof a === "number" && !Number.isSafeInteger(a)) || (typeof a === "object" && a !== null)) return false
  }
  return true
}

const renderKeys = (message: Wal2JsonMessage, names: ReadonlyArray<unknown>): { key: string | undefined | "inexact"; oldKey: string | undefined | "inexact" } => {
  if (message.action === "D") return { key: renderKey(names, message.identity, undefined), oldKey: undefined }
  // an unchanged TOAST key column is absent from the new row: it is the old one
  const key = renderKey(names, message.columns, message.identity)
  if (message.action !== "U" || !Array.isArray(message.identity)) return { key, oldKey: undefined }
  return { key, oldKey: sameKey(names, message) ? key : renderKey(names, message.identity, undefined) }
}

const rowKeys = (message: Wal2JsonMessage, names: ReadonlyArray<unknown>, json: string): RowKeys => {
  const first = renderKeys(message, names)
  if (first.key !== "inexact" && first.oldKey !== "inexact") return first as RowKeys
  // A decimal or very large key: parse again keeping each number's source text.
  const exact = renderKeys(JSON.parse(json, keepNumberSource) as Wal2JsonMessage, names)
  return { key: exact.key === "inexact" ? undefined : exact.key, oldKey: exact.oldKey === "inexact" ? undefined : exact.oldKey }
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

/** A row's values (name → value as JSON text) from a column list. */
const imageOf = (columns: ReadonlyArray<Column> | undefined): Map<string, string> => {
  const image = new Map<string, string>()
  if (!Array.isArray(columns)) return image
  for (const column of columns as ReadonlyArray<Column>) {
    if (column !== null && typeof column === "object" && typeof column.name === "string") {
      image.set(column.name, JSON.stringify(column.value) ?? "null")
    }
  }
  return image
}

/** An event while its batch is decoded: its body is set once the batch's bodies are written. */
type Draft = { -readonly [K in keyof ChangeEvent]: ChangeEvent[K] }

/** Builds a wal2json decoder. */
export const make = (options: Options): Decoder => {
  const catalog = options.keys ?? KeyCatalog.empty
  // Every change of a transaction carries the commit timestamp text; parse it once per transaction.
  let lastTimestampText: string | undefined
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

  const commitTime = (text: unknown): number | undefined => {
    if (typeof text !== "string") return transactionTimeMs
    if (text !== lastTimestampText) {
      lastTimestampText = text
      lastTimestampMs = CommitTimestamp.parseMillis(text)
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

  const decode = (messages: ReadonlyArray<WalMessage>): Result.Result<ReadonlyArray<ChangeEvent>, DecodeError> => {
    const events: Array<ChangeEvent> = []
    /** Indexes in `events` of the records, and their bodies' parts. */
    const records: Array<number> = []
    const parts: Array<RecordBodies.Part> = []
    /** A transaction record: BEGIN before the transaction's first record, COMMIT after its last. */
    const transactionRecord = (action: "BEGIN" | "COMMIT", lsn: Lsn.Lsn, tail: string) => {
      const commitIdx = nextIdx++
      events.push({
        lsn, ackLsn: lsn, xid: begin!.xid, commitLsn: commitLsn!, commitIdx, action, schema: "", table: "", pk: undefined,
        commitTimeMs: transactionTimeMs, body: emptyBody
      })
      records.push(events.length - 1)
      parts.push({
        prefix: `${RecordBodies.positionPrefix(commitLsnText, commitIdx)}"action":"${action[0]}",${begin!.envelope}${tail}}`,
        rest: undefined
      })
    }
    /** Writes the BEGIN record when the open transaction is about to get its first record. */
    const beforeRecord = () => {
      if (begin === undefined || begun || commitLsn === undefined) return
      begun = true
      transactionRecord("BEGIN", begin.lsn, "")
    }
    for (let i = 0; i < messages.length; i++) {
      const { lsn, oversizedBytes } = messages[i]!
      let data = messages[i]!.data
      if (oversizedBytes !== undefined) {
        beforeRecord()
        const event = oversized(lsn, data, oversizedBytes)
        if (Result.isFailure(event)) return Result.fail(event.failure)
        events.push(event.success)
        continue
      }
      let json: string
      let parsed: unknown
      json = lenient.decode(data)
      try {
        parsed = JSON.parse(json)
      } catch (error) {
        // wal2json writes a type name that format_type quotes unescaped: the body becomes the repaired JSON
        const repaired = Wal2JsonRepair.repairTypes(json)
        try {
          if (repaired === undefined) throw error
          parsed = JSON.parse(repaired)
        } catch {
          // a change still not JSON is dropped (logged and counted), never a stop at the same LSN for ever
          if (data[0] === 0x7b /* { */ && oversizedAction.test(json)) {
            beforeRecord()
            const event = oversized(lsn, data, data.byteLength, "unreadableBytes")
            if (Result.isSuccess(event)) {
              events.push(event.success)
              continue
            }
          }
          return Result.fail(DecodeError.malformed(lsn, `not a wal2json message (${(error as Error).message})`))
        }
        json = repaired
        data = Buffer.from(repaired)
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        return Result.fail(DecodeError.malformed(lsn, "not a wal2json message (not a JSON object)"))
      }
      const message = parsed as Wal2JsonMessage
      const action = message.action
      if (!isAction(action)) {
        return Result.fail(DecodeError.malformed(lsn, `unknown wal2json action ${JSON.stringify(action) ?? "(none)"}`))
      }
      const xid = typeof message.xid === "number" ? message.xid : undefined
      if (action === "B" || action === "C") {
        const timeMs = commitTime(message.timestamp)
        // the COMMIT record, after the last record of a transaction that had one
        if (action === "C" && begin !== undefined && begun) transactionRecord("COMMIT", lsn, `,"changes":${nextIdx - 1}`)
        transactionTimeMs = action === "B" ? timeMs : undefined
        if (action === "B") {
          const parsedCommitLsn = typeof message.lsn === "string" ? Lsn.parse(message.lsn) : undefined
          if (parsedCommitLsn === undefined) {
            return Result.fail(DecodeError.malformed(lsn, `wal2json "B" message without its commit "lsn"`))
          }
          commitLsn = parsedCommitLsn
          commitLsnText = message.lsn as string
          nextIdx = 0
          sharedKeys.reset()
          if (options.transactionRecords === true) {
            begin = { lsn, xid, envelope: `"xid":${xid ?? null},"timestamp":${JSON.stringify(message.timestamp ?? null)}` }
            begun = false
          }
        }
        const nextLsn = action === "C" && typeof message.nextlsn === "string" ? Lsn.parse(message.nextlsn) : undefined
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
        if (typeof message.schema !== "string" || typeof message.table !== "string") {
          return Result.fail(DecodeError.malformed(lsn, `wal2json "${action}" message without schema and table`))
        }
        schema = message.schema
        table = message.table
      }
      if (data[0] !== 0x7b /* { */) {
        return Result.fail(DecodeError.malformed(lsn, "not a wal2json message (does not start with {)"))
      }
      // a non-transactional message is sent on its own, at its own position
      const inTransaction = commitLsn !== undefined && !(action === "M" && message.transactional === false)
      if (inTransaction) beforeRecord()
      const commitTimeMs = action === "M" && message.timestamp === null ? undefined : commitTime(message.timestamp)
      let keys: RowKeys | undefined
      /** Whether rows of this table may share a key within the transaction (a deferrable primary key). */
      let deferrable = false
      if (action === "I" || action === "U" || action === "D") {
        const known = KeyCatalog.lookup(catalog, schema, table)
        keys = rowKeys(message, known !== undefined && known.columns.length > 0 ? known.columns : pkNames(message), json)
        deferrable = inTransaction && known !== undefined && known.deferrablePrimaryKey && known.identity !== "i"
      }
      const split = keys !== undefined && keys.oldKey !== undefined && keys.key !== undefined && keys.oldKey !== keys.key
        ? splitUpdate(data)
        : undefined
      if (deferrable && keys!.key !== undefined) {
        const rowKey = `${schema}.${table}:`
        const old = imageOf(message.identity)
        if (split !== undefined) {
          // the new holder of the key may be another row's old key: the departure is left out when so
          const departs = sharedKeys.concerns(rowKey + keys!.oldKey, old, "departed")
          sharedKeys.arrived(rowKey + keys!.key, new Map([...old, ...imageOf(message.columns)]))
          if (!departs) {
            events.push({
              lsn, ackLsn: lsn, xid, commitLsn: commitLsn!, commitIdx: nextIdx, action: "I", schema, table, pk: keys!.key,
              commitTimeMs, body: emptyBody
            })
            records.push(events.length - 1)
            parts.push({ prefix: `${RecordBodies.positionPrefix(commitLsnText, nextIdx++)}"action":"I"`, rest: split.insert })
            continue
          }
        } else if (action === "I") sharedKeys.arrived(rowKey + keys!.key, imageOf(message.columns))
        else if (!sharedKeys.concerns(rowKey + keys!.key, old, action === "D" ? "departed" : { updated: imageOf(message.columns) })) {
          // a record of the row that still held a key another row took in this transaction: left out
          continue
        }
      }
      if (split !== undefined && inTransaction) {
        // a key change: a delete under the old key, then an insert under the new one, at adjacent positions
        const base = { lsn, ackLsn: lsn, xid, commitLsn: commitLsn!, schema, table, commitTimeMs, body: emptyBody }
        const removeIdx = nextIdx++
        const insertIdx = nextIdx++
        events.push(
          { ...base, commitIdx: removeIdx, action: "D", pk: keys!.oldKey },
          { ...base, commitIdx: insertIdx, action: "I", pk: keys!.key }
        )
        records.push(events.length - 2, events.length - 1)
        parts.push(
          { prefix: `${RecordBodies.positionPrefix(commitLsnText, removeIdx)}"action":"D"`, rest: split.remove },
          { prefix: `${RecordBodies.positionPrefix(commitLsnText, insertIdx)}"action":"I"`, rest: split.insert }
        )
        continue
      }
      const recordLsn = inTransaction ? commitLsn! : lsn
      const recordIdx = inTransaction ? nextIdx++ : 0
      events.push({
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
        body: data
      })
      records.push(events.length - 1)
      parts.push(RecordBodies.splice(inTransaction ? commitLsnText : recordLsn, recordIdx, data))
    }
    // the payloads become the record bodies as they are, behind their positions
    const bodies = RecordBodies.writeAll(parts)
    for (let r = 0; r < records.length; r++) {
      const index = records[r]!
      ;(events[index] as Draft).body = bodies[r]!
    }
    return Result.succeed(events)
  }

  return { plugin: "wal2json", startOptions: startOptions(options), decode }
}

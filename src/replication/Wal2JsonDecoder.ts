/**
 * The wal2json decoder (format-version 2): one XLogData payload is one JSON object describing one
 * change or transaction boundary. Each payload is parsed once, for the fields the pipeline needs
 * (action, xid, table, primary key, commit time). The record body is the payload bytes as received
 * with the record's position (`"commit_lsn"`, from the B message's `lsn`, and `"commit_idx"`)
 * spliced in after the opening `{`; the bodies of one batch are written into one new buffer.
 */
import * as Result from "effect/Result"
import type { Action, ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import { DecodeError } from "../Errors.ts"
import type { Decoder, WalMessage } from "./Decoder.ts"
import * as StartOptions from "./StartOptions.ts"
import * as CommitTimestamp from "./CommitTimestamp.ts"
import * as RecordBodies from "./RecordBodies.ts"

export type Options = Parameters<typeof StartOptions.wal2json>[0]

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

/** The row the key is read from: the new row for inserts and updates, the old key for deletes. */
const keyRow = (message: Wal2JsonMessage): ReadonlyArray<Column> | undefined =>
  message.action === "D" ? message.identity : message.columns

/**
 * The primary key as a JSON array in the order of wal2json's `pk` list. `undefined` when the table
 * has no key or a key column is absent from the row. `exact` says numbers carry their source text.
 */
const renderPk = (message: Wal2JsonMessage): string | undefined | "inexact" => {
  const pk = message.pk
  if (!Array.isArray(pk) || pk.length === 0) return undefined
  const row = keyRow(message)
  let text = "["
  for (let i = 0; i < pk.length; i++) {
    const key = pk[i] as Column
    if (key === null || typeof key !== "object") return undefined
    const column = findColumn(row, key.name) ?? findColumn(message.identity, key.name)
    if (column === undefined) return undefined
    const value = column.value
    if (i > 0) text += ","
    if (value instanceof NumberSource) text += value.source
    else if (typeof value === "number") {
      if (!Number.isSafeInteger(value) || !integerTypes.has(key.type as string)) return "inexact"
      text += String(value)
    } else if (value === undefined) return undefined
    else text += JSON.stringify(value)
  }
  return text + "]"
}

const primaryKey = (message: Wal2JsonMessage, json: string): string | undefined => {
  const pk = renderPk(message)
  if (pk !== "inexact") return pk
  // A decimal or very large key: parse again keeping each number's source text.
  const exact = renderPk(JSON.parse(json, keepNumberSource) as Wal2JsonMessage)
  return exact === "inexact" ? undefined : exact
}

/** An event while its batch is decoded: its body is set once the batch's bodies are written. */
type Draft = { -readonly [K in keyof ChangeEvent]: ChangeEvent[K] }

/** Builds a wal2json decoder. */
export const make = (options: Options): Decoder => {
  // Every change of a transaction carries the commit timestamp text; parse it once per transaction.
  let lastTimestampText: string | undefined
  let lastTimestampMs: number | undefined
  let transactionTimeMs: number | undefined
  // The open transaction's commit LSN (wal2json's B carries it as "lsn") and next record index.
  let commitLsn: Lsn.Lsn | undefined
  let commitLsnText = ""
  let nextIdx = 0

  const commitTime = (text: unknown): number | undefined => {
    if (typeof text !== "string") return transactionTimeMs
    if (text !== lastTimestampText) {
      lastTimestampText = text
      lastTimestampMs = CommitTimestamp.parseMillis(text)
    }
    return lastTimestampMs
  }

  /** A message dropped for its size: what its first bytes say (format-version 2 writes action first). */
  const oversized = (lsn: Lsn.Lsn, head: Uint8Array, bytes: number): Result.Result<ChangeEvent, DecodeError> => {
    const text = lenient.decode(head)
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
      oversizedBytes: bytes
    })
  }

  const decode = (messages: ReadonlyArray<WalMessage>): Result.Result<ReadonlyArray<ChangeEvent>, DecodeError> => {
    const events: Array<ChangeEvent> = new Array(messages.length)
    /** Indexes in `events` of the records, and their bodies' parts. */
    const records: Array<number> = []
    const parts: Array<RecordBodies.Part> = []
    for (let i = 0; i < messages.length; i++) {
      const { data, lsn, oversizedBytes } = messages[i]!
      if (oversizedBytes !== undefined) {
        const event = oversized(lsn, data, oversizedBytes)
        if (Result.isFailure(event)) return Result.fail(event.failure)
        events[i] = event.success
        continue
      }
      let json: string
      let parsed: unknown
      try {
        json = lenient.decode(data)
        parsed = JSON.parse(json)
      } catch (error) {
        return Result.fail(DecodeError.malformed(lsn, `not a wal2json message (${(error as Error).message})`))
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
        transactionTimeMs = action === "B" ? timeMs : undefined
        if (action === "B") {
          const begun = typeof message.lsn === "string" ? Lsn.parse(message.lsn) : undefined
          if (begun === undefined) {
            return Result.fail(DecodeError.malformed(lsn, `wal2json "B" message without its commit "lsn"`))
          }
          commitLsn = begun
          commitLsnText = message.lsn as string
          nextIdx = 0
        }
        const nextLsn = action === "C" && typeof message.nextlsn === "string" ? Lsn.parse(message.nextlsn) : undefined
        events[i] = {
          lsn, ackLsn: nextLsn ?? lsn, xid, commitLsn: commitLsn ?? lsn, commitIdx: -1, action, schema: "", table: "",
          pk: undefined, commitTimeMs: timeMs, body: emptyBody
        }
        if (action === "C") commitLsn = undefined
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
      const recordLsn = inTransaction ? commitLsn! : lsn
      const recordIdx = inTransaction ? nextIdx++ : 0
      events[i] = {
        lsn,
        ackLsn: lsn,
        xid,
        commitLsn: recordLsn,
        commitIdx: recordIdx,
        action,
        schema,
        table,
        pk: action === "I" || action === "U" || action === "D" ? primaryKey(message, json) : undefined,
        commitTimeMs: action === "M" && message.timestamp === null ? undefined : commitTime(message.timestamp),
        body: data
      }
      records.push(i)
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

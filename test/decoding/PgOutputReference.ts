/**
 * The pgoutput decoder as it was before bodies were written as bytes (commit b705fd1): it renders
 * each record as a string and encodes it with TextEncoder. Kept only as the reference the decoder's
 * property test (pgoutput-rendering.test.ts) compares the decoder with; its commit-time text and
 * milliseconds are the ones of that commit too (test/replication/CommitTimestampReference.ts), so a change there is caught as well.
 */
import * as Result from "effect/Result"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as OwnSchema from "../../src/backfill/OwnSchema.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import { DecodeError } from "../../src/Errors.ts"
import type { Decoder, WalMessage } from "../../src/replication/Decoder.ts"
import * as DeferredKeys from "../../src/replication/DeferredKeys.ts"
import * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as PgOutputValues from "../../src/replication/PgOutputValues.ts"
import * as RecordBodies from "../../src/replication/RecordBodies.ts"
import * as CommitTimestamp from "../replication/CommitTimestampReference.ts"

export interface Options {
  /** The publication the slot streams (PUBLICATION_NAME). */
  readonly publication: string
  /**
   * Row keys from the catalog, for what Relation messages do not say: pgoutput marks the
   * replica-identity columns only (none for a deferrable primary key under DEFAULT, all with FULL,
   * none with NOTHING). The marks win where they say something: they follow DDL mid-stream.
   */
  readonly keys?: KeyCatalog.KeyCatalog | undefined
  /** PUBLISH_TRANSACTION_RECORDS: a BEGIN record before a transaction's first record, a COMMIT after its last. */
  readonly transactionRecords?: boolean | undefined
}

interface RelationColumn {
  readonly name: string
  readonly kind: PgOutputValues.ValueKind
  /** `{"name":…,"type":…,"value":` — the column's JSON up to its value. */
  readonly prefix: string
  readonly isKey: boolean
}

interface Relation {
  readonly schema: string
  readonly table: string
  readonly columns: ReadonlyArray<RelationColumn>
  /** Replica identity: d default, n nothing, f full, i index. */
  readonly identity: string
  /** Indexes of the row key's columns (the partition key), in table order. */
  readonly keyIndexes: ReadonlyArray<number>
  /** `"schema":…,"table":…` */
  readonly tableJson: string
  /** `,"pk":[…]}` — the end of every row change of this relation. */
  readonly pkJson: string
  /** A table of the service's own schema: its changes are read and skipped. */
  readonly own: boolean
  /** Keyed by a deferrable primary key: rows may share a key within a transaction ({@link DeferredKeys}). */
  readonly deferrable: boolean
  /** `schema.table:`, before a row key in {@link DeferredKeys}. */
  readonly tableKey: string
}

/** A tuple's columns: the rendered JSON value, `null` text for NULL, `undefined` for an unchanged TOAST value. */
type Tuple = Array<string | undefined>

class Truncated extends Error {}

/** Reads the fields of one message; throws Truncated past its end. */
class Reader {
  private readonly buffer: Buffer
  offset = 0
  constructor(data: Uint8Array) {
    this.buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  }
  private need(bytes: number): void {
    if (this.offset + bytes > this.buffer.length) throw new Truncated()
  }
  byte(): number {
    this.need(1)
    return this.buffer[this.offset++]!
  }
  int16(): number {
    this.need(2)
    const value = this.buffer.readInt16BE(this.offset)
    this.offset += 2
    return value
  }
  int32(): number {
    this.need(4)
    const value = this.buffer.readInt32BE(this.offset)
    this.offset += 4
    return value
  }
  uint32(): number {
    this.need(4)
    const value = this.buffer.readUInt32BE(this.offset)
    this.offset += 4
    return value
  }
  uint64(): bigint {
    this.need(8)
    const value = this.buffer.readBigUInt64BE(this.offset)
    this.offset += 8
    return value
  }
  int64(): bigint {
    this.need(8)
    const value = this.buffer.readBigInt64BE(this.offset)
    this.offset += 8
    return value
  }
  /** A NUL-terminated string. */
  string(): string {
    const end = this.buffer.indexOf(0, this.offset)
    if (end < 0) throw new Truncated()
    const value = this.buffer.toString("utf8", this.offset, end)
    this.offset = end + 1
    return value
  }
  /** `length` bytes as they are (a view). */
  bytes(length: number): Uint8Array {
    if (length < 0) throw new Truncated()
    this.need(length)
    const value = this.buffer.subarray(this.offset, this.offset + length)
    this.offset += length
    return value
  }
  text(length: number): string {
    if (length < 0) throw new Truncated()
    this.need(length)
    const value = this.buffer.toString("utf8", this.offset, this.offset + length)
    this.offset += length
    return value
  }
  get done(): boolean {
    return this.offset === this.buffer.length
  }
}

class Malformed extends Error {}

const encoder = new TextEncoder()
const emptyBody = new Uint8Array(0)

const hexDigits = "0123456789abcdef"

/**
 * `head`, then `bytes` as a JSON string, then `}`: escaped byte by byte the way PostgreSQL's
 * escape_json (wal2json's) does, so bytes that are not valid UTF-8 pass unchanged and valid UTF-8
 * comes out exactly as JSON.stringify would write it.
 */
const jsonStringBody = (head: string, bytes: Uint8Array): Uint8Array => {
  let escapes = 0
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!
    if (byte < 0x20) escapes += byte === 0x08 || byte === 0x09 || byte === 0x0a || byte === 0x0c || byte === 0x0d ? 1 : 5
    else if (byte === 0x22 || byte === 0x5c) escapes += 1
  }
  const headBytes = encoder.encode(head)
  const out = new Uint8Array(headBytes.length + bytes.length + escapes + 3)
  out.set(headBytes)
  let o = headBytes.length
  out[o++] = 0x22
  if (escapes === 0) {
    out.set(bytes, o)
    o += bytes.length
  } else {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!
      if (byte >= 0x20 && byte !== 0x22 && byte !== 0x5c) {
        out[o++] = byte
        continue
      }
      out[o++] = 0x5c
      switch (byte) {
        case 0x08: out[o++] = 0x62; break // b
        case 0x09: out[o++] = 0x74; break // t
        case 0x0a: out[o++] = 0x6e; break // n
        case 0x0c: out[o++] = 0x66; break // f
        case 0x0d: out[o++] = 0x72; break // r
        case 0x22:
        case 0x5c:
          out[o++] = byte
          break
        default:
          out[o++] = 0x75 // u00XX
          out[o++] = 0x30
          out[o++] = 0x30
          out[o++] = hexDigits.charCodeAt(byte >> 4)
          out[o++] = hexDigits.charCodeAt(byte & 0xf)
      }
    }
  }
  out[o++] = 0x22
  out[o] = 0x7d
  return out
}

/** Builds a pgoutput decoder. It is stateful: use one per replication stream. */
export const make = (options: Options): Decoder => {
  const catalog = options.keys ?? KeyCatalog.empty
  const relations = new Map<number, Relation>()
  const namedTypes = new Map<number, PgOutputValues.NamedType>()
  let xid: number | undefined
  let commitTimeMs: number | undefined
  /** The open transaction's commit LSN (Begin's final LSN) and the next record's index in it. */
  let commitLsn: Lsn.Lsn = Lsn.zero
  let commitLsnText = ""
  let nextIdx = 0
  /** The open transaction's Begin position, and whether its BEGIN record waits for the first record / was written. */
  let beginLsn: Lsn.Lsn = Lsn.zero
  let beginPending = false
  let beginWritten = false
  /** Rows that arrived at a key of a deferrable-key table in the open transaction. */
  const sharedKeys = new DeferredKeys.TransactionKeys()

  /** A row's values (name → value as JSON text); unchanged TOAST values left out. */
  const imageOf = (relation: Relation, tuple: Tuple): Map<string, string> => {
    const image = new Map<string, string>()
    for (let i = 0; i < tuple.length; i++) {
      const value = tuple[i]
      if (value !== undefined) image.set(relation.columns[i]!.name, value)
    }
    return image
  }
  /** `"xid":…,"timestamp":…` of the current transaction. */
  let transactionJson = `"xid":null,"timestamp":null`

  const readRelation = (reader: Reader): void => {
    const id = reader.uint32()
    const namespace = reader.string()
    const schema = namespace === "" ? "pg_catalog" : namespace
    const table = reader.string()
    const identity = String.fromCharCode(reader.byte())
    const count = reader.int16()
    const columns: Array<RelationColumn> = []
    for (let i = 0; i < count; i++) {
      const flags = reader.byte()
      const name = reader.string()
      const typeOid = reader.uint32()
      const typmod = reader.int32()
      const type = PgOutputValues.typeName(typeOid, typmod, namedTypes)
      columns.push({
        name,
        kind: PgOutputValues.valueKind(typeOid),
        prefix: `{"name":${JSON.stringify(name)},"type":${JSON.stringify(type)},"value":`,
        isKey: (flags & 1) === 1
      })
    }
    const known = KeyCatalog.lookup(catalog, schema, table)
    const indexesOf = (names: ReadonlyArray<string> | undefined) =>
      names === undefined ? [] : columns.flatMap((column, index) => (names.includes(column.name) ? [index] : []))
    const marked = columns.flatMap((column, index) => (column.isKey ? [index] : []))
    // the row key: the identity index's columns, the primary key's (marked when immediate under
    // DEFAULT, else from the catalog), or none
    const keyIndexes = identity === "i" || (identity === "d" && marked.length > 0) ? marked : indexesOf(known?.columns)
    // wal2json's "pk": the immediate primary key, whatever the identity
    const pkIndexes = identity === "d" ? marked : indexesOf(known?.immediatePrimaryKey)
    const pkJson = `,"pk":[${pkIndexes.map((index) => {
      const prefix = columns[index]!.prefix
      return prefix.slice(0, prefix.length - `,"value":`.length) + "}"
    }).join(",")}]}`
    relations.set(id, {
      schema, table, columns, identity, keyIndexes, pkJson, own: schema === OwnSchema.SCHEMA,
      deferrable: known !== undefined && known.deferrablePrimaryKey && identity !== "i" && !(identity === "d" && marked.length > 0),
      tableKey: `${schema}.${table}:`,
      tableJson: `"schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)}`
    })
  }

  const readTuple = (reader: Reader, relation: Relation): Tuple => {
    const count = reader.int16()
    if (count !== relation.columns.length) {
      throw new Malformed(`tuple has ${count} columns, relation ${relation.schema}.${relation.table} has ${relation.columns.length}`)
    }
    const tuple: Tuple = new Array(count)
    for (let i = 0; i < count; i++) {
      const kind = reader.byte()
      if (kind === 0x74 /* t */) tuple[i] = PgOutputValues.renderValue(relation.columns[i]!.kind, reader.text(reader.int32()))
      else if (kind === 0x6e /* n */) tuple[i] = "null"
      else if (kind === 0x75 /* u */) tuple[i] = undefined
      else throw new Malformed(`unknown tuple value kind ${JSON.stringify(String.fromCharCode(kind))}`)
    }
    return tuple
  }

  /** `[{"name":…,"type":…,"value":…},…]` of the given columns; unchanged TOAST values are left out. */
  const columnsJson = (relation: Relation, tuple: Tuple, keysOnly: boolean): string => {
    let json = "["
    let first = true
    for (let i = 0; i < tuple.length; i++) {
      const value = tuple[i]
      if (value === undefined) continue
      const column = relation.columns[i]!
      if (keysOnly && !column.isKey) continue
      json += (first ? "" : ",") + column.prefix + value + "}"
      first = false
    }
    return json + "]"
  }

  const primaryKey = (relation: Relation, row: Tuple, fallback: Tuple | undefined): string | undefined => {
    if (relation.keyIndexes.length === 0) return undefined
    let text = "["
    for (let k = 0; k < relation.keyIndexes.length; k++) {
      const index = relation.keyIndexes[k]!
      const value = row[index] ?? fallback?.[index]
      if (value === undefined) return undefined
      text += (k === 0 ? "" : ",") + value
    }
    return text + "]"
  }

  const relationOf = (reader: Reader): Relation => {
    const id = reader.uint32()
    const relation = relations.get(id)
    if (relation === undefined) throw new Malformed(`change for relation ${id} before its Relation message`)
    return relation
  }

  /** A record of the open transaction; `body` starts with its position (see `header`). */
  const rowEvent = (
    lsn: Lsn.Lsn, action: "I" | "U" | "D", relation: Relation, commitIdx: number, body: string, pk: string | undefined
  ): ChangeEvent => ({
    lsn, ackLsn: lsn, xid, commitLsn, commitIdx, action, schema: relation.schema, table: relation.table, pk, commitTimeMs,
    body: encoder.encode(body)
  })

  /** The start of a record of the open transaction, its position first; takes the next index. */
  const header = (action: string, lsn: Lsn.Lsn): string =>
    `${RecordBodies.positionPrefix(commitLsnText, nextIdx)}"action":"${action}",${transactionJson},"lsn":"${Lsn.format(lsn)}"`

  /** A transaction record (BEGIN, COMMIT) of the open transaction, at the next index. */
  const transactionRecord = (action: "BEGIN" | "COMMIT", lsn: Lsn.Lsn, tail: string): ChangeEvent => {
    const commitIdx = nextIdx++
    return {
      lsn, ackLsn: lsn, xid, commitLsn, commitIdx, action, schema: "", table: "", pk: undefined, commitTimeMs,
      body: encoder.encode(`${RecordBodies.positionPrefix(commitLsnText, commitIdx)}"action":"${action[0]}",${transactionJson}${tail}}`)
    }
  }

  /** Writes the BEGIN record when the open transaction is about to get its first record. */
  const beforeRecord = (events: Array<ChangeEvent>): void => {
    if (!beginPending) return
    beginPending = false
    beginWritten = true
    events.push(transactionRecord("BEGIN", beginLsn, ""))
  }

  /** Decodes one message into `events`. */
  const decodeMessage = (message: WalMessage, events: Array<ChangeEvent>): void => {
    const { lsn } = message
    const reader = new Reader(message.data)
    const tag = reader.byte()
    switch (tag) {
      case 0x42: { // B: final LSN (the commit's), commit time, xid
        commitLsn = reader.uint64()
        commitLsnText = Lsn.format(commitLsn)
        nextIdx = 0
        const micros = reader.int64()
        xid = reader.uint32()
        commitTimeMs = CommitTimestamp.pgMicrosToMillis(micros)
        transactionJson = `"xid":${xid},"timestamp":"${CommitTimestamp.formatPgMicrosUtc(micros)}"`
        beginLsn = lsn
        sharedKeys.reset()
        beginPending = options.transactionRecords === true
        beginWritten = false
        events.push({
          lsn, ackLsn: lsn, xid, commitLsn, commitIdx: -1, action: "B", schema: "", table: "", pk: undefined, commitTimeMs,
          body: emptyBody
        })
        break
      }
      case 0x43: { // C: flags, commit LSN, end LSN, commit time
        reader.byte()
        reader.uint64()
        const endLsn = reader.uint64()
        const timeMs = CommitTimestamp.pgMicrosToMillis(reader.int64())
        // the COMMIT record, after the last record of a transaction that had one
        if (beginWritten) events.push(transactionRecord("COMMIT", lsn, `,"changes":${nextIdx - 1}`))
        beginPending = false
        beginWritten = false
        events.push({
          lsn, ackLsn: endLsn, xid, commitLsn, commitIdx: -1, action: "C", schema: "", table: "", pk: undefined,
          commitTimeMs: timeMs, body: emptyBody
        })
        xid = undefined
        commitTimeMs = undefined
        transactionJson = `"xid":null,"timestamp":null`
        break
      }
      case 0x4f: // O: origin LSN and name; nothing to publish
        reader.uint64()
        reader.string()
        break
      case 0x52: // R
        readRelation(reader)
        break
      case 0x59: { // Y: a user-defined type's namespace and name
        const oid = reader.uint32()
        namedTypes.set(oid, { namespace: reader.string(), name: reader.string() })
        break
      }
      case 0x49: { // I: relation, 'N', new tuple
        const relation = relationOf(reader)
        if (reader.byte() !== 0x4e) throw new Malformed("insert without a new tuple")
        const row = readTuple(reader, relation)
        if (relation.own) break
        beforeRecord(events)
        const key = primaryKey(relation, row, undefined)
        if (relation.deferrable && key !== undefined) sharedKeys.arrived(`${relation.tableKey}${key}`, imageOf(relation, row))
        const body = `${header("I", lsn)},${relation.tableJson},"columns":${columnsJson(relation, row, false)}${relation.pkJson}`
        events.push(rowEvent(lsn, "I", relation, nextIdx++, body, key))
        break
      }
      case 0x55: { // U: relation, optional 'K'/'O' old tuple, 'N' new tuple
        const relation = relationOf(reader)
        let kind = reader.byte()
        let old: Tuple | undefined
        let oldIsKey = true
        if (kind === 0x4b || kind === 0x4f) {
          oldIsKey = kind === 0x4b
          old = readTuple(reader, relation)
          kind = reader.byte()
        }
        if (kind !== 0x4e) throw new Malformed("update without a new tuple")
        const row = readTuple(reader, relation)
        if (relation.own) break
        beforeRecord(events)
        const identitySource = old ?? (relation.identity === "d" || relation.identity === "i" ? row : undefined)
        const identity = identitySource === undefined || relation.identity === "n" || !relation.columns.some((c) => c.isKey)
          ? ""
          : `,"identity":${columnsJson(relation, identitySource, old === undefined || oldIsKey)}`
        const key = primaryKey(relation, row, old)
        const oldKey = old === undefined ? undefined : primaryKey(relation, old, undefined)
        const columns = `,"columns":${columnsJson(relation, row, false)}`
        const split = identity !== "" && key !== undefined && oldKey !== undefined && key !== oldKey
        // a deferrable key: a record of the row that still held a key another row took in this transaction is left out
        let departs = true
        if (relation.deferrable && key !== undefined && old !== undefined) {
          const before = imageOf(relation, old)
          if (split) {
            departs = sharedKeys.concerns(`${relation.tableKey}${oldKey}`, before, "departed")
            sharedKeys.arrived(`${relation.tableKey}${key}`, new Map([...before, ...imageOf(relation, row)]))
          } else if (!sharedKeys.concerns(`${relation.tableKey}${key}`, before, { updated: imageOf(relation, row) })) break
        }
        if (split) {
          // a key change: a delete under the old key, then an insert under the new one, at adjacent positions
          if (departs) {
            const remove = `${header("D", lsn)},${relation.tableJson}${identity}${relation.pkJson}`
            events.push(rowEvent(lsn, "D", relation, nextIdx++, remove, oldKey))
          }
          const insert = `${header("I", lsn)},${relation.tableJson}${columns}${relation.pkJson}`
          events.push(rowEvent(lsn, "I", relation, nextIdx++, insert, key))
          break
        }
        const body = `${header("U", lsn)},${relation.tableJson}${columns}${identity}${relation.pkJson}`
        events.push(rowEvent(lsn, "U", relation, nextIdx++, body, key))
        break
      }
      case 0x44: { // D: relation, 'K'/'O' old tuple
        const relation = relationOf(reader)
        const kind = reader.byte()
        if (kind !== 0x4b && kind !== 0x4f) throw new Malformed("delete without an old tuple")
        const old = readTuple(reader, relation)
        if (relation.own) break
        const key = primaryKey(relation, old, undefined)
        if (relation.deferrable && key !== undefined && !sharedKeys.concerns(`${relation.tableKey}${key}`, imageOf(relation, old), "departed")) {
          break
        }
        beforeRecord(events)
        const body = `${header("D", lsn)},${relation.tableJson},"identity":${columnsJson(relation, old, kind === 0x4b)}${relation.pkJson}`
        events.push(rowEvent(lsn, "D", relation, nextIdx++, body, key))
        break
      }
      case 0x54: { // T: relation count, options, relation ids — one event per table, as wal2json writes them
        beforeRecord(events)
        const count = reader.int32()
        reader.byte()
        for (let i = 0; i < count; i++) {
          const relation = relationOf(reader)
          if (relation.own) continue
          const body = `${header("T", lsn)},${relation.tableJson}}`
          events.push({
            lsn, ackLsn: lsn, xid, commitLsn, commitIdx: nextIdx++, action: "T", schema: relation.schema, table: relation.table,
            pk: undefined, commitTimeMs, body: encoder.encode(body)
          })
        }
        break
      }
      case 0x4d: { // M: flags, LSN, prefix, content
        const transactional = (reader.byte() & 1) === 1
        const messageLsn = reader.uint64()
        const prefix = reader.string()
        // the content is bytes (bytea): kept as sent, as wal2json does, even when not valid UTF-8
        const content = reader.bytes(reader.int32())
        const context = transactional ? transactionJson : `"xid":null,"timestamp":null`
        if (transactional) beforeRecord(events)
        // a non-transactional message is sent on its own, at its own position
        const recordLsn = transactional ? commitLsn : lsn
        const recordIdx = transactional ? nextIdx++ : 0
        const head = `${RecordBodies.positionPrefix(Lsn.format(recordLsn), recordIdx)}"action":"M",${context},` +
          `"lsn":"${Lsn.format(messageLsn)}","transactional":${transactional},` +
          `"prefix":${JSON.stringify(prefix)},"content":`
        events.push({
          lsn, ackLsn: lsn, xid: transactional ? xid : undefined, commitLsn: recordLsn, commitIdx: recordIdx, action: "M",
          schema: "", table: "", pk: undefined, commitTimeMs: transactional ? commitTimeMs : undefined, body: jsonStringBody(head, content)
        })
        break
      }
      default:
        throw new Malformed(`unknown pgoutput message type ${JSON.stringify(String.fromCharCode(tag))}`)
    }
    if (!reader.done) throw new Malformed(`${String.fromCharCode(tag)} message has trailing bytes`)
  }

  /**
   * A change or logical message dropped for its size: its first bytes name the relation (or the
   * message's prefix). Never fails: the event is what OVERSIZED_RECORD_POLICY decides about.
   */
  const oversized = (message: WalMessage, bytes: number, events: Array<ChangeEvent>): ChangeEvent => {
    const reader = new Reader(message.data)
    const tag = reader.byte()
    let schema = ""
    let table = ""
    let transactional = true
    try {
      if (tag === 0x4d) transactional = (reader.byte() & 1) === 1
      else {
        const relation = relations.get(reader.uint32())
        schema = relation?.schema ?? ""
        table = relation?.table ?? "(unknown)"
      }
    } catch {
      // a head shorter than its fields: keep what is known
    }
    if (transactional) beforeRecord(events)
    return {
      lsn: message.lsn,
      ackLsn: message.lsn,
      xid: transactional ? xid : undefined,
      // it keeps its place: the records after it have the indexes they would have without a limit
      commitLsn: transactional ? commitLsn : message.lsn,
      commitIdx: transactional ? nextIdx++ : 0,
      action: tag === 0x49 ? "I" : tag === 0x55 ? "U" : tag === 0x44 ? "D" : "M",
      schema,
      table,
      pk: undefined,
      commitTimeMs: transactional ? commitTimeMs : undefined,
      body: emptyBody,
      oversizedBytes: bytes
    }
  }

  const decode = (messages: ReadonlyArray<WalMessage>): Result.Result<ReadonlyArray<ChangeEvent>, DecodeError> => {
    const events: Array<ChangeEvent> = []
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!
      if (message.oversizedBytes !== undefined) {
        events.push(oversized(message, message.oversizedBytes, events))
        continue
      }
      try {
        decodeMessage(message, events)
      } catch (error) {
        const tag = message.data.length > 0 ? String.fromCharCode(message.data[0]!) : "empty"
        const what = error instanceof Truncated
          ? `truncated pgoutput message ${JSON.stringify(tag)}`
          : error instanceof Malformed
          ? error.message
          : `pgoutput message ${JSON.stringify(tag)}: ${String(error)}`
        return Result.fail(DecodeError.malformed(message.lsn, what))
      }
    }
    return Result.succeed(events)
  }

  return { plugin: "pgoutput", startOptions: "", decode }
}

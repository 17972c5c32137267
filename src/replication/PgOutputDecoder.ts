/**
 * The pgoutput decoder (protocol version 1, text values): reads the binary logical replication
 * messages and publishes each change as the JSON wal2json format-version 2 would have written for
 * it, so consumers see one format whichever plugin the slot uses. Relation and Type messages are
 * cached per decoder (a new Relation message replaces the old one: schema changes mid-stream), with
 * each relation's JSON pieces (table, column names and types, "pk") encoded once. Bodies are
 * written as bytes into one buffer per decoded batch ({@link BodyWriter}): column values are copied
 * from the message with JSON escaping done byte by byte; a value that is not valid UTF-8 is written
 * as its UTF-8 decoding (invalid bytes become U+FFFD) would be.
 * Changes of the service's own schema (a publication FOR ALL TABLES includes it) are skipped: they
 * never reach the stream and take no index. Row keys, key-change splits and record positions are
 * the wal2json decoder's, made the same way (see KeyCatalog, DeferredKeys, RecordBodies).
 */
import { isUtf8 } from "node:buffer"
import * as Result from "effect/Result"
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import * as OwnSchema from "../backfill/OwnSchema.ts"
import * as Lsn from "../domain/Lsn.ts"
import { DecodeError } from "../Errors.ts"
import { BodyWriter } from "./BodyWriter.ts"
import * as CommitTimestamp from "./CommitTimestamp.ts"
import { type Decoder, ReadMessage, type WalMessage } from "./Decoder.ts"
import * as DeferredKeys from "./DeferredKeys.ts"
import * as KeyCatalog from "./KeyCatalog.ts"
import * as PgOutputValues from "./PgOutputValues.ts"
import * as PgWire from "./PgWire.ts"
import * as RecordBodies from "./RecordBodies.ts"
import * as StartOptions from "./StartOptions.ts"

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

/** The START_REPLICATION options clause for pgoutput. */
export const startOptions = (options: Pick<Options, "publication">): string =>
  StartOptions.clause(StartOptions.pgoutput(options))

interface RelationColumn {
  readonly name: string
  readonly kind: PgOutputValues.ValueKind
  /** `{"name":…,"type":…,"value":` — the column's JSON up to its value, UTF-8. */
  readonly prefix: Uint8Array
  readonly isKey: boolean
}

interface Relation {
  readonly schema: string
  readonly table: string
  readonly columns: ReadonlyArray<RelationColumn>
  /** Replica identity: d default, n nothing, f full, i index. */
  readonly identity: string
  /** Whether pgoutput marks any column as part of the replica identity. */
  readonly hasMarkedColumn: boolean
  /** Indexes of the row key's columns (the partition key), in table order. */
  readonly keyIndexes: ReadonlyArray<number>
  /** `,"schema":…,"table":…`, UTF-8. */
  readonly tableJson: Uint8Array
  /** `,"pk":[…]}` — the end of every row change of this relation, UTF-8. */
  readonly pkJson: Uint8Array
  /** A table of the service's own schema: its changes are read and skipped. */
  readonly own: boolean
  /** Keyed by a deferrable primary key: rows may share a key within a transaction ({@link DeferredKeys}). */
  readonly deferrable: boolean
  /** `schema.table:`, before a row key in {@link DeferredKeys}. */
  readonly tableKey: string
}

class Truncated extends Error {}

const TWO_TO_32 = 4294967296
/** The high half of an int64 read as a number is within ±2^20: the value is within ±2^52. */
const MAX_NUMBER_HIGH = 1 << 20
class Malformed extends Error {}

const emptyBuffer = Buffer.alloc(0)

/**
 * Reads the fields of one message; throws Truncated past its end. One reader serves every message:
 * it reads through a Buffer over the message's whole ArrayBuffer (the messages of one socket read
 * share one), kept until a message of another buffer comes or the batch ends.
 */
class Reader {
  buffer: Buffer = emptyBuffer
  offset = 0
  end = 0
  private arrayBuffer: ArrayBufferLike | undefined = undefined
  /** The bytes of the last {@link ReadMessage}, and where they start in their ArrayBuffer. */
  private bytes: Uint8Array | undefined = undefined
  private bytesOffset = 0
  /** Reads `message`: a {@link ReadMessage} from its read's bytes (no view made), any other from its data. */
  reset(message: WalMessage): void {
    if (message instanceof ReadMessage) {
      const bytes = message.bytes
      if (bytes !== this.bytes) {
        this.bytes = bytes
        this.bytesOffset = bytes.byteOffset
        this.use(bytes.buffer)
      }
      this.offset = this.bytesOffset + message.start
      this.end = this.bytesOffset + message.end
      return
    }
    const data = message.data
    this.bytes = undefined
    this.use(data.buffer)
    this.offset = data.byteOffset
    this.end = data.byteOffset + data.byteLength
  }
  private use(arrayBuffer: ArrayBufferLike): void {
    if (arrayBuffer !== this.arrayBuffer) {
      this.arrayBuffer = arrayBuffer
      this.buffer = Buffer.from(arrayBuffer, 0, arrayBuffer.byteLength)
    }
  }
  /** Lets go of the last message's buffer. */
  release(): void {
    this.arrayBuffer = undefined
    this.bytes = undefined
    this.buffer = emptyBuffer
  }
  need(bytes: number): void {
    if (bytes < 0 || this.offset + bytes > this.end) throw new Truncated()
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
    const high = this.uint32()
    return PgWire.uint64Of(high, this.uint32())
  }
  /** A signed 64-bit integer: a number when within ±2^52 (exact; no bigint made), else a bigint. */
  int64(): number | bigint {
    this.need(8)
    const high = this.buffer.readInt32BE(this.offset)
    if (high >= -MAX_NUMBER_HIGH && high < MAX_NUMBER_HIGH) {
      const value = high * TWO_TO_32 + this.buffer.readUInt32BE(this.offset + 4)
      this.offset += 8
      return value
    }
    const value = this.buffer.readBigInt64BE(this.offset)
    this.offset += 8
    return value
  }
  /** A NUL-terminated string. */
  string(): string {
    const end = this.buffer.indexOf(0, this.offset)
    if (end < 0 || end >= this.end) throw new Truncated()
    const value = this.buffer.toString("utf8", this.offset, end)
    this.offset = end + 1
    return value
  }
  /** Skips `length` bytes; returns where they start. */
  skip(length: number): number {
    this.need(length)
    const start = this.offset
    this.offset += length
    return start
  }
  get done(): boolean {
    return this.offset === this.end
  }
}

const TEXT = 0x74 // t
const NULL = 0x6e // n
const UNCHANGED = 0x75 // u

/** A tuple as read: each column's kind (t, n, u) and where its text is in the reader's buffer. */
class Tuple {
  count = 0
  kinds = new Uint8Array(16)
  starts = new Int32Array(16)
  ends = new Int32Array(16)
  read(reader: Reader, relation: Relation): this {
    const count = reader.int16()
    if (count !== relation.columns.length) {
      throw new Malformed(`tuple has ${count} columns, relation ${relation.schema}.${relation.table} has ${relation.columns.length}`)
    }
    if (count > this.kinds.length) {
      this.kinds = new Uint8Array(count)
      this.starts = new Int32Array(count)
      this.ends = new Int32Array(count)
    }
    this.count = count
    for (let i = 0; i < count; i++) {
      const kind = reader.byte()
      if (kind === TEXT) {
        const start = reader.skip(reader.int32())
        this.starts[i] = start
        this.ends[i] = reader.offset
      } else if (kind !== NULL && kind !== UNCHANGED) {
        throw new Malformed(`unknown tuple value kind ${JSON.stringify(String.fromCharCode(kind))}`)
      }
      this.kinds[i] = kind
    }
    return this
  }
}

/** Whether `bytes[start, end)` are `NaN`, `Infinity` or `-Infinity` (not JSON numbers). */
const isNonFinite = (bytes: Uint8Array, start: number, end: number): boolean => {
  const length = end - start
  if (length === 3) return bytes[start] === 0x4e && bytes[start + 1] === 0x61 && bytes[start + 2] === 0x4e
  if (length === 9 && bytes[start] === 0x2d) start++
  else if (length !== 8) return false
  const word = "Infinity"
  for (let i = 0; i < 8; i++) if (bytes[start + i] !== word.charCodeAt(i)) return false
  return true
}

const utf8 = (text: string): Uint8Array => Buffer.from(text, "utf8")

/** Up to here an LSN converts to a double exactly. */
const MAX_EXACT_LSN = BigInt(Number.MAX_SAFE_INTEGER)

/** An LSN as `Lsn.format` writes it. */
const writeLsn = (w: BodyWriter, lsn: Lsn.Lsn): void => {
  if (lsn > MAX_EXACT_LSN) {
    w.ascii(Lsn.format(lsn))
    return
  }
  const n = Number(lsn)
  const high = Math.floor(n / TWO_TO_32)
  w.upperHex(high)
  w.byte(0x2f) // /
  w.upperHex(n - high * TWO_TO_32)
}

/** `,"action":"X` of each action a row record can have. */
const INSERT = utf8(`,"action":"I`)
const UPDATE = utf8(`,"action":"U`)
const DELETE = utf8(`,"action":"D`)
const TRUNCATE = utf8(`,"action":"T`)

/** The transaction fields of a record outside a transaction. */
const noTransactionJson = `"xid":null,"timestamp":null`
/** The head's transaction fields outside a transaction (see `head` in {@link make}). */
/** The fixed text around a record head's commit LSN, and around its transaction fields. */
const POSITION_OPEN = `{"commit_lsn":"`
const POSITION_CLOSE = `","commit_idx":`
const TAIL_OPEN = `",`
const TAIL_CLOSE = `,"lsn":"`
const noTransactionTail = utf8(`${TAIL_OPEN}${noTransactionJson}${TAIL_CLOSE}`)

/** Events whose body is being written into the batch's buffer; `body` is set when the batch is finished. */
type Draft = { -readonly [K in keyof ChangeEvent]: ChangeEvent[K] }

/** Builds a pgoutput decoder. It is stateful: use one per replication stream. */
export const make = (options: Options): Decoder => {
  const catalog = options.keys ?? KeyCatalog.empty
  const relations = new Map<number, Relation>()
  const namedTypes = new Map<number, PgOutputValues.NamedType>()
  const reader = new Reader()
  const writer = new BodyWriter()
  /** Where a row key is written before it becomes a string. */
  const keyWriter = new BodyWriter(256)
  /** The events of this batch whose bodies are in `writer`, in the order of their bodies. */
  const drafts: Array<Draft | undefined> = []
  let draftCount = 0
  const newTuple = new Tuple()
  const oldTuple = new Tuple()
  let xid: number | undefined
  let commitTimeMs: number | undefined
  /** The open transaction's commit LSN (Begin's final LSN) and the next record's index in it. */
  let commitLsn: Lsn.Lsn = Lsn.zero
  let nextIdx = 0
  /**
   * The open transaction's parts of every record's head, written once per transaction:
   * `[0, headEnd)` is `{"commit_lsn":"…","commit_idx":`, `[headEnd, tailEnd)` is `",` + the
   * transaction's JSON fields (`"xid":…,"timestamp":…`) + `,"lsn":"` (after a record's action, before its LSN).
   */
  const head = new BodyWriter(256)
  let headEnd = 0
  let tailEnd = 0
  /** The open transaction's Begin position, and whether its BEGIN record waits for the first record / was written. */
  let beginLsn: Lsn.Lsn = Lsn.zero
  let beginPending = false
  let beginWritten = false
  /** Rows that arrived at a key of a deferrable-key table in the open transaction. */
  const sharedKeys = new DeferredKeys.TransactionKeys()
  /** Writes the head's transaction fields: the open transaction's (`commitMicros`: its commit time), or none. */
  const writeTail = (commitMicros: CommitTimestamp.PgMicros | undefined): void => {
    head.rewind(headEnd)
    if (xid === undefined || commitMicros === undefined) head.bytes(noTransactionTail)
    else {
      head.ascii(`${TAIL_OPEN}"xid":`)
      head.decimal(xid)
      head.ascii(`,"timestamp":"`)
      CommitTimestamp.writePgMicrosUtc(head, commitMicros)
      head.ascii(`"${TAIL_CLOSE}`)
    }
    tailEnd = head.length
  }
  /** Writes the head's position: the commit LSN of the open transaction, as its two halves ("" before the first). */
  const writePosition = (high: number, low: number, none: boolean): void => {
    head.reset()
    head.ascii(POSITION_OPEN)
    if (!none) {
      head.upperHex(high)
      head.byte(0x2f) // /
      head.upperHex(low)
    }
    head.ascii(POSITION_CLOSE)
    headEnd = head.length
  }
  writePosition(0, 0, true)
  writeTail(undefined)
  /** The open transaction's commit LSN text, as the head has it. */
  const commitLsnText = (): string => head.text(POSITION_OPEN.length, headEnd - POSITION_CLOSE.length)
  /** `"xid":…,"timestamp":…` of the open transaction, as the head has it (`"xid":null,…` outside one). */
  const transactionJson = (): string => head.text(headEnd + TAIL_OPEN.length, tailEnd - TAIL_CLOSE.length)

  /** A column's value as JSON text, as it is published; `undefined` for an unchanged TOAST value. */
  const valueText = (relation: Relation, tuple: Tuple, index: number): string | undefined => {
    const kind = tuple.kinds[index]!
    if (kind === NULL) return "null"
    if (kind === UNCHANGED) return undefined
    return PgOutputValues.renderValue(relation.columns[index]!.kind, reader.buffer.toString("utf8", tuple.starts[index]!, tuple.ends[index]!))
  }

  /** A row's values (name → value as JSON text); unchanged TOAST values left out. */
  const imageOf = (relation: Relation, tuple: Tuple): Map<string, string> => {
    const image = new Map<string, string>()
    for (let i = 0; i < tuple.count; i++) {
      const value = valueText(relation, tuple, i)
      if (value !== undefined) image.set(relation.columns[i]!.name, value)
    }
    return image
  }

  const readRelation = (): void => {
    const id = reader.uint32()
    const namespace = reader.string()
    const schema = namespace === "" ? "pg_catalog" : namespace
    const table = reader.string()
    const identity = String.fromCharCode(reader.byte())
    const count = reader.int16()
    const columns: Array<RelationColumn & { readonly head: string }> = []
    for (let i = 0; i < count; i++) {
      const flags = reader.byte()
      const name = reader.string()
      const typeOid = reader.uint32()
      const typmod = reader.int32()
      const type = PgOutputValues.typeName(typeOid, typmod, namedTypes)
      const head = `{"name":${JSON.stringify(name)},"type":${JSON.stringify(type)}`
      columns.push({ name, kind: PgOutputValues.valueKind(typeOid), head, prefix: utf8(`${head},"value":`), isKey: (flags & 1) === 1 })
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
    relations.set(id, {
      schema, table, columns, identity, keyIndexes, own: schema === OwnSchema.SCHEMA,
      hasMarkedColumn: marked.length > 0,
      pkJson: utf8(`,"pk":[${pkIndexes.map((index) => columns[index]!.head + "}").join(",")}]}`),
      deferrable: known !== undefined && known.deferrablePrimaryKey && identity !== "i" && !(identity === "d" && marked.length > 0),
      tableKey: `${schema}.${table}:`,
      tableJson: utf8(`,"schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)}`)
    })
  }

  /** A column's text value as the JSON wal2json writes for it ({@link PgOutputValues.renderValue}), as bytes. */
  const writeValue = (writer: BodyWriter, kind: PgOutputValues.ValueKind, start: number, end: number): void => {
    const bytes = reader.buffer
    switch (kind) {
      case "number": {
        if (isNonFinite(bytes, start, end)) {
          writer.ascii("null")
          return
        }
        let high = 0
        for (let i = start; i < end; i++) high |= bytes[i]!
        if (high < 0x80) writer.slice(bytes, start, end)
        else writer.utf8(bytes.toString("utf8", start, end))
        return
      }
      case "boolean":
        writer.ascii(end - start === 1 && bytes[start] === 0x74 ? "true" : "false")
        return
      case "bytea":
        // hex output without its `\x`, as a string
        writeString(writer, end - start >= 2 && bytes[start] === 0x5c && bytes[start + 1] === 0x78 ? start + 2 : start, end)
        return
      case "string":
        writeString(writer, start, end)
    }
  }

  /** Text as a JSON string, as JSON.stringify writes its UTF-8 decoding. */
  const writeString = (writer: BodyWriter, start: number, end: number): void => {
    const bytes = reader.buffer
    const mark = writer.length
    if (writer.jsonString(bytes, start, end) && !isUtf8(bytes.subarray(start, end))) {
      // not valid UTF-8: as its decoding (U+FFFD for each invalid sequence) is written
      writer.rewind(mark)
      writer.utf8(JSON.stringify(bytes.toString("utf8", start, end)))
    }
  }

  /** `,"identity":[…]` of an update or of a key change's delete. */
  const writeIdentity = (relation: Relation, tuple: Tuple, keysOnly: boolean): void => {
    writer.ascii(`,"identity":`)
    writeColumns(relation, tuple, keysOnly)
  }

  /** `[{"name":…,"type":…,"value":…},…]` of the given columns; unchanged TOAST values are left out. */
  const writeColumns = (relation: Relation, tuple: Tuple, keysOnly: boolean): void => {
    writer.byte(0x5b) // [
    let first = true
    for (let i = 0; i < tuple.count; i++) {
      const kind = tuple.kinds[i]!
      if (kind === UNCHANGED) continue
      const column = relation.columns[i]!
      if (keysOnly && !column.isKey) continue
      if (!first) writer.byte(0x2c) // ,
      first = false
      writer.bytes(column.prefix)
      if (kind === NULL) writer.ascii("null")
      else writeValue(writer, column.kind, tuple.starts[i]!, tuple.ends[i]!)
      writer.byte(0x7d) // }
    }
    writer.byte(0x5d) // ]
  }

  /**
   * The row key, `[…]` of the key columns' values as the body writes them (an unchanged TOAST
   * value taken from `fallback`); `undefined` without a key or with a value in neither. Written as
   * bytes first, made a string once.
   */
  const primaryKey = (relation: Relation, row: Tuple, fallback: Tuple | undefined): string | undefined => {
    const indexes = relation.keyIndexes
    if (indexes.length === 0) return undefined
    keyWriter.reset()
    keyWriter.byte(0x5b) // [
    for (let k = 0; k < indexes.length; k++) {
      const index = indexes[k]!
      let tuple = row
      if (tuple.kinds[index] === UNCHANGED) {
        if (fallback === undefined || fallback.kinds[index] === UNCHANGED) return undefined
        tuple = fallback
      }
      if (k > 0) keyWriter.byte(0x2c) // ,
      if (tuple.kinds[index] === NULL) keyWriter.ascii("null")
      else writeValue(keyWriter, relation.columns[index]!.kind, tuple.starts[index]!, tuple.ends[index]!)
    }
    keyWriter.byte(0x5d) // ]
    const key = keyWriter.text(0, keyWriter.length)
    keyWriter.reset()
    return key
  }

  const relationOf = (): Relation => {
    const id = reader.uint32()
    const relation = relations.get(id)
    if (relation === undefined) throw new Malformed(`change for relation ${id} before its Relation message`)
    return relation
  }

  /** An event whose body is the one written since `start`. */
  const pushDraft = (events: Array<ChangeEvent>, draft: Draft, start: number): void => {
    writer.mark(start)
    drafts[draftCount++] = draft
    events.push(draft)
  }

  /** A record of the open transaction whose body was written since `start`. */
  const rowEvent = (
    events: Array<ChangeEvent>, start: number, lsn: Lsn.Lsn, action: "I" | "U" | "D", relation: Relation, commitIdx: number,
    pk: string | undefined
  ): void =>
    pushDraft(events, {
      lsn, ackLsn: lsn, xid, commitLsn, commitIdx, action, schema: relation.schema, table: relation.table, pk, commitTimeMs,
      body: emptyBuffer,
      partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
    }, start)

  /** Writes the start of a record of the open transaction, its position first, and the relation; takes the next index. */
  const writeHeader = (action: Uint8Array, lsn: Lsn.Lsn, relation: Relation): number => {
    writer.append(head, 0, headEnd)
    const commitIdx = nextIdx++
    writer.decimal(commitIdx)
    writer.bytes(action)
    writer.append(head, headEnd, tailEnd)
    writeLsn(writer, lsn)
    writer.byte(0x22) // "
    writer.bytes(relation.tableJson)
    return commitIdx
  }

  /** A transaction record (BEGIN, COMMIT) of the open transaction, at the next index. */
  const transactionRecord = (events: Array<ChangeEvent>, action: "BEGIN" | "COMMIT", lsn: Lsn.Lsn, tail: string): void => {
    const commitIdx = nextIdx++
    const start = writer.length
    writer.ascii(`${RecordBodies.positionPrefix(commitLsnText(), commitIdx)}"action":"${action[0]}",${transactionJson()}${tail}}`)
    pushDraft(events, {
      lsn, ackLsn: lsn, xid, commitLsn, commitIdx, action, schema: "", table: "", pk: undefined, commitTimeMs, body: emptyBuffer,
      partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
    }, start)
  }

  /** Writes the BEGIN record when the open transaction is about to get its first record. */
  /** An insert record of `row` (an insert, or the second half of a key change). */
  const insertRecord = (events: Array<ChangeEvent>, lsn: Lsn.Lsn, relation: Relation, row: Tuple, key: string | undefined): void => {
    const start = writer.length
    const commitIdx = writeHeader(INSERT, lsn, relation)
    writer.ascii(`,"columns":`)
    writeColumns(relation, row, false)
    writer.bytes(relation.pkJson)
    rowEvent(events, start, lsn, "I", relation, commitIdx, key)
  }

  const beforeRecord = (events: Array<ChangeEvent>): void => {
    if (!beginPending) return
    beginPending = false
    beginWritten = true
    transactionRecord(events, "BEGIN", beginLsn, "")
  }


  /** Decodes one message into `events`. */
  const decodeMessage = (message: WalMessage, events: Array<ChangeEvent>): void => {
    const { lsn } = message
    reader.reset(message)
    const tag = reader.byte()
    switch (tag) {
      case 0x42: { // B: final LSN (the commit's), commit time, xid
        const high = reader.uint32()
        const low = reader.uint32()
        commitLsn = PgWire.uint64Of(high, low)
        writePosition(high, low, false)
        nextIdx = 0
        const micros = reader.int64()
        xid = reader.uint32()
        commitTimeMs = CommitTimestamp.pgMicrosToMillis(micros)
        writeTail(micros)
        beginLsn = lsn
        sharedKeys.reset()
        beginPending = options.transactionRecords === true
        beginWritten = false
        events.push({
          lsn, ackLsn: lsn, xid, commitLsn, commitIdx: -1, action: "B", schema: "", table: "", pk: undefined, commitTimeMs,
          body: emptyBuffer
        })
        break
      }
      case 0x43: { // C: flags, commit LSN, end LSN, commit time
        reader.byte()
        reader.skip(8)
        const endLsn = reader.uint64()
        const timeMs = CommitTimestamp.pgMicrosToMillis(reader.int64())
        // the COMMIT record, after the last record of a transaction that had one
        if (beginWritten) transactionRecord(events, "COMMIT", lsn, `,"changes":${nextIdx - 1}`)
        beginPending = false
        beginWritten = false
        events.push({
          lsn, ackLsn: endLsn, xid, commitLsn, commitIdx: -1, action: "C", schema: "", table: "", pk: undefined,
          commitTimeMs: timeMs, body: emptyBuffer
        })
        xid = undefined
        commitTimeMs = undefined
        writeTail(undefined)
        break
      }
      case 0x4f: // O: origin LSN and name; nothing to publish
        reader.skip(8)
        reader.string()
        break
      case 0x52: // R
        readRelation()
        break
      case 0x59: { // Y: a user-defined type's namespace and name
        const oid = reader.uint32()
        namedTypes.set(oid, { namespace: reader.string(), name: reader.string() })
        break
      }
      case 0x49: { // I: relation, 'N', new tuple
        const relation = relationOf()
        if (reader.byte() !== 0x4e) throw new Malformed("insert without a new tuple")
        const row = newTuple.read(reader, relation)
        if (relation.own) break
        beforeRecord(events)
        const key = primaryKey(relation, row, undefined)
        if (relation.deferrable && key !== undefined) sharedKeys.arrived(`${relation.tableKey}${key}`, imageOf(relation, row))
        insertRecord(events, lsn, relation, row, key)
        break
      }
      case 0x55: { // U: relation, optional 'K'/'O' old tuple, 'N' new tuple
        const relation = relationOf()
        let kind = reader.byte()
        let old: Tuple | undefined
        let oldIsKey = true
        if (kind === 0x4b || kind === 0x4f) {
          oldIsKey = kind === 0x4b
          old = oldTuple.read(reader, relation)
          kind = reader.byte()
        }
        if (kind !== 0x4e) throw new Malformed("update without a new tuple")
        const row = newTuple.read(reader, relation)
        if (relation.own) break
        beforeRecord(events)
        const identitySource = old ?? (relation.identity === "d" || relation.identity === "i" ? row : undefined)
        const hasIdentity = identitySource !== undefined && relation.identity !== "n" && relation.hasMarkedColumn
        const identityKeysOnly = old === undefined || oldIsKey
        const key = primaryKey(relation, row, old)
        const oldKey = old === undefined ? undefined : primaryKey(relation, old, undefined)
        const split = hasIdentity && key !== undefined && oldKey !== undefined && key !== oldKey
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
            const start = writer.length
            const commitIdx = writeHeader(DELETE, lsn, relation)
            if (hasIdentity) writeIdentity(relation, identitySource, identityKeysOnly)
            writer.bytes(relation.pkJson)
            rowEvent(events, start, lsn, "D", relation, commitIdx, oldKey)
          }
          insertRecord(events, lsn, relation, row, key)
          break
        }
        const start = writer.length
        const commitIdx = writeHeader(UPDATE, lsn, relation)
        writer.ascii(`,"columns":`)
        writeColumns(relation, row, false)
        if (hasIdentity) writeIdentity(relation, identitySource, identityKeysOnly)
        writer.bytes(relation.pkJson)
        rowEvent(events, start, lsn, "U", relation, commitIdx, key)
        break
      }
      case 0x44: { // D: relation, 'K'/'O' old tuple
        const relation = relationOf()
        const kind = reader.byte()
        if (kind !== 0x4b && kind !== 0x4f) throw new Malformed("delete without an old tuple")
        const old = oldTuple.read(reader, relation)
        if (relation.own) break
        const key = primaryKey(relation, old, undefined)
        if (relation.deferrable && key !== undefined && !sharedKeys.concerns(`${relation.tableKey}${key}`, imageOf(relation, old), "departed")) {
          break
        }
        beforeRecord(events)
        const start = writer.length
        const commitIdx = writeHeader(DELETE, lsn, relation)
        writer.ascii(`,"identity":`)
        writeColumns(relation, old, kind === 0x4b)
        writer.bytes(relation.pkJson)
        rowEvent(events, start, lsn, "D", relation, commitIdx, key)
        break
      }
      case 0x54: { // T: relation count, options, relation ids — one event per table, as wal2json writes them
        beforeRecord(events)
        const count = reader.int32()
        reader.byte()
        for (let i = 0; i < count; i++) {
          const relation = relationOf()
          if (relation.own) continue
          const start = writer.length
          const commitIdx = writeHeader(TRUNCATE, lsn, relation)
          writer.byte(0x7d) // }
          pushDraft(events, {
            lsn, ackLsn: lsn, xid, commitLsn, commitIdx, action: "T", schema: relation.schema, table: relation.table,
            pk: undefined, commitTimeMs, body: emptyBuffer,
            partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
          }, start)
        }
        break
      }
      case 0x4d: { // M: flags, LSN, prefix, content
        const transactional = (reader.byte() & 1) === 1
        const messageLsn = reader.uint64()
        const prefix = reader.string()
        // the content is bytes (bytea): kept as sent, as wal2json does, even when not valid UTF-8
        const contentLength = reader.int32()
        const contentStart = reader.skip(contentLength)
        const context = transactional ? transactionJson() : noTransactionJson
        if (transactional) beforeRecord(events)
        // a non-transactional message is sent on its own, at its own position
        const recordLsn = transactional ? commitLsn : lsn
        const recordIdx = transactional ? nextIdx++ : 0
        const start = writer.length
        writer.utf8(`${RecordBodies.positionPrefix(Lsn.format(recordLsn), recordIdx)}"action":"M",${context},` +
          `"lsn":"${Lsn.format(messageLsn)}","transactional":${transactional},` +
          `"prefix":${JSON.stringify(prefix)},"content":`)
        // escaped byte by byte the way PostgreSQL's escape_json (wal2json's) does: bytes that are not
        // valid UTF-8 pass unchanged, valid UTF-8 comes out exactly as JSON.stringify would write it
        writer.jsonString(reader.buffer, contentStart, contentStart + contentLength)
        writer.byte(0x7d) // }
        pushDraft(events, {
          lsn, ackLsn: lsn, xid: transactional ? xid : undefined, commitLsn: recordLsn, commitIdx: recordIdx, action: "M",
          schema: "", table: "", pk: undefined, commitTimeMs: transactional ? commitTimeMs : undefined, body: emptyBuffer,
          partitionKey: undefined, recordBytes: undefined, arrivedAt: undefined, frontierBlock: undefined, frontierIndex: undefined
        }, start)
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
    reader.reset(message)
    let tag = 0
    let schema = ""
    let table = ""
    let transactional = true
    try {
      tag = reader.byte()
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
      body: emptyBuffer,
      oversizedBytes: bytes
    }
  }

  const decode = (messages: ReadonlyArray<WalMessage>): Result.Result<ReadonlyArray<ChangeEvent>, DecodeError> => {
    const events: Array<ChangeEvent> = []
    try {
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
          writer.reset()
          drafts.fill(undefined, 0, draftCount)
          draftCount = 0
          return Result.fail(DecodeError.malformed(message.lsn, what))
        }
      }
      const bodies = writer.finish()
      for (let i = 0; i < bodies.length; i++) {
        drafts[i]!.body = bodies[i]!
        drafts[i] = undefined
      }
      draftCount = 0
      return Result.succeed(events)
    } finally {
      reader.release()
    }
  }

  return { plugin: "pgoutput", startOptions: startOptions(options), decode }
}

/**
 * Debezium's PostgreSQL change event value, as its JSON converter writes it with
 * `schemas.enable=false`, rendered from a record body in the wal2json shape: `before`, `after`,
 * `source`, `op`, `ts_ms`, `transaction` (a logical message: `op`, `ts_ms`, `source`, `message`,
 * `transaction`). The record's place in commit order is in `transaction`: `id` is
 * `"<xid>:<commit LSN as a decimal>"`, `total_order` is `commit_idx + 1`. Values are converted by
 * {@link DebeziumValues}; bytes that need no conversion (text, json, numbers) are copied as they are.
 */
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import type { BatchWriter } from "./BatchWriter.ts"
import type { Excluded } from "./ColumnFilter.ts"
import * as DebeziumValues from "./DebeziumValues.ts"
import * as JsonScan from "./JsonScan.ts"
import type { BodyView, ColumnList } from "./WalBody.ts"

/**
 * Text rendered once and reused, kept by each formatter (not by the module): the JSON of column
 * names and tables (each map cleared at 8192 entries), the decimal text of the last commit LSN,
 * the value converters by type name, and the strings read from bodies.
 */
export interface Memo {
  readonly names: Map<string, string>
  readonly tables: Map<string, string>
  commitLsn: Lsn.Lsn
  commitLsnText: string
  readonly converters: DebeziumValues.Converters
  readonly interned: JsonScan.Interner
}

export const makeMemo = (): Memo => ({
  names: new Map(),
  tables: new Map(),
  commitLsn: -1n,
  commitLsnText: "",
  converters: DebeziumValues.makeConverters(),
  interned: JsonScan.makeInterner()
})

/** What every record of a stream shares; the strings as JSON text (quoted). */
export interface Context {
  /** The formatter's rendered-once text. */
  readonly memo: Memo
  /** `source.version`. */
  readonly version: string
  /** `source.name`: the logical server name (the slot). */
  readonly name: string
  /** `source.db`. */
  readonly db: string
  /** `ts_ms`: when the service rendered the batch. */
  readonly nowMs: number
  /** `,"source":{"version":…,"connector":"postgresql","name":…,"ts_ms":` (see {@link context}). */
  readonly sourceHead: string
  /** Domain type names to their base type's (see RecordFormat.Options). */
  readonly domains?: ReadonlyMap<string, string> | undefined
}

/** The context of a batch. */
export const context = (
  memo: Memo,
  version: string,
  name: string,
  db: string,
  nowMs: number,
  domains?: ReadonlyMap<string, string> | undefined
): Context => ({
  memo, version, name, db, nowMs, domains,
  sourceHead: `,"source":{"version":${version},"connector":"postgresql","name":${name},"ts_ms":`
})

const ops: Readonly<Record<string, string>> = { I: "c", U: "u", D: "d", T: "t", M: "m", R: "r" }

/** `"name":` for a column name (names repeat on every record: rendered once). */
const nameJson = (memo: Memo, name: string): string => {
  const namesJson = memo.names
  let json = namesJson.get(name)
  if (json === undefined) {
    json = JSON.stringify(name) + ":"
    if (namesJson.size >= 8192) namesJson.clear()
    namesJson.set(name, json)
  }
  return json
}

/** `"schema":…,"table":…` (tables repeat on every record: rendered once). */
const tableJson = (memo: Memo, schema: string, table: string): string => {
  const tablesJson = memo.tables
  const key = `${schema}\u0000${table}`
  let json = tablesJson.get(key)
  if (json === undefined) {
    json = `"schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)}`
    if (tablesJson.size >= 8192) tablesJson.clear()
    tablesJson.set(key, json)
  }
  return json
}

/** Writes a row as `{"column":value,…}`, leaving excluded columns out. */
const writeRow = (
  view: BodyView,
  list: ColumnList,
  excluded: Excluded | undefined,
  context: Context,
  out: BatchWriter
): void => {
  const { memo, domains } = context
  const { bytes } = view
  let first = true
  for (const item of list.items) {
    if (excluded?.(item.name)) continue
    out.text(first ? "{" : ",")
    first = false
    out.text(nameJson(memo, item.name))
    if (item.value === undefined) {
      out.text("null")
      continue
    }
    const base = domains?.get(item.type)
    let converter = base === undefined ? memo.converters.converterFor(item.type) : memo.converters.domainConverterFor(base)
    // a number or boolean written as a string: a domain over it (pgoutput names it by its base type)
    if (converter === DebeziumValues.keep && bytes[item.value.start] === 0x22 && DebeziumValues.isUnquotedScalar(item.type)) {
      converter = memo.converters.domainConverterFor(item.type)
    }
    const converted = converter === DebeziumValues.keep
      ? undefined
      : converter(JsonScan.text(bytes, item.value.start, item.value.end))
    if (converted !== undefined) out.text(converted)
    else out.range(bytes, item.value.start, item.value.end)
  }
  out.text(first ? "{}" : "}")
}

/** Whether an update's old values are more than its key (REPLICA IDENTITY FULL or USING INDEX). */
const hasOldRow = (view: BodyView): boolean => {
  const identity = view.identity
  if (identity === undefined || identity.items.length === 0) return false
  const key = new Set(view.pk?.items.map((item) => item.name) ?? [])
  return identity.items.some((item) => !key.has(item.name))
}

/** `16/B374D848` as a decimal number's text, without a BigInt while it is below 2^53. */
const decimalLsn = (text: string | undefined, fallback: Lsn.Lsn): string => {
  const slash = text === undefined ? -1 : text.indexOf("/")
  if (text !== undefined && slash > 0 && slash <= 6 && text.length - slash - 1 <= 8 && text.length - slash > 1) {
    const high = parseInt(text.slice(0, slash), 16)
    const low = parseInt(text.slice(slash + 1), 16)
    if (high < 0x200000 && Number.isInteger(high) && Number.isInteger(low)) return String(high * 0x1_0000_0000 + low)
  }
  return ((text === undefined ? undefined : Lsn.parse(text)) ?? fallback).toString()
}

/** The decimal text of the last commit LSN asked for (every record of a transaction asks). */
const decimalCommitLsn = (memo: Memo, lsn: Lsn.Lsn): string => {
  if (lsn !== memo.commitLsn) {
    memo.commitLsn = lsn
    memo.commitLsnText = lsn.toString()
  }
  return memo.commitLsnText
}

/**
 * Writes the event's Debezium value (not ending the record). `dataCollectionOrder` is the 1-based
 * index of the record among its transaction's records of the same table; `undefined` outside a
 * transaction (then `transaction` is null).
 */
export const write = (
  event: ChangeEvent,
  view: BodyView,
  excluded: Excluded | undefined,
  dataCollectionOrder: number | undefined,
  context: Context,
  out: BatchWriter
): void => {
  const op = ops[view.action]
  if (op === undefined) throw new JsonScan.Malformed(`no Debezium operation for action ${JSON.stringify(view.action)}`)
  const commitLsn = decimalCommitLsn(context.memo, event.commitLsn)
  const lsn = decimalLsn(view.lsn, event.lsn)
  const xid = view.xid ?? (event.xid === undefined ? "null" : String(event.xid))
  if (op === "m") {
    // logical messages are rare: their envelope is assembled as text
    const source = `"source":{"version":${context.version},"connector":"postgresql","name":${context.name},` +
      `"ts_ms":${event.commitTimeMs ?? context.nowMs},"snapshot":"false","db":${context.db},` +
      `"sequence":"[\\"${commitLsn}\\",\\"${lsn}\\"]",${tableJson(context.memo, view.schema, view.table)},` +
      `"txId":${xid},"lsn":${lsn},"xmin":null}`
    const transaction = dataCollectionOrder === undefined
      ? `"transaction":null`
      : `"transaction":{"id":"${xid}:${commitLsn}","total_order":${event.commitIdx + 1},` +
        `"data_collection_order":${dataCollectionOrder}}`
    const { bytes, prefix, content } = view
    const prefixJson = prefix === undefined ? `""` : JsonScan.text(bytes, prefix.start, prefix.end)
    const contentBase64 = content === undefined || bytes[content.start] !== 0x22
      ? ""
      : Buffer.from(JsonScan.stringBytes(bytes, content.start, content.end)).toString("base64")
    out.text(`{"op":"m","ts_ms":${context.nowMs},${source},"message":{"prefix":${prefixJson},"content":"${contentBase64}"},` +
      `${transaction}}`)
    return
  }
  out.text(`{"before":`)
  if (op === "d" && view.identity !== undefined) writeRow(view, view.identity, excluded, context, out)
  else if (op === "u" && view.identity !== undefined && hasOldRow(view)) writeRow(view, view.identity, excluded, context, out)
  else out.text("null")
  out.text(`,"after":`)
  if ((op === "c" || op === "u" || op === "r") && view.columns !== undefined) writeRow(view, view.columns, excluded, context, out)
  else out.text("null")
  // the source block piece by piece: nothing per record is concatenated
  out.text(context.sourceHead)
  out.integer(event.commitTimeMs ?? context.nowMs)
  out.text(op === "r" ? `,"snapshot":"true","db":` : `,"snapshot":"false","db":`)
  out.text(context.db)
  out.text(`,"sequence":"[\\"`)
  out.text(commitLsn)
  out.text(`\\",\\"`)
  out.text(lsn)
  out.text(`\\"]",`)
  out.text(tableJson(context.memo, view.schema, view.table))
  out.text(`,"txId":`)
  out.text(xid)
  out.text(`,"lsn":`)
  out.text(lsn)
  out.text(`,"xmin":null},"op":"`)
  out.text(op)
  out.text(`","ts_ms":`)
  out.integer(context.nowMs)
  if (dataCollectionOrder === undefined) {
    out.text(`,"transaction":null}`)
    return
  }
  out.text(`,"transaction":{"id":"`)
  out.text(xid)
  out.text(":")
  out.text(commitLsn)
  out.text(`","total_order":`)
  out.integer(event.commitIdx + 1)
  out.text(`,"data_collection_order":`)
  out.integer(dataCollectionOrder)
  out.text("}}")
}

/**
 * A transaction record (PUBLISH_TRANSACTION_RECORDS) as Debezium's transaction metadata event:
 * `status` BEGIN or END, `id` as in the changes' `transaction` block, and for END the number of
 * records and their count per table (`data_collections`, `schema.table`).
 */
export const writeTransaction = (
  event: ChangeEvent,
  view: BodyView,
  perTable: ReadonlyMap<string, number> | undefined,
  context: Context,
  out: BatchWriter
): void => {
  const xid = view.xid ?? (event.xid === undefined ? "null" : String(event.xid))
  const head = `{"status":"${event.action === "BEGIN" ? "BEGIN" : "END"}","id":"${xid}:${event.commitLsn.toString()}",` +
    `"ts_ms":${event.commitTimeMs ?? context.nowMs},`
  if (event.action === "BEGIN") {
    out.text(`${head}"event_count":null,"data_collections":null}`)
    return
  }
  let count = 0
  const collections: Array<string> = []
  for (const [table, records] of perTable ?? []) {
    count += records
    // logical messages count as records but belong to no table
    if (table === ".") continue
    collections.push(`{"data_collection":${JSON.stringify(table)},"event_count":${records}}`)
  }
  out.text(`${head}"event_count":${count},"data_collections":[${collections.join(",")}]}`)
}

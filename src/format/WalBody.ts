/**
 * A view of one record body in the wal2json format-version 2 shape both decoders produce (the
 * record's position first): the spans of its fields and of each column, read with
 * {@link JsonScan} without building values. The formats cut and re-assemble bodies from it.
 */
import * as JsonScan from "./JsonScan.ts"

/** A span `[start, end)` of the body. */
export interface Span {
  readonly start: number
  readonly end: number
}

/** One `{"name":…,"type":…,"value":…}` of a column list (`value` absent in `pk`). */
export interface ColumnView extends Span {
  readonly name: string
  readonly type: string
  /** The value's span; undefined in `pk` entries. */
  readonly value: Span | undefined
}

export interface ColumnList extends Span {
  readonly items: ReadonlyArray<ColumnView>
}

export interface BodyView {
  readonly bytes: Uint8Array
  readonly action: string
  /** Raw JSON text of these fields (numbers, strings with quotes, null), when present. */
  readonly xid: string | undefined
  readonly timestamp: Span | undefined
  readonly lsn: string | undefined
  readonly schema: string
  readonly table: string
  readonly columns: ColumnList | undefined
  readonly identity: ColumnList | undefined
  readonly pk: ColumnList | undefined
  /** Logical messages. */
  readonly transactional: boolean | undefined
  readonly prefix: Span | undefined
  readonly content: Span | undefined
}

const columnList = (b: Uint8Array, start: number, end: number): ColumnList => {
  const items: Array<ColumnView> = []
  JsonScan.elements(b, start, (itemStart, itemEnd) => {
    let name = ""
    let type = ""
    let value: Span | undefined
    JsonScan.members(b, itemStart, (key, s, e) => {
      if (key === "name") name = JsonScan.stringValue(b, s, e)
      else if (key === "type") type = JsonScan.stringValue(b, s, e)
      else if (key === "value") value = { start: s, end: e }
    })
    items.push({ start: itemStart, end: itemEnd, name, type, value })
  })
  return { start, end, items }
}

/** Reads a body; throws {@link JsonScan.Malformed} when it is not one. */
export const read = (bytes: Uint8Array): BodyView => {
  let action = ""
  let xid: string | undefined
  let timestamp: Span | undefined
  let lsn: string | undefined
  let schema = ""
  let table = ""
  let columns: ColumnList | undefined
  let identity: ColumnList | undefined
  let pk: ColumnList | undefined
  let transactional: boolean | undefined
  let prefix: Span | undefined
  let content: Span | undefined
  JsonScan.members(bytes, JsonScan.skipWs(bytes, 0), (key, start, end) => {
    switch (key) {
      case "action":
        action = JsonScan.stringValue(bytes, start, end)
        break
      case "xid":
        xid = JsonScan.ascii(bytes, start, end)
        break
      case "timestamp":
        timestamp = { start, end }
        break
      case "lsn":
        lsn = bytes[start] === 0x22 ? JsonScan.stringValue(bytes, start, end) : undefined
        break
      case "schema":
        schema = JsonScan.stringValue(bytes, start, end)
        break
      case "table":
        table = JsonScan.stringValue(bytes, start, end)
        break
      case "columns":
        columns = columnList(bytes, start, end)
        break
      case "identity":
        identity = columnList(bytes, start, end)
        break
      case "pk":
        pk = columnList(bytes, start, end)
        break
      case "transactional":
        transactional = bytes[start] === 0x74 /* t */
        break
      case "prefix":
        prefix = { start, end }
        break
      case "content":
        content = { start, end }
        break
    }
  })
  return { bytes, action, xid, timestamp, lsn, schema, table, columns, identity, pk, transactional, prefix, content }
}

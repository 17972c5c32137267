/**
 * Reads a table in chunks by its paging key (keyset pagination): `WHERE (k1, k2) > ($1, $2)
 * ORDER BY k1, k2 LIMIT n`, every column as text, each row rendered as the record body of an
 * insert would carry it (wal2json format-version 2: names, types, values; numbers unquoted) and
 * keyed by its stream key as the decoders key a live change of the same row.
 */
import * as Effect from "effect/Effect"
import type { PgError } from "../Errors.ts"
import * as Quote from "../postgres/Quote.ts"
import * as PgOutputValues from "../replication/PgOutputValues.ts"
import type { Query } from "./Query.ts"
import { sqlName, type TableShape } from "./TableShape.ts"

/** One row of a chunk. */
export interface ChunkRow {
  /** The paging key's values as text: the cursor after this row. */
  readonly cursor: ReadonlyArray<string>
  /** The paging key as rendered JSON values (`[1,"a"]`): compared with the keys of live changes. */
  readonly pageKey: string
  /** The stream key as the decoders render `pk` (`[1]`); undefined when the table has none. */
  readonly pk: string | undefined
  /** The body after the record's header: `"schema":…,"table":…,"columns":[…],"pk":[…]}`. */
  readonly tail: string
}

export interface Chunk {
  readonly rows: ReadonlyArray<ChunkRow>
  /** UTF-8 bytes of the rows' tails (for sizing the next chunk). */
  readonly bytes: number
}

/** The SELECT of one chunk; `$1…$k` are the cursor's values when there is a cursor. */
export const selectSql = (shape: TableShape, afterCursor: boolean, limit: number): string => {
  // output columns get positional names: ORDER BY must sort by the table's columns, not their text
  const columns = shape.columns.map((c, i) => `t.${Quote.identifier(c.name)}::text AS c${i}`).join(", ")
  const keyNames = shape.pageKey.map((i) => `t.${Quote.identifier(shape.columns[i]!.name)}`)
  const keyList = keyNames.join(", ")
  const where = afterCursor
    ? ` WHERE (${keyList}) > (${shape.pageKey.map((i, p) => `$${p + 1}::${shape.columns[i]!.type}`).join(", ")})`
    : ""
  return `SELECT ${columns} FROM ${sqlName(shape)} AS t${where} ORDER BY ${keyList} LIMIT ${Math.max(1, Math.floor(limit))}`
}

/** A value as JSON the way the records carry it; `null` for NULL. */
const render = (kind: PgOutputValues.ValueKind, text: string | null): string =>
  text === null
    ? "null"
    // a boolean cast to text reads `true`/`false` (its output function, which pgoutput sends, writes t/f)
    : PgOutputValues.renderValue(kind, kind === "boolean" && text === "true" ? "t" : text)

/** Renders one row (text values in column order). */
export const renderRow = (shape: TableShape, values: ReadonlyArray<string | null>): ChunkRow => {
  const rendered = shape.columns.map((column, i) => render(column.kind, values[i] ?? null))
  const columns = shape.columns.map((column, i) =>
    `{"name":${JSON.stringify(column.name)},"type":${JSON.stringify(column.type)},"value":${rendered[i]}}`).join(",")
  const pkJson = shape.streamKey.length === 0 ? "" : `,"pk":[${shape.streamKey.map((i) => {
    const column = shape.columns[i]!
    return `{"name":${JSON.stringify(column.name)},"type":${JSON.stringify(column.type)}}`
  }).join(",")}]`
  return {
    cursor: shape.pageKey.map((i) => values[i] ?? ""),
    pageKey: `[${shape.pageKey.map((i) => rendered[i]).join(",")}]`,
    pk: shape.streamKey.length === 0 ? undefined : `[${shape.streamKey.map((i) => rendered[i]).join(",")}]`,
    tail: `"schema":${JSON.stringify(shape.schema)},"table":${JSON.stringify(shape.table)},"columns":[${columns}]${pkJson}}`
  }
}

/**
 * The text size of the widest of a few rows (values decompressed): sizes the first chunk, so a table
 * of wide rows is not read 500 rows at a time before the chunk size adapts.
 */
export const sampleRowBytes = (query: Query, shape: TableShape): Effect.Effect<number, PgError> =>
  Effect.map(
    query(`SELECT coalesce(max(octet_length(t::text)), 0)::text FROM (SELECT * FROM ${sqlName(shape)} LIMIT 20) AS t`),
    (rows) => Number(rows[0]?.[0] ?? 0)
  )

/** Reads the rows after `cursor` (from the start when undefined), at most `limit`. */
export const read = (
  query: Query,
  shape: TableShape,
  cursor: ReadonlyArray<string | null> | undefined,
  limit: number
): Effect.Effect<Chunk, PgError> =>
  Effect.map(query(selectSql(shape, cursor !== undefined, limit), cursor ?? []), (rows) => {
    let bytes = 0
    const chunkRows = rows.map((values) => {
      const row = renderRow(shape, values)
      bytes += Buffer.byteLength(row.tail, "utf8")
      return row
    })
    return { rows: chunkRows, bytes }
  })

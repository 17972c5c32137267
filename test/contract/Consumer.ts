/**
 * A consumer of the stream as the README describes it: `shouldApply` is the README's function,
 * verbatim (readme-consumer.test.ts checks that), and `rebuild` replays records grouped by partition
 * key, in a chosen key order, into tables by that rule.
 */

// ---- the README's consumer function (keep identical to README.md, Delivery guarantees)

/** The highest position applied per partition key. */
export type Applied = Map<string, { readonly lsn: bigint; readonly idx: number }>

/** `16/B374D848` as a number. */
export const lsnValue = (text: string): bigint => {
  const [high = "", low = ""] = text.split("/")
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`)
}

/** Whether to apply a record read under `partitionKey`; remembers its position when so. */
export const shouldApply = (
  applied: Applied,
  partitionKey: string,
  record: { readonly commit_lsn: string; readonly commit_idx: number }
): boolean => {
  const lsn = lsnValue(record.commit_lsn)
  const last = applied.get(partitionKey)
  if (last !== undefined && (lsn < last.lsn || (lsn === last.lsn && record.commit_idx <= last.idx))) return false
  applied.set(partitionKey, { lsn, idx: record.commit_idx })
  return true
}

// ---- rebuilding tables

/** A record as read from Kinesis. */
export interface StreamRecord {
  readonly partitionKey: string
  readonly data: string
}

interface Column {
  readonly name: string
  readonly value: unknown
}

/** The fields of a record body the rebuild reads. */
export interface RecordBody {
  readonly commit_lsn: string
  readonly commit_idx: number
  readonly action: string
  readonly schema?: string
  readonly table?: string
  readonly columns?: ReadonlyArray<Column>
  readonly identity?: ReadonlyArray<Column>
}

export type Row = Record<string, unknown>

/** `schema.table` → partition key → row. */
export type Tables = Map<string, Map<string, Row>>

/** Records grouped by partition key, each key's records in stream order. */
export const byKey = (records: ReadonlyArray<StreamRecord>): Map<string, Array<RecordBody>> => {
  const keys = new Map<string, Array<RecordBody>>()
  for (const record of records) {
    let list = keys.get(record.partitionKey)
    if (list === undefined) keys.set(record.partitionKey, list = [])
    list.push(JSON.parse(record.data) as RecordBody)
  }
  return keys
}

/**
 * Rebuilds the tables: keys are replayed one after the other in `order` (any order gives the same
 * result when each row's history is on one key, in order), each key's records by the README's rule.
 * An insert or a backfilled row (R) sets the row; an update merges its columns into it (a column left out is an unchanged
 * TOAST value); a delete removes it. Other records (T, M, B, C) change no row.
 */
export const rebuild = (
  records: ReadonlyArray<StreamRecord>,
  order: (keys: ReadonlyArray<string>) => ReadonlyArray<string>
): Tables => {
  const grouped = byKey(records)
  const applied: Applied = new Map()
  const tables: Tables = new Map()
  const tableOf = (body: RecordBody): Map<string, Row> => {
    const name = `${body.schema}.${body.table}`
    let table = tables.get(name)
    if (table === undefined) tables.set(name, table = new Map())
    return table
  }
  for (const key of order([...grouped.keys()])) {
    for (const body of grouped.get(key)!) {
      if (!shouldApply(applied, key, body)) continue
      if (body.action === "I" || body.action === "R") tableOf(body).set(key, Object.fromEntries((body.columns ?? []).map((c) => [c.name, c.value])))
      else if (body.action === "U") {
        const table = tableOf(body)
        table.set(key, { ...table.get(key), ...Object.fromEntries((body.columns ?? []).map((c) => [c.name, c.value])) })
      } else if (body.action === "D") tableOf(body).delete(key)
    }
  }
  return tables
}

/** A table's rows as sorted JSON texts, for comparing with the database's. */
export const rowsOf = (tables: Tables, table: string): Array<string> =>
  [...(tables.get(table)?.values() ?? [])].map(canonical).sort()

/** A row as JSON with its columns in name order. */
export const canonical = (row: Row): string =>
  JSON.stringify(Object.fromEntries(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))

/**
 * The demo's account of changes: every change the workload wrote (by a unique identity), every
 * record read back from the stream, and which written changes have arrived, with their end-to-end
 * latency (read-back time minus the client timestamp written in the row).
 *
 * Identity: inserts and updates carry a unique `change_id` column (`c:<change_id>`); a row is
 * deleted once, so a delete is `d:<table>:<id>`. Rows a backfill published (`R` records) are
 * counted apart, by `<table>:<id>`, against the rows that were there before the slot.
 */
import { type Distribution, distribution } from "../../support/Distribution.ts"

export type Action = "I" | "U" | "D"

export const insertOrUpdateKey = (changeId: number): string => `c:${changeId}`
export const deleteKey = (table: string, id: number): string => `d:${table}:${id}`

interface Column {
  readonly name?: unknown
  readonly value?: unknown
}

/** The identity and client timestamp of a record body, when it is one of the demo's changes. */
export const identify = (body: unknown, schema: string): { readonly key: string; readonly writtenAtMs: number | undefined } | undefined => {
  if (typeof body !== "object" || body === null) return undefined
  const change = body as { action?: unknown; schema?: unknown; table?: unknown; columns?: unknown; identity?: unknown }
  if (change.schema !== schema || typeof change.table !== "string") return undefined
  const valueOf = (columns: unknown, name: string): unknown =>
    Array.isArray(columns) ? (columns as ReadonlyArray<Column>).find((c) => c.name === name)?.value : undefined
  if (change.action === "I" || change.action === "U") {
    const changeId = Number(valueOf(change.columns, "change_id"))
    const writtenAt = Number(valueOf(change.columns, "written_at_ms"))
    return Number.isFinite(changeId)
      ? { key: insertOrUpdateKey(changeId), writtenAtMs: Number.isFinite(writtenAt) ? writtenAt : undefined }
      : undefined
  }
  if (change.action === "D") {
    const id = Number(valueOf(change.identity, "id"))
    return Number.isFinite(id) ? { key: deleteKey(change.table, id), writtenAtMs: undefined } : undefined
  }
  return undefined
}

export interface LedgerSnapshot {
  /** Distinct rows read back as backfilled (R records), and how many were expected. */
  readonly backfilled: number
  readonly backfillExpected: number
  readonly written: number
  readonly writtenByAction: Readonly<Record<Action, number>>
  /** Distinct written changes read back from the stream. */
  readonly arrived: number
  readonly missing: number
  readonly duplicates: number
  /** Records read that are not the demo's changes (other tables, messages). */
  readonly otherRecords: number
  readonly recordsRead: number
  readonly latencyMs: Distribution | undefined
  readonly lastLatencyMs: number | undefined
  readonly sample: string | undefined
}

export class Ledger {
  private readonly schema: string
  /** Written, not yet read back: key → client write time. */
  private readonly outstanding = new Map<string, number>()
  /** Read back before the writer recorded it (the commit raced the bookkeeping). */
  private readonly early = new Map<string, number>()
  private readonly arrivedKeys = new Set<string>()
  private readonly backfilledKeys = new Set<string>()
  private backfillExpected = 0
  private backfillTable: string | undefined
  private readonly byAction: Record<Action, number> = { I: 0, U: 0, D: 0 }
  private written = 0
  private duplicates = 0
  private other = 0
  private read = 0
  private latencies: Array<number> = []
  private lastLatency: number | undefined
  private sample: string | undefined

  constructor(schema: string) {
    this.schema = schema
  }

  /** The table's rows that were in the database before the slot: the backfill should publish each once. */
  expectBackfill(table: string, rows: number): void {
    this.backfillTable = table
    this.backfillExpected = rows
  }

  /** Records a committed change. */
  wrote(key: string, action: Action, writtenAtMs: number): void {
    this.written++
    this.byAction[action]++
    const readAt = this.early.get(key)
    if (readAt !== undefined) {
      this.early.delete(key)
      this.arrive(key, readAt - writtenAtMs)
    } else {
      this.outstanding.set(key, writtenAtMs)
    }
  }

  /** Records a record read back from the stream. */
  readBack(data: Uint8Array, readAtMs: number): void {
    this.read++
    const text = Buffer.from(data).toString("utf8")
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      this.other++
      return
    }
    const row = parsed as { action?: unknown; schema?: unknown; table?: unknown; columns?: ReadonlyArray<Column> }
    if (row.action === "R" && row.schema === this.schema) {
      // the live tables are backfilled too (INITIAL_BACKFILL takes every table): those rows are not counted
      if (row.table !== this.backfillTable) {
        this.other++
        return
      }
      const key = `${String(row.table)}:${String(row.columns?.find((c) => c.name === "id")?.value)}`
      if (this.backfilledKeys.has(key)) this.duplicates++
      else this.backfilledKeys.add(key)
      return
    }
    const id = identify(parsed, this.schema)
    if (id === undefined) {
      this.other++
      return
    }
    this.sample = text
    if (this.arrivedKeys.has(id.key) || this.early.has(id.key)) {
      this.duplicates++
      return
    }
    const writtenAt = this.outstanding.get(id.key)
    if (writtenAt === undefined) {
      this.early.set(id.key, readAtMs)
      return
    }
    this.outstanding.delete(id.key)
    this.arrive(id.key, readAtMs - (id.writtenAtMs ?? writtenAt))
  }

  private arrive(key: string, latencyMs: number): void {
    this.arrivedKeys.add(key)
    this.latencies.push(latencyMs)
    this.lastLatency = latencyMs
  }

  /** Whether every written change has arrived. */
  complete(): boolean {
    return this.outstanding.size === 0 && this.backfilledKeys.size >= this.backfillExpected
  }

  snapshot(): LedgerSnapshot {
    return {
      backfilled: this.backfilledKeys.size,
      backfillExpected: this.backfillExpected,
      written: this.written,
      writtenByAction: { ...this.byAction },
      arrived: this.arrivedKeys.size,
      missing: this.outstanding.size,
      duplicates: this.duplicates,
      otherRecords: this.other + this.early.size,
      recordsRead: this.read,
      latencyMs: distribution(Float64Array.from(this.latencies)),
      lastLatencyMs: this.lastLatency,
      sample: this.sample
    }
  }
}

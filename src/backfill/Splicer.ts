/**
 * The backfill's place in the stream: it sees every decoded read before the record format and the
 * pipeline do, and
 * - consumes the service's watermark messages (never published);
 * - between a chunk's low and high watermark, notes the paging keys of the chunk's table that
 *   change (the new and the old key of every insert, update and delete), and whether the table is
 *   truncated or changed in a way it cannot key (a change over the record limit);
 * - at the high watermark, puts the chunk's rows whose keys did not change there, as `R` records,
 *   in place of the watermark: positioned at its transaction (`commit_lsn` of its commit,
 *   `commit_idx` counting on after the message's), keyed by their stream key like live changes.
 *   A truncated or unkeyable window gives no rows: the chunk is read again.
 *
 * With PUBLISH_TRANSACTION_RECORDS, a watermark's transaction loses its BEGIN and COMMIT records
 * too (the R records are not a transaction of the database). It works on whole reads and touches
 * only reads that hold a logical message or fall inside a window; everything else passes as it
 * came. One chunk at a time is expected. It counts the reads that carry live changes (anything
 * but watermarks and transaction boundaries and records), so the worker can tell a busy stream from an idle one.
 */
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import * as JsonScan from "../format/JsonScan.ts"
import type * as WalBody from "../format/WalBody.ts"
import * as WalBodyRead from "../format/WalBody.ts"
import * as RecordBodies from "../replication/RecordBodies.ts"
import type { ChunkRow } from "./ChunkReader.ts"
import * as Watermark from "./Watermark.ts"

/** What the high watermark found. */
export type Outcome =
  | {
    readonly _tag: "Published"
    /** Rows published as R records. */
    readonly published: number
    /** Rows left out because their key changed in the window (the stream carries them). */
    readonly skipped: number
    /** The commit LSN of the high watermark's transaction: acknowledged once the frontier is past it. */
    readonly commitLsn: Lsn.Lsn
  }
  | { readonly _tag: "Retry"; readonly reason: string; readonly commitLsn: Lsn.Lsn }

/** A chunk the splicer waits for. */
export interface Expected {
  readonly chunk: string
  readonly schema: string
  readonly table: string
  /** The paging key's column names, in paging order. */
  readonly pageKeyColumns: ReadonlyArray<string>
  /** Called (synchronously, from the decoding fiber) when the high watermark is handled. */
  readonly onHigh: (outcome: Outcome) => void
}

interface Pending extends Expected {
  rows: ReadonlyArray<ChunkRow> | undefined
  open: boolean
  changed: Set<string>
  retry: string | undefined
}

export interface Splicer {
  /** The chunk about to be read: call before emitting its low watermark. */
  readonly expect: (chunk: Expected) => void
  /** The chunk's rows: call after selecting them and before emitting its high watermark. */
  readonly rows: (chunk: string, rows: ReadonlyArray<ChunkRow>) => void
  /** Forgets the expected chunk (its backfill failed or was cancelled). */
  readonly forget: (chunk: string) => void
  /** Rewrites one decoded read. */
  readonly intercept: (events: ReadonlyArray<ChangeEvent>) => ReadonlyArray<ChangeEvent>
  /** How many reads so far carried a live change (a change or message other than the service's watermarks). */
  readonly liveReads: () => number
}

/** A value's JSON as the chunk reader renders it: numbers as written, strings re-serialized. */
const canonical = (view: WalBody.BodyView, span: WalBody.Span): string => {
  const raw = JsonScan.text(view.bytes, span.start, span.end)
  return raw.startsWith(`"`) ? JSON.stringify(JSON.parse(raw) as string) : raw
}

/** The paging key of a column list, or undefined when a key column is missing from it. */
const keyOf = (view: WalBody.BodyView, list: WalBody.ColumnList | undefined, names: ReadonlyArray<string>): string | undefined => {
  if (list === undefined) return undefined
  const values: Array<string> = []
  for (const name of names) {
    const column = list.items.find((item) => item.name === name)
    if (column?.value === undefined) return undefined
    values.push(canonical(view, column.value))
  }
  return `[${values.join(",")}]`
}

/** A change or message (the service's watermarks never reach this): not a transaction boundary or record. */
const isLive = (action: ChangeEvent["action"]): boolean =>
  action !== "B" && action !== "C" && action !== "BEGIN" && action !== "COMMIT"

/** A splicer for one replication session of `slot`. */
export const make = (slot: string): Splicer => {
  let pending: Pending | undefined
  /** The commit LSN of the last watermark's transaction: its transaction records are not published either. */
  let watermarkCommit: Lsn.Lsn | undefined
  let liveReads = 0

  /** Notes what a change of the chunk's table inside the window means for the chunk. */
  const note = (chunk: Pending, event: ChangeEvent): void => {
    if (event.action === "T") {
      chunk.retry ??= "the table was truncated while the chunk was read"
      return
    }
    if (event.action !== "I" && event.action !== "U" && event.action !== "D") return
    if (event.oversizedBytes !== undefined || event.unreadableBytes !== undefined) {
      chunk.retry ??= "a change of the table over the record limit (or not readable) could not be keyed"
      return
    }
    let view: WalBody.BodyView
    try {
      view = WalBodyRead.read(event.body)
    } catch {
      chunk.retry ??= "a change of the table could not be read"
      return
    }
    const fresh = keyOf(view, view.columns, chunk.pageKeyColumns)
    const old = keyOf(view, view.identity, chunk.pageKeyColumns)
    if (fresh !== undefined) chunk.changed.add(fresh)
    if (old !== undefined) chunk.changed.add(old)
  }

  /** The R records of the chunk at the high watermark `event`. */
  const records = (chunk: Pending, event: ChangeEvent, view: WalBody.BodyView): Array<ChangeEvent> => {
    const rows = (chunk.rows ?? []).filter((row) => !chunk.changed.has(row.pageKey))
    if (rows.length === 0) return []
    const commitLsnText = Lsn.format(event.commitLsn)
    const timestamp = view.timestamp === undefined ? "null" : JsonScan.text(view.bytes, view.timestamp.start, view.timestamp.end)
    const context = `"action":"R","xid":${event.xid ?? "null"},"timestamp":${timestamp},"lsn":"${Lsn.format(event.lsn)}",`
    const parts = rows.map((row, i) => ({
      prefix: RecordBodies.positionPrefix(commitLsnText, event.commitIdx + 1 + i) + context + row.tail,
      rest: undefined
    }))
    const bodies = RecordBodies.writeAll(parts)
    return rows.map((row, i): ChangeEvent => ({
      lsn: event.lsn,
      ackLsn: event.lsn,
      xid: event.xid,
      commitLsn: event.commitLsn,
      commitIdx: event.commitIdx + 1 + i,
      action: "R",
      schema: chunk.schema,
      table: chunk.table,
      pk: row.pk,
      commitTimeMs: event.commitTimeMs,
      body: bodies[i]!
    }))
  }

  const intercept = (events: ReadonlyArray<ChangeEvent>): ReadonlyArray<ChangeEvent> => {
    const window = pending?.open === true ? pending : undefined
    let hasMessage = false
    let live = false
    for (let i = 0; i < events.length; i++) {
      const action = events[i]!.action
      if (action === "M") {
        hasMessage = true
        break
      }
      if (!live && isLive(action)) live = true
    }
    if (!hasMessage) {
      if (live) liveReads++
      if (window === undefined && watermarkCommit === undefined) return events
    }
    live = false
    const out: Array<ChangeEvent> = []
    for (const event of events) {
      const chunk = pending
      if ((event.action === "BEGIN" || event.action === "COMMIT") && event.commitLsn === watermarkCommit) {
        // PUBLISH_TRANSACTION_RECORDS: a watermark's transaction holds nothing that is published as it
        if (event.action === "COMMIT") watermarkCommit = undefined
        continue
      }
      if (event.action === "M") {
        const message = Watermark.read(event)
        if (message !== undefined) {
          watermarkCommit = event.commitLsn
          // its BEGIN record came just before it
          const previous = out[out.length - 1]
          if (previous?.action === "BEGIN" && previous.commitLsn === event.commitLsn) out.pop()
          const watermark = message.watermark
          // the service's message: consumed; acted on when it is the expected chunk's
          if (watermark !== null && watermark.slot === slot && chunk !== undefined && watermark.chunk === chunk.chunk) {
            if (watermark.mark === "low") chunk.open = true
            else if (chunk.open) {
              pending = undefined
              if (chunk.retry !== undefined) chunk.onHigh({ _tag: "Retry", reason: chunk.retry, commitLsn: event.commitLsn })
              else {
                const published = records(chunk, event, message.view)
                for (const record of published) out.push(record)
                chunk.onHigh({
                  _tag: "Published",
                  published: published.length,
                  skipped: (chunk.rows?.length ?? 0) - published.length,
                  commitLsn: event.commitLsn
                })
              }
            }
          }
          continue
        }
      } else if (chunk?.open === true && event.schema === chunk.schema && event.table === chunk.table) {
        note(chunk, event)
      }
      if (isLive(event.action)) live = true
      out.push(event)
    }
    if (hasMessage && live) liveReads++
    return out
  }

  return {
    expect: (chunk) => {
      pending = { ...chunk, rows: undefined, open: false, changed: new Set(), retry: undefined }
    },
    rows: (chunk, rows) => {
      if (pending?.chunk === chunk) pending.rows = rows
    },
    forget: (chunk) => {
      if (pending?.chunk === chunk) pending = undefined
    },
    intercept,
    liveReads: () => liveReads
  }
}

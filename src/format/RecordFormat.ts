/**
 * The record format, applied to each decoded batch: RECORD_FORMAT (the wal2json shape both
 * decoders produce, or Debezium's change event value) and EXCLUDE_COLUMNS. It wraps a decoder, so
 * the rest of the pipeline sees formatted bodies; with the wal2json format and no excluded column
 * it is not installed at all. A batch's new bodies are written into one buffer.
 */
import * as Result from "effect/Result"
import { type ChangeEvent, isPublishable, isTransactionRecord } from "../domain/ChangeEvent.ts"
import { DecodeError } from "../Errors.ts"
import type { Decoder } from "../replication/Decoder.ts"
import { BatchWriter, makeScratch } from "./BatchWriter.ts"
import type { ColumnFilter } from "./ColumnFilter.ts"
import * as Debezium from "./Debezium.ts"
import * as Exclusion from "./Exclusion.ts"
import * as JsonScan from "./JsonScan.ts"
import * as WalBody from "./WalBody.ts"

export type RecordFormatName = "wal2json" | "debezium"

export interface Options {
  readonly recordFormat: RecordFormatName
  readonly exclude: ColumnFilter
  /** What Debezium's `source` block names: the logical server (the slot) and the database. */
  readonly source: { readonly name: string; readonly db: string }
  /**
   * Domain types by the name wal2json gives them, to their base type's name (as pgoutput names a
   * domain column): Debezium values of a domain are converted like its base type's.
   */
  readonly domains?: ReadonlyMap<string, string> | undefined
}

/** Formats batches; stateful (transaction bookkeeping), so one per replication stream. */
export interface RecordFormat {
  /** The batch with its record bodies formatted; B, C and oversized events pass unchanged. Throws on a malformed body. */
  readonly formatBatch: (events: ReadonlyArray<ChangeEvent>) => ReadonlyArray<ChangeEvent>
}

type Draft = { -readonly [K in keyof ChangeEvent]: ChangeEvent[K] }

/** EXCLUDE_COLUMNS on wal2json-shaped bodies: only records of concerned tables are rewritten. */
const wal2json = (exclude: ColumnFilter): RecordFormat => {
  const scratch = makeScratch()
  return {
    formatBatch: (events) => {
      let out: BatchWriter | undefined
      let changed: Array<number> | undefined
      let result: Array<ChangeEvent> | undefined
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        if (!isPublishable(event) || event.body.length === 0) continue
        const excluded = exclude.forTable(event.schema, event.table)
        if (excluded === undefined) continue
        const view = WalBody.read(event.body)
        if (!Exclusion.concerns(view, excluded)) continue
        out ??= new BatchWriter(scratch)
        Exclusion.write(view, excluded, out)
        out.end()
        result ??= events.slice()
        ;(changed ??= []).push(i)
        if (event.pk !== undefined && Exclusion.keyExcluded(view, excluded)) {
          result[i] = { ...event, pk: Exclusion.hiddenKey(event.pk) }
        }
      }
      if (out === undefined || result === undefined || changed === undefined) return events
      const bodies = out.finish()
      for (let r = 0; r < changed.length; r++) {
        const index = changed[r]!
        result[index] = { ...result[index]!, body: bodies[r]! } satisfies Draft
      }
      return result
    }
  }
}

/** `source.version`: this service's name and version. */
export const VERSION = "cdc-logical-replication/0.1.0"

/**
 * Debezium's value for every record. Keeps the open transaction's per-table counts across batches
 * (`data_collection_order`); a change dropped for its size as it was read keeps its place.
 */
const debezium = (options: Options, now: () => number): RecordFormat => {
  const version = JSON.stringify(VERSION)
  const name = JSON.stringify(options.source.name)
  const db = JSON.stringify(options.source.db)
  let transactionLsn = -1n
  const perTable = new Map<string, number>()
  const memo = Debezium.makeMemo()
  const scratch = makeScratch()
  return {
    formatBatch: (events) => {
      const context = Debezium.context(memo, version, name, db, now(), options.domains)
      const out = new BatchWriter(scratch)
      const rendered: Array<number> = []
      const result = events.slice()
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        if (!isPublishable(event)) continue
        const view = event.body.length === 0 ? undefined : WalBody.read(event.body, memo.interned)
        if (isTransactionRecord(event)) {
          if (view === undefined) continue
          if (event.commitLsn !== transactionLsn) {
            transactionLsn = event.commitLsn
            perTable.clear()
          }
          Debezium.writeTransaction(event, view, perTable, context, out)
          out.end()
          rendered.push(i)
          continue
        }
        // outside a transaction: a non-transactional message (a backfill row is positioned in the
        // transaction of its chunk's high watermark, so it carries that position like a change)
        const inTransaction = view === undefined
          ? event.xid !== undefined
          : !(view.action === "M" && view.transactional === false)
        let order: number | undefined
        if (inTransaction) {
          if (event.commitLsn !== transactionLsn) {
            transactionLsn = event.commitLsn
            perTable.clear()
          }
          const table = `${event.schema}.${event.table}`
          order = (perTable.get(table) ?? 0) + 1
          perTable.set(table, order)
        }
        if (view === undefined) continue
        const excluded = options.exclude.forTable(view.schema, view.table)
        Debezium.write(event, view, excluded, order, context, out)
        out.end()
        rendered.push(i)
        if (event.pk !== undefined && excluded !== undefined && Exclusion.keyExcluded(view, excluded)) {
          result[i] = { ...event, pk: Exclusion.hiddenKey(event.pk) }
        }
      }
      if (rendered.length === 0) return events
      const bodies = out.finish()
      for (let r = 0; r < rendered.length; r++) {
        const index = rendered[r]!
        result[index] = { ...result[index]!, body: bodies[r]! } satisfies Draft
      }
      return result
    }
  }
}

/** The format for the options; `undefined` when bodies stay as the decoder wrote them. */
export const make = (options: Options, now: () => number = Date.now): RecordFormat | undefined =>
  options.recordFormat === "debezium"
    ? debezium(options, now)
    : options.exclude.active
    ? wal2json(options.exclude)
    : undefined

/** The decoder with its batches formatted. */
export const wrapDecoder = (decoder: Decoder, format: RecordFormat | undefined): Decoder =>
  format === undefined ? decoder : {
    ...decoder,
    decode: (messages) =>
      Result.flatMap(decoder.decode(messages), (events) => {
        try {
          return Result.succeed(format.formatBatch(events))
        } catch (error) {
          const lsn = messages[0]?.lsn ?? 0n
          const reason = error instanceof JsonScan.Malformed ? `record body: ${error.message}` : String(error)
          return Result.fail(DecodeError.malformed(lsn, `formatting a batch: ${reason}`))
        }
      })
  }

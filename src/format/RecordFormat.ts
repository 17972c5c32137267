/**
 * The record format, applied to each decoded batch: RECORD_FORMAT (the wal2json shape both
 * decoders produce, or Debezium's change event value) and EXCLUDE_COLUMNS. It wraps a decoder, so
 * the rest of the pipeline sees formatted bodies; with the wal2json format and no excluded column
 * it is not installed at all. A batch's new bodies are written into one buffer.
 */
import * as Result from "effect/Result"
import { type ChangeEvent, isPublishable } from "../domain/ChangeEvent.ts"
import { DecodeError } from "../Errors.ts"
import type { Decoder } from "../replication/Decoder.ts"
import { BatchWriter } from "./BatchWriter.ts"
import type { ColumnFilter } from "./ColumnFilter.ts"
import * as Exclusion from "./Exclusion.ts"
import * as JsonScan from "./JsonScan.ts"
import * as WalBody from "./WalBody.ts"

export type RecordFormatName = "wal2json" | "debezium"

export interface Options {
  readonly recordFormat: RecordFormatName
  readonly exclude: ColumnFilter
  /** What Debezium's `source` block names: the logical server (the slot) and the database. */
  readonly source: { readonly name: string; readonly db: string }
}

/** Formats batches; stateful (transaction bookkeeping), so one per replication stream. */
export interface RecordFormat {
  /** The batch with its record bodies formatted; B, C and oversized events pass unchanged. Throws on a malformed body. */
  readonly formatBatch: (events: ReadonlyArray<ChangeEvent>) => ReadonlyArray<ChangeEvent>
}

type Draft = { -readonly [K in keyof ChangeEvent]: ChangeEvent[K] }

/** EXCLUDE_COLUMNS on wal2json-shaped bodies: only records of concerned tables are rewritten. */
const wal2json = (exclude: ColumnFilter): RecordFormat => ({
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
      out ??= new BatchWriter()
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
})

/** The format for the options; `undefined` when bodies stay as the decoder wrote them. */
export const make = (options: Options): RecordFormat | undefined =>
  options.exclude.active ? wal2json(options.exclude) : undefined

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

/**
 * pgoutput messages peeked from a slot, shown the way a wal2json slot shows them: row changes,
 * truncates and logical messages decoded by the service's pgoutput decoder (the JSON it publishes),
 * begin and commit written as wal2json format-version 2 writes them. The record's position (which
 * a slot's own output does not have) is left out; an update that changed the row's key shows as the
 * delete and insert the service publishes. Relation, type and origin messages are the decoder's
 * input, not changes, so they produce no entry.
 */
import * as Result from "effect/Result"
import * as Lsn from "../domain/Lsn.ts"
import { DecodeError } from "../Errors.ts"
import * as CommitTimestamp from "../replication/CommitTimestamp.ts"
import * as PgOutputDecoder from "../replication/PgOutputDecoder.ts"
import type { PeekedChange } from "./SlotQueries.ts"

/** One row of pg_logical_slot_peek_binary_changes, its data as hex. */
export interface PeekedMessage {
  readonly lsn: string
  readonly xid: string
  readonly data: string
}

/** The record's position at the start of a published body. */
const positionPrefix = /^\{"commit_lsn":"[0-9A-F]+\/[0-9A-F]+","commit_idx":\d+,/

/** `{"action":"B",…}` / `{"action":"C",…}` of wal2json v2 from the message's own fields. */
const beginJson = (data: Buffer, xid: number, nextLsn: Lsn.Lsn | undefined): string =>
  `{"action":"B","xid":${xid},"timestamp":"${CommitTimestamp.formatPgMicrosUtc(data.readBigInt64BE(9))}",` +
  `"lsn":"${Lsn.format(data.readBigUInt64BE(1))}"${nextLsn === undefined ? "" : `,"nextlsn":"${Lsn.format(nextLsn)}"`}}`

const commitJson = (data: Buffer, xid: number | undefined): string =>
  `{"action":"C","xid":${xid ?? null},"timestamp":"${CommitTimestamp.formatPgMicrosUtc(data.readBigInt64BE(18))}",` +
  `"lsn":"${Lsn.format(data.readBigUInt64BE(2))}","nextlsn":"${Lsn.format(data.readBigUInt64BE(10))}"}`

/**
 * Decodes the messages in order with a fresh decoder; the changes, one per wal2json row. A begin
 * gets its `nextlsn` from its commit when the commit is among the messages.
 */
export const decode = (
  messages: ReadonlyArray<PeekedMessage>,
  options: PgOutputDecoder.Options
): Result.Result<Array<PeekedChange>, DecodeError> => {
  const decoder = PgOutputDecoder.make(options)
  const textDecoder = new TextDecoder()
  const changes: Array<PeekedChange> = []
  let openBegin: { readonly index: number; readonly data: Buffer; readonly xid: number } | undefined
  for (const message of messages) {
    const lsn = Lsn.parse(message.lsn)
    if (lsn === undefined) return Result.fail(DecodeError.malformed(Lsn.zero, `not an LSN: ${JSON.stringify(message.lsn)}`))
    const data = Buffer.from(message.data, "hex")
    const decoded = decoder.decode([{ lsn, data }])
    if (Result.isFailure(decoded)) return Result.fail(decoded.failure)
    for (const event of decoded.success) {
      const entry = (json: string): PeekedChange => ({ lsn: message.lsn, xid: message.xid, data: json })
      if (event.action === "B") {
        const xid = event.xid ?? data.readUInt32BE(17)
        openBegin = { index: changes.length, data, xid }
        changes.push(entry(beginJson(data, xid, undefined)))
      } else if (event.action === "C") {
        if (openBegin !== undefined) {
          const begin = changes[openBegin.index]!
          changes[openBegin.index] = { ...begin, data: beginJson(openBegin.data, openBegin.xid, event.ackLsn) }
          openBegin = undefined
        }
        changes.push(entry(commitJson(data, event.xid)))
      } else {
        changes.push(entry("{" + textDecoder.decode(event.body).replace(positionPrefix, "")))
      }
    }
  }
  return Result.succeed(changes)
}

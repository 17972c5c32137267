/**
 * The backfill's watermarks: transactional logical messages (pg_logical_emit_message) with the
 * service's own prefix, one before a chunk is selected (low) and one after (high). They travel
 * through the slot in commit order with every other change; the service consumes them and never
 * publishes them.
 */
import * as Effect from "effect/Effect"
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import type { PgError } from "../Errors.ts"
import * as JsonScan from "../format/JsonScan.ts"
import * as WalBody from "../format/WalBody.ts"
import * as OwnSchema from "./OwnSchema.ts"
import type { Query } from "./Query.ts"

export type Mark = "low" | "high"

/** What a watermark says: which slot's backfill, which chunk, which side of it. */
export interface Watermark {
  readonly slot: string
  readonly chunk: string
  readonly mark: Mark
}

/** Emits a watermark in a transaction of its own (the statement commits it). */
export const emit = (query: Query, watermark: Watermark): Effect.Effect<void, PgError> =>
  Effect.asVoid(query(`SELECT pg_logical_emit_message(true, $1, $2)::text`, [
    OwnSchema.WATERMARK_PREFIX,
    JSON.stringify(watermark)
  ]))

const prefixJson = JSON.stringify(OwnSchema.WATERMARK_PREFIX)

/** Whether a body's prefix span is the watermark prefix. */
const isOurPrefix = (view: WalBody.BodyView): boolean => {
  const span = view.prefix
  if (span === undefined || span.end - span.start !== prefixJson.length) return false
  return JsonScan.ascii(view.bytes, span.start, span.end) === prefixJson
}

/**
 * For a logical message: `undefined` when it is not the service's, else the watermark it carries
 * (`null` when its content is not one: still the service's, still consumed).
 */
export const read = (event: ChangeEvent): { readonly view: WalBody.BodyView; readonly watermark: Watermark | null } | undefined => {
  if (event.action !== "M" || event.body.length === 0) return undefined
  let view: WalBody.BodyView
  try {
    view = WalBody.read(event.body)
  } catch {
    return undefined
  }
  if (!isOurPrefix(view)) return undefined
  try {
    const content = view.content === undefined ? undefined : JsonScan.stringValue(view.bytes, view.content.start, view.content.end)
    const parsed = content === undefined ? undefined : JSON.parse(content) as Partial<Watermark>
    const valid = parsed !== undefined && typeof parsed.slot === "string" && typeof parsed.chunk === "string" &&
      (parsed.mark === "low" || parsed.mark === "high")
    return { view, watermark: valid ? parsed as Watermark : null }
  } catch {
    return { view, watermark: null }
  }
}

/**
 * EXCLUDE_COLUMNS applied to a record body in the wal2json shape: the excluded columns' entries are
 * cut from `columns`, `identity` and `pk`; every other byte is kept as it was. A record whose key
 * has an excluded column is keyed by the SHA-256 of its key instead, so the value never reaches
 * Kinesis, not even in the partition key, and the row's changes still share one key.
 */
import { createHash } from "node:crypto"
import type { BatchWriter } from "./BatchWriter.ts"
import type { Excluded } from "./ColumnFilter.ts"
import type { BodyView, ColumnList } from "./WalBody.ts"

/** Whether the body has a column to cut. */
export const concerns = (view: BodyView, excluded: Excluded): boolean =>
  [view.columns, view.identity, view.pk].some((list) => list !== undefined && list.items.some((c) => excluded(c.name)))

/** Whether an excluded column is part of the record's key. */
export const keyExcluded = (view: BodyView, excluded: Excluded): boolean =>
  view.pk !== undefined && view.pk.items.some((c) => excluded(c.name))

/** A key that names the row without showing its values. */
export const hiddenKey = (pk: string): string => `["sha256:${createHash("sha256").update(pk, "utf8").digest("hex")}"]`

/** Writes the body without the excluded columns (not ending the record). */
export const write = (view: BodyView, excluded: Excluded, out: BatchWriter): void => {
  const { bytes } = view
  const lists = [view.columns, view.identity, view.pk]
    .filter((list): list is ColumnList => list !== undefined)
    .sort((a, b) => a.start - b.start)
  let cursor = 0
  for (const list of lists) {
    out.range(bytes, cursor, list.start)
    out.text("[")
    let first = true
    for (const item of list.items) {
      if (excluded(item.name)) continue
      if (!first) out.text(",")
      out.range(bytes, item.start, item.end)
      first = false
    }
    out.text("]")
    cursor = list.end
  }
  out.range(bytes, cursor, bytes.length)
}

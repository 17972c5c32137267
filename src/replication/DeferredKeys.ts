/**
 * Rows that share a key within one transaction. A DEFERRABLE primary key lets a row take a key
 * another row still holds until commit (a swap of two ids, a shift `SET id = id + 1`). The stream
 * then has, on that key, the arrival of the new holder before the old holder's update or departure,
 * and a consumer keyed by row would apply the old holder's record to the new holder. This tracks,
 * per transaction, the rows that arrived at a key of such a table (their last values) so that the
 * decoders can leave out a later update or delete of that key whose old row is another row's.
 *
 * Rows are told apart by their values: the tables concerned log whole old rows (PostgreSQL logs
 * updates and deletes of a table whose only key is deferrable only with REPLICA IDENTITY FULL).
 * At most `MAX_TRACKED` keys per transaction are tracked; later arrivals are not checked.
 */

/** A row's values: column name → the value as JSON text. */
export type Image = ReadonlyMap<string, string>

export const MAX_TRACKED = 10_000

export class TransactionKeys {
  private readonly rows = new Map<string, Map<string, string>>()

  /** A new transaction: nothing tracked. */
  reset(): void {
    if (this.rows.size > 0) this.rows.clear()
  }

  /** A row arrived at `key` (an insert, or the insert half of a key change) with these values. */
  arrived(key: string, image: Image): void {
    if (this.rows.size >= MAX_TRACKED && !this.rows.has(key)) return
    this.rows.set(key, new Map(image))
  }

  /**
   * Whether a record of the row whose old values are `old`, under `key`, is about the row the key
   * holds now: true unless another row arrived at the key in this transaction (values differ).
   * An update of that row merges `updated` into its values; a departure forgets it.
   */
  concerns(key: string, old: Image, change: { readonly updated: Image } | "departed"): boolean {
    const held = this.rows.get(key)
    if (held === undefined) return true
    for (const [name, value] of old) {
      const current = held.get(name)
      if (current !== undefined && current !== value) return false
    }
    if (change === "departed") this.rows.delete(key)
    else for (const [name, value] of change.updated) held.set(name, value)
    return true
  }
}

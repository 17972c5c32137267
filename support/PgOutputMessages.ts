/**
 * pgoutput protocol-1 messages written byte by byte as a walsender sends them (Begin, Commit,
 * Relation, Insert, Update, Delete, Truncate, Message), for the decoder's property test and its micro-benchmark.
 */

/** A column of a Relation message: flags (1 = part of the replica identity), name, type OID, typmod. */
export interface Column {
  readonly flags: number
  readonly name: string
  readonly oid: number
  readonly typmod: number
}

/** A tuple's column: text bytes (`t`), NULL (`n`), or an unchanged TOAST value (`u`). */
export type Value = Uint8Array | null | "unchanged"

class Writer {
  private bytes = new Uint8Array(256)
  private length = 0
  private view = new DataView(this.bytes.buffer)
  private room(n: number): void {
    if (this.length + n <= this.bytes.length) return
    let size = this.bytes.length * 2
    while (size < this.length + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.bytes.subarray(0, this.length))
    this.bytes = next
    this.view = new DataView(next.buffer)
  }
  byte(value: number): this {
    this.room(1)
    this.bytes[this.length++] = value
    return this
  }
  int16(value: number): this {
    this.room(2)
    this.view.setInt16(this.length, value)
    this.length += 2
    return this
  }
  int32(value: number): this {
    this.room(4)
    this.view.setInt32(this.length, value)
    this.length += 4
    return this
  }
  int64(value: bigint): this {
    this.room(8)
    this.view.setBigInt64(this.length, BigInt.asIntN(64, value))
    this.length += 8
    return this
  }
  raw(bytes: Uint8Array): this {
    this.room(bytes.length)
    this.bytes.set(bytes, this.length)
    this.length += bytes.length
    return this
  }
  /** A NUL-terminated UTF-8 string. */
  string(value: string): this {
    return this.raw(Buffer.from(value, "utf8")).byte(0)
  }
  tuple(values: ReadonlyArray<Value>): this {
    this.int16(values.length)
    for (const value of values) {
      if (value === null) this.byte(0x6e)
      else if (value === "unchanged") this.byte(0x75)
      else this.byte(0x74).int32(value.length).raw(value)
    }
    return this
  }
  done(): Uint8Array {
    return this.bytes.slice(0, this.length)
  }
}

const tag = (letter: string) => new Writer().byte(letter.charCodeAt(0))

/** B: the commit's LSN, the commit time (microseconds since 2000-01-01 UTC), the xid. */
export const begin = (finalLsn: bigint, commitMicros: bigint, xid: number): Uint8Array =>
  tag("B").int64(finalLsn).int64(commitMicros).int32(xid).done()

/** C: flags, the commit's LSN, the transaction's end LSN, the commit time. */
export const commit = (commitLsn: bigint, endLsn: bigint, commitMicros: bigint): Uint8Array =>
  tag("C").byte(0).int64(commitLsn).int64(endLsn).int64(commitMicros).done()

/** R: relation id, namespace, name, replica identity (d, n, f, i), columns. */
export const relation = (
  id: number, namespace: string, name: string, identity: string, columns: ReadonlyArray<Column>
): Uint8Array => {
  const w = tag("R").int32(id).string(namespace).string(name).byte(identity.charCodeAt(0)).int16(columns.length)
  for (const column of columns) w.byte(column.flags).string(column.name).int32(column.oid).int32(column.typmod)
  return w.done()
}

/** I: relation id, the new tuple. */
export const insert = (id: number, row: ReadonlyArray<Value>): Uint8Array =>
  tag("I").int32(id).byte(0x4e).tuple(row).done()

/** U: relation id, the old tuple (`K` key columns, `O` the whole row) when sent, the new tuple. */
export const update = (
  id: number, row: ReadonlyArray<Value>, old?: { readonly kind: "K" | "O"; readonly values: ReadonlyArray<Value> }
): Uint8Array => {
  const w = tag("U").int32(id)
  if (old !== undefined) w.byte(old.kind.charCodeAt(0)).tuple(old.values)
  return w.byte(0x4e).tuple(row).done()
}

/** D: relation id, the old tuple (`K` key columns, `O` the whole row). */
export const remove = (id: number, kind: "K" | "O", old: ReadonlyArray<Value>): Uint8Array =>
  tag("D").int32(id).byte(kind.charCodeAt(0)).tuple(old).done()

/** T: the relations truncated (options 0). */
export const truncate = (ids: ReadonlyArray<number>): Uint8Array => {
  const w = tag("T").int32(ids.length).byte(0)
  for (const id of ids) w.int32(id)
  return w.done()
}

/** M: a logical message (pg_logical_emit_message): transactional flag, its LSN, prefix, content. */
export const message = (transactional: boolean, lsn: bigint, prefix: string, content: Uint8Array): Uint8Array =>
  tag("M").byte(transactional ? 1 : 0).int64(lsn).string(prefix).int32(content.length).raw(content).done()

/** UTF-8 bytes of a text value. */
export const text = (value: string): Uint8Array => Buffer.from(value, "utf8")

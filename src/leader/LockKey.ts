/**
 * The advisory-lock key that elects the leader of one slot: derived from the database and slot
 * names (the first 8 bytes of sha256("cdc-logical-replication:<db>:<slot>") as a signed 64-bit
 * integer), so every instance streaming the same slot contends for the same lock, unless
 * LEADER_LOCK_KEY sets it. pg_locks shows a 64-bit key as classid (high 32 bits) and objid (low).
 */
import { createHash } from "node:crypto"

/** The derived key for a database and slot. */
export const derive = (database: string, slot: string): bigint =>
  createHash("sha256").update(`cdc-logical-replication:${database}:${slot}`).digest().readBigInt64BE(0)

/** The configured key, or the derived one. */
export const resolve = (options: { readonly override: bigint | undefined; readonly database: string; readonly slot: string }): bigint =>
  options.override ?? derive(options.database, options.slot)

/** How pg_locks shows a single-bigint advisory lock: classid, objid (unsigned 32-bit each) and objsubid 1. */
export const toLockTag = (key: bigint): { readonly classid: number; readonly objid: number; readonly objsubid: 1 } => {
  const unsigned = BigInt.asUintN(64, key)
  return { classid: Number(unsigned >> 32n), objid: Number(unsigned & 0xffffffffn), objsubid: 1 }
}

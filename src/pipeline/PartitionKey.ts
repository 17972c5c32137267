/**
 * The Kinesis partition key of a change, per PARTITION_KEY_MODE. The `lsn` key (mode or fallback)
 * is the record's position, `commit_lsn:commit_idx`, unique per record. A transaction's BEGIN and
 * COMMIT records share the key `txn:<commit_lsn>` (the `static` key in `static` mode), so they stay
 * in order with each other. Keys are 1..256 characters: a
 * longer key becomes a readable prefix plus the SHA-256 of the whole key, so it stays deterministic.
 */
import { createHash } from "node:crypto"
import type { KinesisConfig } from "../config/ServiceConfig.ts"
import { type ChangeEvent, isTransactionRecord, position, qualifiedTable } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"

export const maxLength = 256
const prefixLength = 128

/** A key of at most 256 UTF-16 units (hence at most 256 Unicode characters), never empty. */
export const bounded = (key: string): string => {
  if (key.length === 0) return "-"
  if (key.length <= maxLength) return key
  let prefix = key.slice(0, prefixLength)
  // do not split a surrogate pair
  const last = prefix.charCodeAt(prefix.length - 1)
  if (last >= 0xd800 && last <= 0xdbff) prefix = prefix.slice(0, -1)
  return `${prefix}#sha256:${createHash("sha256").update(key, "utf8").digest("hex")}`
}

export type PartitionKeyOptions = Pick<KinesisConfig, "partitionKeyMode" | "partitionKeyFallback" | "partitionKeyStatic">

/** Builds the key function for a configuration. */
export const make = (options: PartitionKeyOptions): (event: ChangeEvent) => string => {
  const staticKey = bounded(options.partitionKeyStatic)
  const byFallback = (event: ChangeEvent): string => {
    switch (options.partitionKeyFallback) {
      case "lsn":
        return position(event)
      case "table":
        return bounded(qualifiedTable(event))
      case "static":
        return staticKey
    }
  }
  // consecutive changes are mostly of one table: its `schema.table:` prefix is built once for them
  let lastSchema = ""
  let lastTable = ""
  let lastPrefix = ".:"
  const prefixOf = (event: ChangeEvent): string => {
    if (event.schema !== lastSchema || event.table !== lastTable) {
      lastSchema = event.schema
      lastTable = event.table
      lastPrefix = `${qualifiedTable(event)}:`
    }
    return lastPrefix
  }
  const byMode = ((): (event: ChangeEvent) => string => {
    switch (options.partitionKeyMode) {
      case "primary_key":
        return (event) => event.pk === undefined ? byFallback(event) : bounded(prefixOf(event) + event.pk)
      case "table":
        return (event) => bounded(qualifiedTable(event))
      case "lsn":
        return position
      case "static":
        return () => staticKey
    }
  })()
  if (options.partitionKeyMode === "static") return byMode
  return (event) => isTransactionRecord(event) ? `txn:${Lsn.format(event.commitLsn)}` : byMode(event)
}

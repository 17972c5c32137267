/**
 * The service's own schema never reaches the stream, with either plugin, against a real server: a
 * transaction that writes a backfill request and a row of a streamed table yields only that row
 * (index 0) from a wal2json slot (filter-tables) and from a pgoutput slot on a publication FOR ALL
 * TABLES (the decoder skips the schema's relations).
 */
import * as Result from "effect/Result"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import type { Decoder, WalMessage } from "../../src/replication/Decoder.ts"
import * as PgOutputDecoder from "../../src/replication/PgOutputDecoder.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { readChanges } from "../decoding/slotChanges.ts"

let pg: PgCluster

beforeAll(async () => {
  pg = await startPostgres()
  await pg.psql("CREATE TABLE orders (id int PRIMARY KEY, note text); CREATE PUBLICATION everything FOR ALL TABLES")
  await pg.psql("SELECT pg_create_logical_replication_slot('w', 'wal2json'), pg_create_logical_replication_slot('p', 'pgoutput')")
  await pg.psql(`CREATE SCHEMA cdc_logical_replication; CREATE TABLE cdc_logical_replication.backfills (id int PRIMARY KEY, state text)`)
  await pg.psql(`BEGIN; INSERT INTO cdc_logical_replication.backfills VALUES (1, 'queued');
    UPDATE cdc_logical_replication.backfills SET state = 'running'; INSERT INTO orders VALUES (1, 'a');
    DELETE FROM cdc_logical_replication.backfills; COMMIT; TRUNCATE cdc_logical_replication.backfills, orders`)
}, 120_000)
afterAll(async () => {
  await pg?.stop()
})

const published = (decoder: Decoder, messages: ReadonlyArray<WalMessage>): ReadonlyArray<ChangeEvent> => {
  const decoded = decoder.decode(messages)
  if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
  return decoded.success.filter((e) => e.action !== "B" && e.action !== "C")
}

describe("the service's own schema", () => {
  it("never reaches a wal2json stream", async () => {
    const decoder = Wal2JsonDecoder.make({ addTables: [], filterTables: [] })
    const rows = await readChanges(pg, "w", decoder.startOptions)
    const events = published(decoder, rows.map((row) => ({ lsn: row.lsn, data: new TextEncoder().encode(row.data) })))
    expect(events.map((e) => [e.action, `${e.schema}.${e.table}`, e.commitIdx])).toEqual([["I", "public.orders", 0], ["T", "public.orders", 0]])
  })

  it("never reaches a pgoutput stream, even on a publication FOR ALL TABLES", async () => {
    const decoder = PgOutputDecoder.make({ publication: "everything" })
    const rows = await readChanges(pg, "p", decoder.startOptions, { binary: true })
    const events = published(decoder, rows.map((row) => ({ lsn: row.lsn, data: Buffer.from(row.data, "hex") })))
    expect(events.map((e) => [e.action, `${e.schema}.${e.table}`, e.commitIdx])).toEqual([["I", "public.orders", 0], ["T", "public.orders", 0]])
  })
})

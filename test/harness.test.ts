import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type PgCluster, startPostgres } from "../support/PostgresHarness.ts"

describe("PostgresHarness", () => {
  let pg: PgCluster
  beforeAll(async () => {
    pg = await startPostgres()
  })
  afterAll(async () => {
    await pg?.stop()
  })
  it("starts a logical-replication-ready cluster with wal2json", async () => {
    expect(await pg.psql("SHOW wal_level")).toBe("logical")
    const slot = await pg.psql("SELECT lsn FROM pg_create_logical_replication_slot('h', 'wal2json')")
    expect(slot).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
    await pg.psql("SELECT pg_drop_replication_slot('h')")
  })
})

/**
 * What the backfill tests compare: the stream's records as the consumer reads them, and a table's
 * rows in the canonical form the rebuild ({@link rowsOf}) gives.
 */
import type { PgCluster } from "../../support/PostgresHarness.ts"
import type { Kinesalite } from "../../support/KinesaliteHarness.ts"
import { canonical, type Row, type StreamRecord } from "../contract/Consumer.ts"

const decoder = new TextDecoder()

/** The stream's records (partition key and body text). */
export const streamRecords = async (kinesis: Kinesalite, stream: string): Promise<Array<StreamRecord>> =>
  (await kinesis.readAll(stream)).map((r) => ({ partitionKey: r.partitionKey, data: decoder.decode(r.data) }))

/** The table's rows as the rebuild's canonical JSON, sorted. */
export const tableRows = async (pg: PgCluster, table: string): Promise<Array<string>> =>
  (JSON.parse(await pg.psql(`SELECT coalesce(json_agg(t), '[]') FROM ${table} t`)) as Array<Row>).map(canonical).sort()

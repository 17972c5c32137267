/**
 * End to end against real infrastructure (the dev stack in infra/, or any PostgreSQL + Kinesis):
 * a small insert/update/delete workload on a fresh table goes through the service, run as users
 * run it (`node src/main.ts`), into the Kinesis stream, and is read back with shard iterators.
 *
 * Opt-in: skipped unless RUN_INTEGRATION_TESTS=1. Then it needs PGHOST, PGUSER, PGPASSWORD,
 * PGDATABASE, AWS_REGION and KINESIS_STREAM (PGPORT 5432 and PGSSLMODE require by default), and
 * fails naming any that are missing. See test/integration/README.md.
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  type Shard
} from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Lsn from "../../src/domain/Lsn.ts"
import { eventually, type ServiceProcess, startService } from "../../support/ServiceProcess.ts"

const REQUIRED = ["PGHOST", "PGUSER", "PGPASSWORD", "PGDATABASE", "AWS_REGION", "KINESIS_STREAM"] as const

interface Target {
  /** PG* for the service and the slot (the replication user). */
  readonly pg: Readonly<Record<string, string>>
  /** PG* for the table and the workload: the admin user when INTEGRATION_ADMIN_PGUSER is set. */
  readonly admin: Readonly<Record<string, string>>
  readonly region: string
  readonly stream: string
  readonly endpoint: string | undefined
  readonly slotBase: string
}

/** The target from the environment; throws naming every missing variable. */
const readTarget = (env: NodeJS.ProcessEnv): Target => {
  const missing = REQUIRED.filter((name) => (env[name] ?? "") === "")
  if (missing.length > 0) {
    throw new Error(
      `RUN_INTEGRATION_TESTS=1 but ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not set. ` +
        `Export ${REQUIRED.join(", ")} (see test/integration/README.md), or unset RUN_INTEGRATION_TESTS.`
    )
  }
  const pg: Record<string, string> = {
    PGHOST: env.PGHOST!,
    PGPORT: env.PGPORT || "5432",
    PGUSER: env.PGUSER!,
    PGPASSWORD: env.PGPASSWORD!,
    PGDATABASE: env.PGDATABASE!,
    PGSSLMODE: env.PGSSLMODE || "require",
    ...(env.PGSSLROOTCERT ? { PGSSLROOTCERT: env.PGSSLROOTCERT } : {})
  }
  const adminUser = env.INTEGRATION_ADMIN_PGUSER || undefined
  const admin = adminUser === undefined ? pg : { ...pg, PGUSER: adminUser, PGPASSWORD: env.INTEGRATION_ADMIN_PGPASSWORD ?? "" }
  // a slot name is [a-z0-9_]{1,63}; the random suffix takes 9
  const slotBase = (env.REPLICATION_SLOT || "cdc_it").toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 54)
  return {
    pg, admin, region: env.AWS_REGION!, stream: env.KINESIS_STREAM!, endpoint: env.AWS_ENDPOINT_URL_KINESIS || undefined, slotBase
  }
}

/** Runs SQL with psql as the given PG* user; returns unaligned, tuples-only output. */
const psql = (pg: Readonly<Record<string, string>>, sql: string): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", PGCONNECT_TIMEOUT: "15", ...pg },
      timeout: 60_000
    }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout.trimEnd())
      else reject(new Error(`psql as ${pg.PGUSER} failed: ${stderr.trim() || error.message}`))
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// the workload: a model of each change, from which the SQL and the expected records both follow

interface Op {
  readonly action: "I" | "U" | "D"
  readonly id: number
  /** The row's `version` after the change (none for deletes). */
  readonly version?: number
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const TRANSACTIONS: ReadonlyArray<ReadonlyArray<Op>> = [
  range(1, 12).map((id) => ({ action: "I", id, version: 1 })),
  range(1, 6).map((id) => ({ action: "U", id, version: 2 })),
  range(7, 9).map((id) => ({ action: "D", id })),
  [{ action: "U", id: 1, version: 3 }, { action: "I", id: 13, version: 1 }, { action: "D", id: 2 }, { action: "U", id: 13, version: 2 }]
]

const note = (op: Op) => `row ${op.id} v${op.version} it's`
const flag = (op: Op) => op.id % 2 === 0

const statement = (table: string, op: Op): string => {
  const quoted = `'${note(op).replaceAll("'", "''")}'`
  switch (op.action) {
    case "I":
      return `INSERT INTO ${table} (id, version, note, flag) VALUES (${op.id}, ${op.version}, ${quoted}, ${flag(op)})`
    case "U":
      return `UPDATE ${table} SET version = ${op.version}, note = ${quoted}, flag = ${flag(op)} WHERE id = ${op.id}`
    case "D":
      return `DELETE FROM ${table} WHERE id = ${op.id}`
  }
}

/** Identifies one change of the workload in what comes back. */
const opKey = (action: string, id: number, version: number | undefined) => `${action}:${id}:${version ?? ""}`

// ---------------------------------------------------------------------------------------------
// reading the stream

interface StreamRecord {
  readonly shardId: string
  readonly partitionKey: string
  readonly sequenceNumber: string
  readonly body: Wal2JsonChange
}

interface Column {
  readonly name: string
  readonly type: string
  readonly value: unknown
}

interface Wal2JsonChange {
  readonly action: string
  readonly schema: string
  readonly table: string
  readonly columns?: ReadonlyArray<Column>
  readonly identity?: ReadonlyArray<Column>
  readonly pk?: ReadonlyArray<{ readonly name: string; readonly type: string }>
  readonly lsn: string
  readonly timestamp: string
  readonly xid: number
}

const idOf = (body: Wal2JsonChange): number => {
  const value = (body.columns ?? body.identity ?? []).find((c) => c.name === "id")?.value
  return typeof value === "number" ? value : NaN
}

const versionOf = (body: Wal2JsonChange): number | undefined => {
  const value = body.columns?.find((c) => c.name === "version")?.value
  return typeof value === "number" ? value : undefined
}

/** A LATEST iterator on every open shard: only what is written after this call is read. */
const latestIterators = async (client: KinesisClient, stream: string): Promise<Map<string, string>> => {
  const shards: Array<Shard> = []
  let nextToken: string | undefined
  do {
    const page = await client.send(new ListShardsCommand(nextToken === undefined ? { StreamName: stream } : { NextToken: nextToken }))
    shards.push(...(page.Shards ?? []))
    nextToken = page.NextToken
  } while (nextToken !== undefined)
  const iterators = new Map<string, string>()
  for (const shard of shards) {
    if (shard.SequenceNumberRange?.EndingSequenceNumber !== undefined) continue // closed by a reshard
    const { ShardIterator } = await client.send(
      new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId!, ShardIteratorType: "LATEST" })
    )
    iterators.set(shard.ShardId!, ShardIterator!)
  }
  if (iterators.size === 0) throw new Error(`stream ${stream} has no open shard`)
  return iterators
}

/**
 * Reads every shard from its iterator, round after round, keeping this table's records in shard
 * order, until `done` says enough arrived or the deadline passes (then fails, saying what arrived).
 */
const readUntil = async (options: {
  readonly client: KinesisClient
  readonly iterators: Map<string, string>
  readonly table: string
  readonly done: (records: ReadonlyArray<StreamRecord>) => boolean
  readonly alive: () => void
  readonly timeoutMs: number
}): Promise<ReadonlyArray<StreamRecord>> => {
  const records: Array<StreamRecord> = []
  const decoder = new TextDecoder()
  const deadline = Date.now() + options.timeoutMs
  while (!options.done(records)) {
    if (Date.now() > deadline) {
      throw new Error(`only ${records.length} record(s) of ${options.table} arrived within ${options.timeoutMs} ms`)
    }
    options.alive()
    for (const [shardId, iterator] of options.iterators) {
      try {
        const page = await options.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
        for (const record of page.Records ?? []) {
          const body = JSON.parse(decoder.decode(record.Data!)) as Wal2JsonChange
          if (body.table !== options.table || body.schema !== "public") continue
          records.push({ shardId, partitionKey: record.PartitionKey!, sequenceNumber: record.SequenceNumber!, body })
        }
        if (page.NextShardIterator !== undefined) options.iterators.set(shardId, page.NextShardIterator)
      } catch (error) {
        // read throttling (5 reads/s per shard): the next round tries again
        if (!(error instanceof Error && error.name === "ProvisionedThroughputExceededException")) throw error
      }
    }
    if (!options.done(records)) await sleep(500)
  }
  return records
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(process.env.RUN_INTEGRATION_TESTS !== "1")("service against PostgreSQL and Kinesis (RUN_INTEGRATION_TESTS=1)", () => {
  const suffix = randomBytes(4).toString("hex")
  const table = `cdc_it_${suffix}`
  let target: Target | undefined
  let slot = ""
  let slotCreated = false
  let tableCreated = false
  let kinesis: KinesisClient | undefined
  let service: ServiceProcess | undefined

  beforeAll(async () => {
    target = readTarget(process.env)
    slot = `${target.slotBase}_${suffix}`
    kinesis = new KinesisClient({
      region: target.region,
      ...(target.endpoint === undefined ? {} : { endpoint: target.endpoint }),
      requestHandler: new NodeHttpHandler()
    })
    await psql(target.admin, `CREATE TABLE public.${table} (id integer PRIMARY KEY, version integer NOT NULL, note text, flag boolean)`)
    tableCreated = true
    // the slot exists before the workload, so the service streams all of it
    await psql(target.pg, `SELECT pg_create_logical_replication_slot('${slot}', 'wal2json')`)
    slotCreated = true
  })

  afterAll(async () => {
    // best effort: a failure here must not hide the test's own result
    if (service !== undefined && service.child.exitCode === null && service.child.signalCode === null) {
      service.kill("SIGKILL")
      await service.exited
    }
    if (target !== undefined && slotCreated) {
      const pg = target.pg
      await eventually("the slot to be released", async () =>
        (await psql(pg, `SELECT active FROM pg_replication_slots WHERE slot_name = '${slot}'`)) !== "t", 15_000).catch(() => undefined)
      await psql(pg, `SELECT pg_drop_replication_slot('${slot}')`).catch((error: unknown) => {
        console.warn(`could not drop replication slot ${slot}; drop it by hand: ${String(error)}`)
      })
    }
    if (target !== undefined && tableCreated) {
      await psql(target.admin, `DROP TABLE IF EXISTS public.${table}`).catch((error: unknown) => {
        console.warn(`could not drop table public.${table}: ${String(error)}`)
      })
    }
    kinesis?.destroy()
  })

  it("streams inserts, updates and deletes as wal2json v2 records, in order per key, and confirms them", async () => {
    const t = target!
    const client = kinesis!
    const iterators = await latestIterators(client, t.stream)

    for (const ops of TRANSACTIONS) {
      await psql(t.admin, ["BEGIN", ...ops.map((op) => statement(`public.${table}`, op)), "COMMIT"].join(";\n"))
    }

    const passThrough = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] =>
      e[0].startsWith("AWS_") && e[1] !== undefined))
    service = startService({
      ...passThrough,
      ...t.pg,
      AWS_REGION: t.region,
      KINESIS_STREAM: t.stream,
      REPLICATION_SLOT: slot,
      REPLICATION_SLOT_CREATE: "false",
      REPLICATION_PLUGIN: "wal2json"
    })
    const running = service

    const expected = new Map<string, number>() // change → its transaction
    TRANSACTIONS.forEach((ops, tx) => {
      for (const op of ops) expected.set(opKey(op.action, op.id, op.version), tx)
    })
    const keyOf = (r: StreamRecord) => opKey(r.body.action, idOf(r.body), versionOf(r.body))

    const records = await readUntil({
      client,
      iterators,
      table,
      timeoutMs: 120_000,
      done: (rs) => new Set(rs.map(keyOf).filter((k) => expected.has(k))).size === expected.size,
      alive: () => {
        if (running.child.exitCode !== null || running.child.signalCode !== null) {
          throw new Error(`the service exited early:\n${running.otherOutput()}\n${running.logs().map((l) => JSON.stringify(l)).join("\n")}`)
        }
      }
    })

    // shape: wal2json format-version 2 with lsn, pk, timestamp and xid
    for (const { body } of records) {
      expect(["I", "U", "D"]).toContain(body.action)
      expect(body.schema).toBe("public")
      expect(body.table).toBe(table)
      expect(body.lsn).toMatch(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/)
      expect(body.timestamp).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d)?$/)
      expect(Number.isInteger(body.xid)).toBe(true)
      expect(body.pk).toEqual([{ name: "id", type: "integer" }])
      if (body.action === "D") {
        expect(body.columns).toBeUndefined()
        expect(body.identity).toEqual([{ name: "id", type: "integer", value: expect.any(Number) }])
      } else {
        const op: Op = { action: body.action as "I" | "U", id: idOf(body), version: versionOf(body)! }
        expect(body.columns).toEqual([
          { name: "id", type: "integer", value: op.id },
          { name: "version", type: "integer", value: op.version },
          { name: "note", type: "text", value: note(op) },
          { name: "flag", type: "boolean", value: flag(op) }
        ])
      }
    }

    // nothing but the workload, nothing of it missing (at least once: a repeat may occur)
    const seen = new Set(records.map(keyOf))
    expect([...seen].filter((k) => !expected.has(k))).toEqual([])
    expect(seen.size).toBe(expected.size)

    // each transaction's changes share one xid and commit time; transactions have different xids
    const xids = new Map<number, Set<number>>()
    for (const r of records) {
      const tx = expected.get(keyOf(r))!
      xids.set(tx, (xids.get(tx) ?? new Set()).add(r.body.xid))
    }
    for (const set of xids.values()) expect(set.size).toBe(1)
    expect(new Set([...xids.values()].map((s) => [...s][0])).size).toBe(TRANSACTIONS.length)

    // per key: one partition key, one shard, the changes in commit order with increasing LSNs
    const byId = new Map<number, Array<StreamRecord>>()
    for (const r of records) byId.set(idOf(r.body), [...(byId.get(idOf(r.body)) ?? []), r])
    for (const [id, rs] of byId) {
      expect(new Set(rs.map((r) => r.partitionKey)).size, `partition keys of id ${id}`).toBe(1)
      expect(new Set(rs.map((r) => r.shardId)).size, `shards of id ${id}`).toBe(1)
      // a record delivered twice repeats right after itself; keep one
      const distinct = rs.filter((r, i) => i === 0 || r.body.lsn !== rs[i - 1]!.body.lsn)
      const lsns = distinct.map((r) => Lsn.parse(r.body.lsn)!)
      for (let i = 1; i < lsns.length; i++) expect(lsns[i]! > lsns[i - 1]!, `LSNs of id ${id} increase`).toBe(true)
      const wanted = TRANSACTIONS.flat().filter((op) => op.id === id).map((op) => opKey(op.action, op.id, op.version))
      expect(distinct.map(keyOf), `changes of id ${id} in order`).toEqual(wanted)
    }
    expect([...byId.keys()].sort((a, b) => a - b)).toEqual(range(1, 13))

    // a graceful stop confirms what was published: the slot moves past the last change
    running.kill("SIGTERM")
    expect(await running.exited).toBe(0)
    const lastLsn = records.map((r) => Lsn.parse(r.body.lsn)!).reduce(Lsn.max)
    const confirmed = Lsn.parse(await psql(t.pg, `SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '${slot}'`))
    expect(confirmed).toBeDefined()
    expect(confirmed! > lastLsn).toBe(true)
  }, 240_000)
})

/**
 * One key failing for a long time under load on other keys, against a real PostgreSQL 15 with
 * wal2json (the replication reader and the pipeline in process, Kinesis in memory failing every
 * record of one row with a throttling error): the frontier's bookkeeping stays within the queue's
 * bound, the reader stops reading so the walsender falls behind the WAL (back-pressure reaches the
 * server), the slot is not confirmed past the stuck change, and after recovery every change arrives,
 * each row's in order.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric } from "effect"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import * as KinesisMemory from "../../src/kinesis/KinesisMemory.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import * as ReplicationReader from "../../src/replication/ReplicationReader.ts"
import type { ReplicationSession } from "../../src/replication/ReplicationSession.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, pgConfig, psql, replicationConfig } from "../replication/fixtures.ts"
import { kinesisConfig, pipelineConfig, runPipeline } from "./fixtures.ts"

let pg!: PgCluster

beforeAll(async () => {
  pg = await startPostgres()
  await pg.psql(`
    CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
    INSERT INTO hot SELECT k, 0, '' FROM generate_series(0, 50) k;
    -- one transaction per round: the stuck row (id 0) in every 5th, and two of the 50 others in each
    CREATE PROCEDURE rounds(first int, last int) LANGUAGE plpgsql AS $$
    BEGIN
      FOR r IN first..last LOOP
        IF r % 5 = 0 THEN UPDATE hot SET v = r WHERE id = 0; END IF;
        UPDATE hot SET v = r, pad = repeat('x', 1000) WHERE id IN (1 + r % 50, 1 + (r + 25) % 50);
        COMMIT;
      END LOOP;
    END $$;
  `)
})
afterAll(async () => {
  await pg?.stop()
})

const STUCK_KEY = "public.hot:[0]"

interface Row {
  readonly id: number
  readonly v: number
}

const rowOf = (data: Uint8Array): Row => {
  const json = JSON.parse(Buffer.from(data).toString("utf8")) as { columns: ReadonlyArray<{ name: string; value: number }> }
  const value = (name: string) => json.columns.find((c) => c.name === name)!.value
  return { id: value("id"), v: value("v") }
}

/** The walsender's sent position and the server's WAL position, as numbers. */
const positions = Effect.suspend(() => Effect.map(
  psql(pg, "SELECT sent_lsn, pg_current_wal_lsn() FROM pg_stat_replication WHERE application_name = 'cdc-stuck'"),
  (line) => {
    const [sent, current] = line.split("|")
    return { sent: Number(Lsn.parse(sent ?? "") ?? 0n), current: Number(Lsn.parse(current ?? "") ?? 0n) }
  }
))

const confirmedFlush = Effect.suspend(() =>
  Effect.map(psql(pg, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'stuck'"), (lsn) => Lsn.parse(lsn)!)
)

/** Waits until `count()` has not changed for `quietMs`. */
const settled = (count: () => number, quietMs: number) =>
  Effect.gen(function*() {
    let last = -1
    let since = Date.now()
    while (Date.now() - since < quietMs) {
      if (count() !== last) {
        last = count()
        since = Date.now()
      }
      yield* Effect.sleep("20 millis")
    }
  })

describe("one key failing for a long time under load on other keys (real PostgreSQL)", () => {
  it.live("the reader stops at the bound and the walsender falls behind; after recovery everything arrives, each row in order", () =>
    Effect.gen(function*() {
      const ROUNDS = 12_000
      const queueMaxMessages = 400
      const opened = yield* ReplicationReader.open({
        pg: pgConfig(pg, { applicationName: "cdc-stuck" }),
        decoder: Wal2JsonDecoder.make({ addTables: [], filterTables: [] }),
        replication: replicationConfig({ slot: "stuck" })
      })
      let takes = 0
      let firstStuck: ChangeEvent | undefined
      const session: ReplicationSession = {
        ...opened,
        take: Effect.tap(opened.take, (events) =>
          Effect.sync(() => {
            takes++
            firstStuck ??= events.find((e) => e.pk === "[0]")
          }))
      }
      let stuck = true
      const memory = KinesisMemory.make({
        behaviour: (request) =>
          Effect.succeed(
            stuck
              ? KinesisMemory.partial(request.records.map((r) =>
                r.partitionKey === STUCK_KEY ? "ProvisionedThroughputExceededException" : undefined
              ))
              : KinesisMemory.accept
          )
      })
      const stop = yield* Deferred.make<void>()
      const run = yield* runPipeline(session, memory.client, {
        kinesis: kinesisConfig({ retryBaseMs: 5, retryMaxMs: 50 }),
        pipeline: pipelineConfig({ queueMaxMessages }),
        stop: Deferred.await(stop)
      }).pipe(Effect.forkChild)
      let maxPending = 0
      const sampler = yield* Effect.forever(
        Metric.value(Metrics.frontierPending).pipe(
          Effect.tap((state) => Effect.sync(() => void (maxPending = Math.max(maxPending, state.value)))),
          Effect.andThen(Effect.sleep("2 millis"))
        )
      ).pipe(Effect.forkChild)

      // ~12 MB of WAL, far more than the reader's and the sockets' buffers
      yield* psql(pg, `CALL rounds(1, ${ROUNDS})`)
      yield* settled(() => takes, 1_000)

      // the reader stopped: the walsender is behind the WAL by more than the buffers on the way
      const stalled = yield* positions
      expect(stalled.current - stalled.sent).toBeGreaterThan(4 * 1024 * 1024)
      // the other rows flowed meanwhile, the stuck row's changes fill the queue
      expect(memory.accepted().length).toBeGreaterThan(queueMaxMessages)
      expect(memory.accepted().some((a) => a.partitionKey === STUCK_KEY)).toBe(false)
      // the bookkeeping stayed within the queue's bound plus one read (a read is at most ~320 KiB of WAL)
      expect(maxPending).toBeGreaterThan(0)
      expect(maxPending).toBeLessThanOrEqual(queueMaxMessages + 1_000)
      // the slot is not confirmed past the stuck change
      yield* Effect.sleep("600 millis") // a status interval
      expect((yield* confirmedFlush) < firstStuck!.lsn).toBe(true)

      stuck = false
      const expected = ROUNDS / 5 + 2 * ROUNDS
      yield* eventually("every change published", Effect.sync(() => (memory.accepted().length >= expected ? true : undefined)), {
        timeoutMs: 120_000
      })
      const end = (yield* positions).current
      yield* eventually("the slot confirmed up to the end", Effect.map(confirmedFlush, (lsn) => (Number(lsn) >= end ? true : undefined)), {
        timeoutMs: 10_000
      })
      yield* Deferred.succeed(stop, undefined)
      yield* Fiber.join(run)
      yield* Fiber.interrupt(sampler)

      // nothing lost, nothing twice, each row's changes in order
      const rows = memory.accepted().map((a) => rowOf(a.data))
      expect(rows).toHaveLength(expected)
      const lastV = new Map<number, number>()
      for (const { id, v } of rows) {
        expect(v).toBeGreaterThan(lastV.get(id) ?? 0)
        lastV.set(id, v)
      }
      expect(lastV.get(0)).toBe(ROUNDS)
      expect(maxPending).toBeLessThanOrEqual(queueMaxMessages + 1_000)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())), 180_000)
})

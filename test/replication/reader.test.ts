/**
 * The replication reader against a real PostgreSQL 15 with wal2json: slot life cycle, streamed
 * changes compared with a twin slot, acknowledgement across reconnects, back-pressure under a
 * stalled consumer, keepalive-driven flush on an idle database, and the slot errors.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Logger, References, Result } from "effect"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import { DecodeError, PgError } from "../../src/Errors.ts"
import * as ErrorPolicy from "../../src/ErrorPolicy.ts"
import type { Decoder } from "../../src/replication/Decoder.ts"
import * as PgReplicationConnection from "../../src/replication/PgReplicationConnection.ts"
import * as ReplicationReader from "../../src/replication/ReplicationReader.ts"
import type { ReplicationSession } from "../../src/replication/ReplicationSession.ts"
import * as Slot from "../../src/replication/Slot.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, pgConfig, psql, replicationConfig } from "./fixtures.ts"

const FILTERED = "public.skipped"
const decoderOptions = { addTables: [], filterTables: [FILTERED] }
const wal2json = (): Decoder => Wal2JsonDecoder.make(decoderOptions)

let pg!: PgCluster

beforeAll(async () => {
  pg = await startPostgres({ conf: { wal_sender_timeout: "'2s'" } })
  await pg.psql(`
    CREATE TABLE items (id int PRIMARY KEY, name text);
    CREATE TABLE skipped (id int);
    CREATE TABLE bulk (id int PRIMARY KEY, pad text);
  `)
  await pg.psql("CREATE DATABASE other")
  await pg.psql("CREATE TABLE heartbeat (id int)", { database: "other" })
})
afterAll(async () => {
  await pg?.stop()
})

const open = (slot: string, overrides: Partial<Omit<ReplicationReader.OpenOptions, "replication">> & {
  readonly replication?: Partial<ReplicationReader.OpenOptions["replication"]>
} = {}) =>
  ReplicationReader.open({
    pg: pgConfig(pg, { applicationName: `cdc-${slot}` }),
    decoder: wal2json(),
    ...overrides,
    replication: replicationConfig({ slot, ...overrides.replication })
  })

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString("utf8")

/** Takes until `enough` holds for everything read so far (or fails after `timeoutMs`). */
const takeUntil = (
  session: ReplicationSession,
  enough: (events: ReadonlyArray<ChangeEvent>) => boolean,
  timeoutMs = 15_000
) =>
  Effect.gen(function*() {
    const events: Array<ChangeEvent> = []
    while (!enough(events)) events.push(...(yield* session.take))
    return events
  }).pipe(Effect.timeoutOrElse({
    duration: timeoutMs,
    orElse: () => Effect.fail(new Error("timed out waiting for changes"))
  }))

const commits = (events: ReadonlyArray<ChangeEvent>) => events.filter((e) => e.action === "C")

const slotRow = (slot: string) =>
  Effect.map(
    psql(pg, `SELECT active, confirmed_flush_lsn, plugin FROM pg_replication_slots WHERE slot_name = '${slot}'`),
    (line) => {
      const [active, confirmedFlush, plugin] = line.split("|")
      return line === "" ? undefined : { active: active === "t", confirmedFlush: Lsn.parse(confirmedFlush ?? "")!, plugin }
    }
  )

/** The WAL insert position: the start of the next record. */
const currentLsn = Effect.suspend(() => Effect.map(psql(pg, "SELECT pg_current_wal_insert_lsn()"), (lsn) => Lsn.parse(lsn)!))

/** A logger that keeps every message, to check what was (and was not) logged. */
const captureLogs = () => {
  const lines: Array<{ readonly level: string; readonly message: string; readonly annotations: Readonly<Record<string, unknown>> }> = []
  const logger = Logger.make(({ fiber, logLevel, message }) => {
    lines.push({
      level: logLevel,
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      annotations: { ...fiber.getRef(References.CurrentLogAnnotations) }
    })
  })
  return { lines, layer: Logger.layer([logger]) }
}

describe("ReplicationReader", () => {
  it.live("creates a missing slot with a warning naming its consistent point; a second open reuses it silently", () =>
    Effect.gen(function*() {
      const first = captureLogs()
      const startLsn = yield* Effect.scoped(Effect.map(open("reader_create"), (s) => s.startLsn)).pipe(Effect.provide(first.layer))
      const row = yield* slotRow("reader_create")
      expect(row?.plugin).toBe("wal2json")
      expect(startLsn).toBe(row?.confirmedFlush)
      const warning = first.lines.find((l) => l.level === "Warn")
      expect(warning?.message).toBe("slot_created")
      expect(warning?.annotations).toMatchObject({ slot: "reader_create", consistentPoint: Lsn.format(startLsn) })

      const second = captureLogs()
      yield* Effect.scoped(open("reader_create")).pipe(Effect.provide(second.layer))
      expect(second.lines.some((l) => l.message === "slot_created")).toBe(false)
      expect(second.lines.some((l) => l.message === "replication_started" && l.annotations.slot === "reader_create")).toBe(true)
      expect(yield* psql(pg, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'reader_create'")).toBe("1")
    }))

  it.live("streams inserts, updates, deletes and truncates with the LSNs, xids and bodies a twin slot sees", () =>
    Effect.scoped(Effect.gen(function*() {
      const session = yield* open("reader_stream")
      yield* psql(pg, "SELECT pg_create_logical_replication_slot('reader_twin', 'wal2json')")
      const before = yield* currentLsn
      yield* psql(pg, "INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')")
      yield* psql(pg, "BEGIN; UPDATE items SET name = 'TWO' WHERE id = 2; DELETE FROM items WHERE id = 3; INSERT INTO skipped VALUES (1); COMMIT")
      yield* psql(pg, "TRUNCATE items")
      const after = yield* currentLsn

      const events = yield* takeUntil(session, (es) => commits(es).length >= 3)
      expect(events.map((e) => e.action)).toEqual(["B", "I", "I", "I", "C", "B", "U", "D", "C", "B", "T", "C"])

      // the same slot content through the SQL interface, with the decoder's options
      const args = [...Wal2JsonDecoder.startOptions(decoderOptions).matchAll(/"([^"]+)" '([^']*)'/g)]
        .map(([, k, v]) => `'${k}', '${v}'`).join(", ")
      const twin = (yield* psql(pg, `SELECT lsn, xid, data FROM pg_logical_slot_peek_changes('reader_twin', NULL, NULL, ${args})`))
        .split("\n").map((line) => {
          const [lsn, xid, ...data] = line.split("|")
          return { lsn: Lsn.parse(lsn!)!, xid: Number(xid), data: data.join("|") }
        })
      yield* psql(pg, "SELECT pg_drop_replication_slot('reader_twin')")
      expect(twin.length).toBe(events.length)
      events.forEach((event, i) => {
        const expected = twin[i]!
        expect(Lsn.format(event.lsn)).toBe(Lsn.format(expected.lsn))
        expect(event.xid).toBe(expected.xid)
        expect(JSON.parse(expected.data).action).toBe(event.action)
        if (event.action !== "B" && event.action !== "C") {
          const position = `{"commit_lsn":"${Lsn.format(event.commitLsn)}","commit_idx":${event.commitIdx},`
          expect(text(event.body)).toBe(position + expected.data.slice(1))
        }
        expect(event.lsn >= before && event.lsn <= after).toBe(true)
      })
      // bodies say what happened
      const inserts = events.filter((e) => e.action === "I").map((e) => JSON.parse(text(e.body)))
      expect(inserts.map((b) => b.columns.map((c: { value: unknown }) => c.value))).toEqual([[1, "one"], [2, "two"], [3, "three"]])
      expect(events.find((e) => e.action === "U")?.pk).toBe("[2]")
      expect(events.find((e) => e.action === "D")?.pk).toBe("[3]")
      expect(events.find((e) => e.action === "T")?.table).toBe("items")
      // commit ack positions increase with the transactions
      const acks = commits(events).map((c) => c.ackLsn)
      expect([...acks].sort((a, b) => (a < b ? -1 : 1))).toEqual(acks)
      expect(yield* session.serverWalEnd).toBeGreaterThanOrEqual(acks[2]!)
    })))

  it.live("acknowledged transactions never come back after a reconnect; unacknowledged ones do", () =>
    Effect.gen(function*() {
      const slot = "reader_ack"
      const firstRead = yield* Effect.scoped(Effect.gen(function*() {
        const session = yield* open(slot)
        yield* psql(pg, "INSERT INTO items VALUES (10, 'ten')")
        yield* psql(pg, "INSERT INTO items VALUES (11, 'eleven')")
        yield* psql(pg, "INSERT INTO items VALUES (12, 'twelve')")
        const events = yield* takeUntil(session, (es) => commits(es).length >= 3)
        const [c1] = commits(events)
        yield* session.acknowledge(c1!.ackLsn)
        yield* session.acknowledge(c1!.lsn - 1n) // an older LSN is ignored
        return { events, c1: c1! }
      }))
      // the last status update on close confirmed exactly the first transaction
      const row = yield* slotRow(slot)
      expect(row?.confirmedFlush).toBe(firstRead.c1.ackLsn)
      expect(row?.active).toBe(false)

      const xids = commits(firstRead.events).map((c) => c.xid)
      yield* Effect.scoped(Effect.gen(function*() {
        const session = yield* open(slot)
        expect(session.startLsn).toBe(firstRead.c1.ackLsn)
        const events = yield* takeUntil(session, (es) => commits(es).length >= 2)
        expect(commits(events).map((c) => c.xid)).toEqual(xids.slice(1))
        expect(events.some((e) => e.xid === xids[0])).toBe(false)
        const inserted = events.filter((e) => e.action === "I").map((e) => e.pk)
        expect(inserted).toEqual(["[11]", "[12]"])
        // acknowledging everything moves the slot at the next status update (interval 500 ms)
        const last = commits(events)[1]!.ackLsn
        yield* session.acknowledge(last)
        yield* eventually("confirmed_flush to reach the last commit", Effect.map(slotRow(slot), (r) =>
          r !== undefined && r.confirmedFlush >= last ? r : undefined))
        expect(yield* session.flushed).toBeGreaterThanOrEqual(last)
      }))
    }))

  it.live("a stalled consumer keeps its walsender past wal_sender_timeout (2 s) for 10 s, then reads everything", () =>
    Effect.scoped(Effect.gen(function*() {
      const slot = "reader_stall"
      const session = yield* open(slot, { highWaterBytes: 64 * 1024 })
      const pid = yield* eventually("the walsender", Effect.map(
        psql(pg, `SELECT pid FROM pg_stat_replication WHERE application_name = 'cdc-${slot}'`),
        (p) => (p === "" ? undefined : p)
      ))
      // ~30 MB of wal2json output in one transaction: far more than socket buffers hold
      yield* psql(pg, "INSERT INTO bulk SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g")
      const commitLsn = yield* currentLsn
      yield* Effect.sleep("10 seconds") // the stall under test: nobody calls take
      const stats = (yield* psql(pg,
        `SELECT pid, sent_lsn, extract(epoch FROM now() - reply_time) FROM pg_stat_replication WHERE application_name = 'cdc-${slot}'`
      )).split("|")
      expect(stats[0]).toBe(pid) // the same walsender is still there
      expect(Lsn.parse(stats[1]!)! < commitLsn).toBe(true) // it is blocked sending: back-pressure reached the server
      expect(Number(stats[2])).toBeLessThan(1.5) // status updates kept flowing while stalled
      const events = yield* takeUntil(session, (es) => commits(es).length >= 1, 30_000)
      expect(events.filter((e) => e.action === "I").length).toBe(100_000)
      expect(events.at(-1)?.action).toBe("C")
    })), 60_000)

  it.live("an idle database's slot advances on keepalives, but not past unacknowledged changes", () =>
    Effect.scoped(Effect.gen(function*() {
      const slot = "reader_idle"
      const session = yield* open(slot)
      const heartbeat = psql(pg, "INSERT INTO heartbeat VALUES (1)", { database: "other" })

      // nothing was ever handed out: WAL of another database moves the slot forward
      const start = (yield* slotRow(slot))!.confirmedFlush
      const beforeHeartbeat = yield* currentLsn
      yield* heartbeat
      yield* eventually("confirmed_flush to pass the heartbeat", Effect.andThen(heartbeat, Effect.map(slotRow(slot), (r) =>
        r !== undefined && r.confirmedFlush > beforeHeartbeat && r.confirmedFlush > start ? r : undefined)))

      // a transaction handed out but not acknowledged holds the slot where it is
      yield* psql(pg, "INSERT INTO items VALUES (20, 'twenty')")
      const events = yield* takeUntil(session, (es) => commits(es).length >= 1)
      const commit = commits(events)[0]!
      const held = (yield* slotRow(slot))!.confirmedFlush
      expect(held < commit.ackLsn).toBe(true)
      const afterCommit = yield* currentLsn
      yield* heartbeat
      // wait until the server has sent past the heartbeat (its keepalives carry that WAL end) ...
      const passedAt = yield* eventually("the walsender to pass the heartbeat", Effect.andThen(heartbeat, Effect.map(
        psql(pg, `SELECT sent_lsn, now() FROM pg_stat_replication WHERE application_name = 'cdc-${slot}'`),
        (line) => {
          const [sent, at] = line.split("|")
          return Lsn.parse(sent ?? "")! > afterCommit ? at : undefined
        }
      )))
      // ... and has heard two status updates since: they still report the held position
      const reported = yield* eventually("two status updates after the keepalive", Effect.map(
        psql(pg,
          `SELECT flush_lsn FROM pg_stat_replication WHERE application_name = 'cdc-${slot}' ` +
            `AND reply_time > '${passedAt}'::timestamptz + interval '600 milliseconds'`),
        (flush) => (flush === "" ? undefined : Lsn.parse(flush))
      ))
      expect(reported).toBe(held)
      expect((yield* slotRow(slot))!.confirmedFlush).toBe(held)
      expect(yield* session.flushed).toBe(held)

      // once acknowledged, the slot goes to the commit and then on with the heartbeats
      yield* session.acknowledge(commit.ackLsn)
      yield* eventually("confirmed_flush to pass the commit and the later heartbeats", Effect.andThen(heartbeat, Effect.map(slotRow(slot), (r) =>
        r !== undefined && r.confirmedFlush > afterCommit ? r : undefined)))
    })))

  it.live("a decode error fails take and nothing at or after it is acknowledged", () =>
    Effect.scoped(Effect.gen(function*() {
      const real = wal2json()
      const poisoned: Decoder = {
        ...real,
        decode: (messages) => {
          const bad = messages.find((m) => text(m.data).includes("poison"))
          return bad === undefined ? real.decode(messages) : Result.fail(DecodeError.malformed(bad.lsn, "poisoned"))
        }
      }
      const session = yield* open("reader_decode", { decoder: poisoned })
      const flushedBefore = yield* session.flushed
      yield* psql(pg, "INSERT INTO items VALUES (30, 'poison')")
      const error = yield* Effect.flip(takeUntil(session, () => false))
      expect(error).toBeInstanceOf(DecodeError)
      if (!(error instanceof DecodeError)) return
      expect(error.retriable).toBe(false)
      yield* session.acknowledge(error.lsn + 100n)
      yield* session.sendStatusNow
      expect(yield* session.flushed).toBe(flushedBefore)
      expect((yield* slotRow("reader_decode"))?.confirmedFlush).toBe(flushedBefore)
      // the failure sticks
      expect(yield* Effect.flip(session.take)).toBe(error)
    })))

  it.live("a slot with another plugin is a fatal SlotError PluginMismatch naming both plugins", () =>
    Effect.gen(function*() {
      yield* psql(pg, "SELECT pg_create_logical_replication_slot('reader_test_decoding', 'test_decoding')")
      const error = yield* Effect.flip(Effect.scoped(open("reader_test_decoding")))
      expect(error).toMatchObject({ _tag: "SlotError", reason: "PluginMismatch" })
      expect(error.retriable).toBe(false)
      expect(error.message).toContain("test_decoding")
      expect(error.message).toContain("wal2json")
    }))

  it.live("a missing slot with REPLICATION_SLOT_CREATE=false is a fatal SlotError Missing, and nothing is created", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(open("reader_missing", { replication: { createSlot: false } })))
      expect(error).toMatchObject({ _tag: "SlotError", reason: "Missing" })
      expect(error.retriable).toBe(false)
      expect(yield* slotRow("reader_missing")).toBeUndefined()
    }))

  it.live("creating a slot with a plugin the server does not have is a fatal SlotError PluginUnavailable", () =>
    Effect.scoped(Effect.gen(function*() {
      const connection = yield* PgReplicationConnection.connect(pgConfig(pg))
      const error = yield* Effect.flip(Slot.ensure(connection, {
        slot: "reader_no_plugin",
        // a name no server has: the SlotOptions type only admits the two supported plugins
        plugin: "no_such_plugin" as "wal2json",
        createSlot: true
      }))
      expect(error).toMatchObject({ _tag: "SlotError", reason: "PluginUnavailable" })
      expect(error.retriable).toBe(false)
      expect(error.message).toContain("no_such_plugin")
      expect(yield* slotRow("reader_no_plugin")).toBeUndefined()
    })))

  it.live("a slot active on another connection is a retriable SlotError Active naming its pid; interrupting frees it", () =>
    Effect.gen(function*() {
      const slot = "reader_active"
      const holder = yield* Effect.forkChild(Effect.scoped(Effect.andThen(open(slot), Effect.never)))
      const pid = yield* eventually("the slot to become active", Effect.map(
        psql(pg, `SELECT active_pid FROM pg_replication_slots WHERE slot_name = '${slot}' AND active`),
        (p) => (p === "" ? undefined : Number(p))
      ))
      const error = yield* Effect.flip(Effect.scoped(open(slot)))
      expect(error).toMatchObject({ _tag: "SlotError", reason: "Active" })
      expect(error.retriable).toBe(true)
      expect(error).toMatchObject({ pid })
      yield* Fiber.interrupt(holder)
      yield* eventually("the slot to be released", Effect.map(slotRow(slot), (r) => (r?.active === false ? r : undefined)), { timeoutMs: 5000 })
      // the server's own "active for PID" error maps to SlotError Active too
      const mapped = ErrorPolicy.slotErrorOf(
        { slot, plugin: "wal2json" },
        new PgError({ reason: "Unavailable", code: "55006", message: `replication slot "${slot}" is active for PID 4242` })
      )
      expect(mapped).toMatchObject({ _tag: "SlotError", reason: "Active", pid: 4242 })
    }))

  it.live("an invalidated slot (WAL removed past max_slot_wal_keep_size) is a fatal SlotError Invalidated", () =>
    Effect.gen(function*() {
      const slot = "reader_lost"
      // keep the other slots of this cluster out of harm's way: invalidation hits every lagging slot
      yield* psql(pg, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
      yield* psql(pg, `SELECT pg_create_logical_replication_slot('${slot}', 'wal2json')`)
      yield* psql(pg, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
      yield* psql(pg, "SELECT pg_reload_conf()")
      yield* eventually("the slot to be lost", Effect.gen(function*() {
        yield* psql(pg, "INSERT INTO skipped SELECT g FROM generate_series(1, 20000) g; SELECT pg_switch_wal(); CHECKPOINT")
        const status = yield* psql(pg, `SELECT wal_status FROM pg_replication_slots WHERE slot_name = '${slot}'`)
        return status === "lost" ? status : undefined
      }), { timeoutMs: 20_000, intervalMs: 50 })
      yield* psql(pg, "ALTER SYSTEM RESET max_slot_wal_keep_size")
      yield* psql(pg, "SELECT pg_reload_conf()")
      const error = yield* Effect.flip(Effect.scoped(open(slot)))
      expect(error).toMatchObject({ _tag: "SlotError", reason: "Invalidated" })
      expect(error.retriable).toBe(false)
      expect(error.message).toContain("wal_status = lost")
    }))
})

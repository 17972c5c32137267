/**
 * End-to-end lifecycle of one service process (`node src/main.ts`) against a real PostgreSQL and
 * kinesalite: probes and metrics that match what the test did, SIGTERM while the slot is busy
 * elsewhere, a fatal configuration of the stream, a graceful SIGTERM mid-stream that confirms
 * exactly what was published, and a PostgreSQL restart and crash mid-stream. Streams are checked
 * with the consumer's dedupe rule (per key, skip a record whose LSN is not above the highest seen).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, type ServiceProcess } from "../../support/ServiceProcess.ts"
import {
  processTracker,
  awaitWholeWorkload,
  createWitness,
  historyProblems,
  lsnOf,
  pause,
  prepareWorkload,
  readStream,
  serviceEnv,
  slotState,
  uniqueName,
  witnessedChanges,
  type Workload
} from "./E2eFixture.ts"

let pg: PgCluster
let kinesis: Kinesalite
const processes = processTracker()
const start = processes.start

beforeAll(async () => {
  ;[pg, kinesis] = await Promise.all([startPostgres(), startKinesalite()])
})

afterAll(async () => {
  await processes.killAll()
  await kinesis?.stop()
  await pg?.stop()
})

/** Every stdout line of the process was JSON (ServiceProcess puts the others, and stderr, aside). */
const expectOnlyJsonOutput = (service: ServiceProcess) => {
  expect(service.otherOutput()).toBe("")
  expect(service.logs().length).toBeGreaterThan(0)
  for (const line of service.logs()) {
    expect(typeof line.message).toBe("string")
    expect(typeof line.level).toBe("string")
  }
}

const readyz = async (service: ServiceProcess) => {
  const { status, body } = await service.get("/readyz")
  return { status, state: (JSON.parse(body) as { state: string }).state }
}

/** pg_recvlogical streaming the slot, so that the service finds it busy (SlotError Active). */
const holdSlot = (slot: string): ChildProcess => {
  const holder = spawn(Path.join(pg.binDir, "pg_recvlogical"), [
    "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database, "--slot", slot, "--start", "-f", "/dev/null"
  ], { env: { ...process.env, PGPASSWORD: pg.password }, stdio: "ignore" })
  processes.adopt(holder)
  return holder
}

describe("service lifecycle (real processes)", () => {
  it("probes and /metrics match what the test did; an oversized row is dropped and counted", async () => {
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 2)
    const workload = await prepareWorkload(pg, { keys: 25, rounds: 19 })
    // someone else streams the slot: the service leads but cannot connect yet (not ready)
    await pg.psql(`SELECT pg_create_logical_replication_slot('${slot}', 'wal2json')`)
    const holder = holdSlot(slot)
    await eventually("pg_recvlogical holds the slot", async () => (await slotState(pg, slot))?.active === true)

    const service = start(serviceEnv(pg, kinesis, { slot, stream, table: workload.table }, {
      LEADER_ELECTION: "true",
      LEADER_POLL_INTERVAL_MS: "500",
      LEADER_WATCHDOG_INTERVAL_MS: "500",
      KINESIS_MAX_RECORD_BYTES: "1024"
    }))
    await service.waitForLog("pipeline_restart", { where: (l) => l.error === "SlotError" && l.kind === "Active" })
    const connecting = await readyz(service)
    expect(connecting).toEqual({ status: 503, state: "connecting" })
    expect(await service.metric("cdc_leader")).toBe(1)
    expect((await service.get("/healthz")).status).toBe(200)

    holder.kill("SIGTERM")
    await service.waitForLog("streaming", { timeoutMs: 15_000 })
    await eventually("/readyz 200 streaming", async () => {
      const r = await readyz(service)
      return r.status === 200 && r.state === "streaming"
    }, 10_000)

    await workload.run({ perTx: 7 })
    // one row whose record is larger than KINESIS_MAX_RECORD_BYTES: dropped, counted, not published
    await pg.psql(`INSERT INTO ${workload.table} (id, v, pad) VALUES (0, -1, repeat('x', 4000))`)
    await eventually("every change published", async () => (await service.metric("cdc_changes_published_total")) === workload.changes)
    await eventually("the oversized row counted as dropped", async () =>
      (await service.metric("cdc_changes_dropped_total", { reason: "oversized" })) === 1)

    const changes = await readStream(kinesis, stream)
    expect(changes.length).toBe(workload.changes)
    expect(changes.some((c) => c.id === 0)).toBe(false)
    expect(historyProblems(changes, workload)).toEqual([])

    expect(await service.metric("cdc_changes_received_total", { action: "I" })).toBe(workload.keys + 1)
    expect(await service.metric("cdc_changes_received_total", { action: "U" })).toBe(workload.changes - workload.keys)
    expect(await service.metric("cdc_changes_dropped_total")).toBe(1)
    expect(await service.metric("cdc_leader")).toBe(1)
    expect(await service.metric("cdc_reconnects_total")).toBeGreaterThan(0)
    expect(await service.metric("cdc_put_records_retries_total")).toBe(0)
    expect(await service.metric("cdc_batches_total")).toBeGreaterThan(0)
    await eventually("queue drained", async () =>
      (await service.metric("cdc_queue_depth")) === 0 && (await service.metric("cdc_queue_bytes")) === 0)
    // the frontier the service reports is the position the slot confirmed
    const end = lsnOf(await pg.psql("SELECT pg_current_wal_lsn()"))
    await eventually("slot confirmed past the workload", async () => (await slotState(pg, slot))!.confirmedFlush >= end - 4096n)
    const frontier = await eventually("frontier = slot's confirmed position", async () => {
      const [gauge, slotNow] = [await service.metric("cdc_frontier_lsn"), await slotState(pg, slot)]
      return gauge > 0 && BigInt(gauge) === slotNow!.confirmedFlush ? gauge : undefined
    })
    expect(frontier).toBeGreaterThan(0)
    const metricsText = (await service.get("/metrics")).body
    for (const lag of ["cdc_replication_lag_bytes", "cdc_replication_lag_seconds"]) {
      expect(metricsText).toMatch(new RegExp(`^${lag}(\\{[^}]*\\})? `, "m"))
      expect(await service.metric(lag)).toBeGreaterThanOrEqual(0)
    }

    service.kill("SIGTERM")
    expect(await service.exited).toBe(0)
    const stopped = service.logs().find((l) => l.message === "pipeline_stopped")
    expect(stopped).toBeDefined()
    expect(service.logs().filter((l) => l.level.toUpperCase() === "FATAL" || l.message === "fatal_error")).toEqual([])
    expectOnlyJsonOutput(service)
  })

  it("SIGTERM while the leader cannot connect yet (slot busy elsewhere) exits 0 promptly", async () => {
    const slot = uniqueName("slot")
    const workload = await prepareWorkload(pg, { keys: 1, rounds: 0 })
    await pg.psql(`SELECT pg_create_logical_replication_slot('${slot}', 'wal2json')`)
    const stream = uniqueName("stream")
    await kinesis.createStream(stream)
    const holder = holdSlot(slot)
    try {
      await eventually("pg_recvlogical holds the slot", async () => (await slotState(pg, slot))?.active === true)
      const service = start(serviceEnv(pg, kinesis, { slot, stream, table: workload.table }, {
        PG_RECONNECT_BASE_MS: "2000",
        PG_RECONNECT_MAX_MS: "30000"
      }))
      await service.waitForLog("pipeline_restart", { where: (l) => l.error === "SlotError" && l.kind === "Active" })
      const signalledAt = Date.now()
      service.kill("SIGTERM")
      const code = await service.exited
      expect(code, service.logs().map((l) => JSON.stringify(l)).join("\n")).toBe(0)
      expect(Date.now() - signalledAt).toBeLessThan(3_000)
      expect(service.logs().filter((l) => l.message === "fatal_error")).toEqual([])
      expect(service.logs().some((l) => l.message === "shutdown_complete")).toBe(true)
      expectOnlyJsonOutput(service)
    } finally {
      holder.kill("SIGTERM")
    }
  })

  it("a missing stream is fatal: exit 1 with one fatal_error line", async () => {
    const slot = uniqueName("slot")
    const workload = await prepareWorkload(pg, { keys: 3, rounds: 0 })
    const service = start(serviceEnv(pg, kinesis, { slot, stream: uniqueName("missing"), table: workload.table }))
    const code = await service.exited
    expect(code).toBe(1)
    const fatal = service.logs().filter((l) => l.message === "fatal_error")
    expect(fatal).toHaveLength(1)
    expect(fatal[0]!.error).toBe("KinesisError")
    expect(String(fatal[0]!.reason)).toMatch(/does not exist/)
    expect(service.logs().some((l) => l.message === "shutdown_complete")).toBe(false)
    expectOnlyJsonOutput(service)
  })

  it("SIGTERM mid-stream: exit 0, the slot confirms exactly the published frontier, a restart loses nothing", async () => {
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 2)
    const workload = await prepareWorkload(pg, { keys: 20, rounds: 99 })
    const witness = await createWitness(pg)
    const env = serviceEnv(pg, kinesis, { slot, stream, table: workload.table }, {
      BATCH_MAX_RECORDS: "3",
      KINESIS_MAX_INFLIGHT: "1",
      // a small queue: the reader is held back, so the stop drains a few changes, not the backlog
      QUEUE_MAX_MESSAGES: "20"
    })
    const first = start(env)
    await first.waitForLog("streaming")
    await workload.run({ perTx: 4 })
    await eventually("a part of the backlog published", async () => (await first.metric("cdc_changes_published_total")) >= 300)
    first.kill("SIGTERM")
    expect(await first.exited).toBe(0)
    const stopped = first.logs().find((l) => l.message === "pipeline_stopped")
    expect(stopped, "the stop line").toBeDefined()
    const position = lsnOf(String(stopped!.confirmedLsn))
    expect((await slotState(pg, slot))!.confirmedFlush).toBe(position)

    const witnessed = await witnessedChanges(pg, witness, workload.table)
    expect(witnessed).toHaveLength(workload.changes)
    const lastCommit = witnessed[witnessed.length - 1]!.commitEnd
    expect(position, "stopped mid-stream").toBeLessThan(lastCommit)
    const streamed = new Set((await readStream(kinesis, stream)).map((c) => `${c.id}:${c.v}`))
    const confirmed = witnessed.filter((c) => c.commitEnd <= position)
    expect(confirmed.length).toBeGreaterThan(0)
    expect(confirmed.filter((c) => !streamed.has(`${c.id}:${c.v}`)), "confirmed but not in the stream").toEqual([])
    // what was published beyond the confirmed position is at most the one transaction read in part
    const beyond = new Set(witnessed.filter((c) => c.commitEnd > position && streamed.has(`${c.id}:${c.v}`)).map((c) => c.commitEnd))
    expect(beyond.size).toBeLessThanOrEqual(1)

    const second = start(env)
    await awaitWholeWorkload(kinesis, stream, workload, [first, second], 30_000)
    expect(historyProblems(await readStream(kinesis, stream), workload)).toEqual([])
    second.kill("SIGTERM")
    expect(await second.exited).toBe(0)
    expectOnlyJsonOutput(first)
    expectOnlyJsonOutput(second)
  })

  const restartCase = async (
    restart: (service: ServiceProcess, workload: Workload) => Promise<void>,
    overrides: Readonly<Record<string, string>> = {}
  ) => {
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 2)
    const workload = await prepareWorkload(pg, { keys: 20, rounds: 99 })
    const service = start(serviceEnv(pg, kinesis, { slot, stream, table: workload.table }, {
      BATCH_MAX_RECORDS: "3",
      KINESIS_MAX_INFLIGHT: "1",
      QUEUE_MAX_MESSAGES: "20",
      ...overrides
    }))
    await service.waitForLog("streaming")
    await workload.run({ perTx: 4 })
    await eventually("a part of the backlog published", async () => (await service.metric("cdc_changes_published_total")) >= 300)
    expect(await service.metric("cdc_changes_published_total"), "restarting mid-stream").toBeLessThan(workload.changes)
    const restartedAt = Date.now()
    await restart(service, workload)
    await service.waitForLog("pipeline_restart", { timeoutMs: 15_000 })
    // a new replication session after the restart
    await service.waitForLog("streaming", { where: (l) => Date.parse(l.timestamp) >= restartedAt, timeoutMs: 15_000 })
    await awaitWholeWorkload(kinesis, stream, workload, [service], 40_000)
    expect(historyProblems(await readStream(kinesis, stream), workload)).toEqual([])
    expect(await service.metric("cdc_reconnects_total")).toBeGreaterThan(0)
    service.kill("SIGTERM")
    expect(await service.exited).toBe(0)
    expectOnlyJsonOutput(service)
  }

  it("PostgreSQL restarts (pg_ctl restart, fast) mid-stream: the service reconnects and loses nothing", async () => {
    // a fast shutdown lets the walsender send what is pending first, so the backlog may be drained before the server stops
    await restartCase(() => pg.restart())
  })

  it("PostgreSQL crashes (immediate stop, down 2 s) mid-stream: not ready while reconnecting, then reconnects and loses nothing", async () => {
    await restartCase(async (service, workload) => {
      // the harness runs with synchronous_commit=off: wait until the workload's WAL is on disk, or
      // the crash takes its last commits with it (they were never sent either: walsenders send flushed WAL only)
      const written = await pg.psql("SELECT pg_current_wal_insert_lsn()")
      await eventually("the workload's WAL flushed", async () =>
        (await pg.psql(`SELECT pg_current_wal_flush_lsn() >= '${written}'::pg_lsn`)) === "t", 5_000, 50)
      await pg.stopServer("immediate")
      try {
        await service.waitForLog("pipeline_restart", { timeoutMs: 15_000 })
        // waiting out the restart backoff (>= 2.4 s here) is not streaming
        expect(await readyz(service)).toEqual({ status: 503, state: "connecting" })
        expect(await service.metric("cdc_changes_published_total"), "the backlog is not drained while the server is down")
          .toBeLessThan(workload.changes)
        await pause(2_000)
      } finally {
        await pg.startServer()
      }
    }, { PG_RECONNECT_BASE_MS: "3000", PG_RECONNECT_MAX_MS: "5000" })
  })
})

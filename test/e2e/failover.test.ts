/**
 * End-to-end leader election through real service processes on one slot: a standby is ready but
 * not streaming; SIGKILL of the leader mid-stream hands the slot to the standby within seconds and
 * loses nothing; a leader whose lock backend is terminated stops streaming within a watchdog
 * interval, publishes nothing while another session holds the lock, and resumes once it wins the
 * lock again.
 */
import { spawn } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as LockKey from "../../src/leader/LockKey.ts"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { parseMetrics } from "../../support/Metrics.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { exportedMetrics, readmeMetrics } from "../observability/readmeMetrics.ts"
import { eventually, type ServiceProcess } from "../../support/ServiceProcess.ts"
import {
  processTracker,
  awaitWholeWorkload,
  historyProblems,
  pause,
  prepareWorkload,
  readStream,
  serviceEnv,
  slotState,
  uniqueName
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

const WATCHDOG_MS = 500
const POLL_MS = 500

const electionEnv = {
  LEADER_ELECTION: "true",
  LEADER_POLL_INTERVAL_MS: String(POLL_MS),
  LEADER_WATCHDOG_INTERVAL_MS: String(WATCHDOG_MS)
}

const readyz = async (service: ServiceProcess) => {
  const { status, body } = await service.get("/readyz")
  return { status, state: (JSON.parse(body) as { state: string }).state }
}

const logTime = (service: ServiceProcess, message: string, after = 0): number | undefined => {
  const line = service.logs().find((l) => l.message === message && Date.parse(l.timestamp) >= after)
  return line === undefined ? undefined : Date.parse(line.timestamp)
}

/**
 * A psql session of our own that waits for the advisory lock (`pg_advisory_lock`, blocking) and
 * holds it until `release`.
 */
const lockHolder = (key: bigint) => {
  const session = spawn("psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], { env: { ...process.env, ...pg.env } })
  processes.adopt(session)
  let output = ""
  session.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk
  })
  session.stdin.write(`SELECT pg_advisory_lock(${key});\n\\echo LOCKED\n`)
  const exited = new Promise<void>((resolve) => session.once("exit", () => resolve()))
  return {
    locked: () => output.includes("LOCKED"),
    release: async () => {
      session.stdin.end("\\q\n")
      await exited
    }
  }
}

describe("leader election (real processes)", () => {
  it("the standby is ready but idle; SIGKILL of the leader mid-stream: the standby streams within 10 s, nothing lost, per-key order", async () => {
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 2)
    const workload = await prepareWorkload(pg, { keys: 30, rounds: 99 })
    const env = serviceEnv(pg, kinesis, { slot, stream, table: workload.table }, {
      ...electionEnv,
      BATCH_MAX_RECORDS: "5",
      KINESIS_MAX_INFLIGHT: "1",
      QUEUE_MAX_MESSAGES: "50"
    })
    const first = start(env)
    await first.waitForLog("streaming")
    const second = start(env)
    await second.waitForLog("leader_campaign")
    await eventually("the second instance is a ready standby", async () => {
      const r = await readyz(second)
      return r.status === 200 && r.state === "standby"
    }, 10_000)
    // the standby's first scrape lists every metric README documents, each sample 0 but the
    // process's own memory (cdc_memory_bytes), whose resident set is above 0
    const standbyMetrics = (await second.get("/metrics")).body
    expect(exportedMetrics(standbyMetrics)).toEqual(readmeMetrics())
    const samples = parseMetrics(standbyMetrics).filter((s) => s.name.startsWith("cdc_"))
    expect(samples.filter((s) => s.name !== "cdc_memory_bytes" && s.value !== 0)).toEqual([])
    expect(samples.find((s) => s.name === "cdc_memory_bytes" && s.labels["kind"] === "rss")?.value).toBeGreaterThan(0)
    expect(await readyz(first)).toEqual({ status: 200, state: "streaming" })
    expect(await first.metric("cdc_leader")).toBe(1)
    expect(await second.metric("cdc_leader")).toBe(0)

    // a standby has nothing to drain: SIGTERM stops it at once, cleanly
    const third = start(env)
    await third.waitForLog("leader_campaign")
    const signalledAt = Date.now()
    third.kill("SIGTERM")
    expect(await third.exited).toBe(0)
    expect(Date.now() - signalledAt).toBeLessThan(2_000)
    expect(third.logs().some((l) => l.message === "leader_elected")).toBe(false)
    expect(third.logs().some((l) => l.message === "shutdown_complete")).toBe(true)

    // a workload runs (paced commits) while the leader publishes its backlog
    const writing = workload.run({ perTx: 10, pauseSeconds: 0.005 })
    await eventually("the leader is mid-stream", async () => (await first.metric("cdc_changes_published_total")) >= 500, 30_000)
    expect(second.logs().some((l) => l.message === "leader_elected"), "the standby has not led").toBe(false)
    expect(await second.metric("cdc_changes_published_total")).toBe(0)
    const killedAt = Date.now()
    first.kill("SIGKILL")
    expect(await first.exited).toBe("SIGKILL")

    await eventually("the standby publishes", async () => (await second.metric("cdc_changes_published_total")) > 0, 10_000, 50)
    expect(Date.now() - killedAt, "standby streaming within 10 s of the kill").toBeLessThan(10_000)
    expect(await second.metric("cdc_leader")).toBe(1)
    expect(await readyz(second)).toEqual({ status: 200, state: "streaming" })
    await writing
    await awaitWholeWorkload(kinesis, stream, workload, [first, second], 40_000)
    expect(historyProblems(await readStream(kinesis, stream), workload)).toEqual([])
    second.kill("SIGTERM")
    expect(await second.exited).toBe(0)
  })

  it("leadership lost: streaming stops within a watchdog interval, nothing is published without the lock, and resumes once the lock is won again", async () => {
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 1)
    const workload = await prepareWorkload(pg, { keys: 10, rounds: 19 })
    const service = start(serviceEnv(pg, kinesis, { slot, stream, table: workload.table }, electionEnv))
    await service.waitForLog("streaming")
    const elected = await service.waitForLog("leader_elected")

    // the first half of the workload streams normally
    await pg.psql(`INSERT INTO ${workload.table} (id, v) SELECT k, 0 FROM generate_series(1, ${workload.keys}) k`)
    await eventually("the inserts published", async () => (await service.metric("cdc_changes_published_total")) === workload.keys)

    // another session queues for the lock, then the leader's lock backend is terminated
    const key = LockKey.derive(pg.database, slot)
    const holder = lockHolder(key)
    const lockPid = Number(await pg.psql(
      "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid " +
        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE '%/leader'"
    ))
    expect(lockPid).toBe(Number(elected.pid))
    const terminatedAt = Date.now()
    expect(await pg.psql(`SELECT pg_terminate_backend(${lockPid})`)).toBe("t")
    await eventually("our session holds the lock", () => holder.locked(), 5_000, 20)

    const lost = await service.waitForLog("leadership_lost", { timeoutMs: 5_000 })
    expect(Date.parse(lost.timestamp) - terminatedAt, "noticed within one watchdog interval (+ margin)").toBeLessThan(WATCHDOG_MS + 1_000)
    // the replication connection is closed: the slot is free
    await eventually("the slot released", async () => (await slotState(pg, slot))?.active === false, 2_000, 50)
    await eventually("the service is a standby", async () => {
      const r = await readyz(service)
      return r.status === 200 && r.state === "standby" && (await service.metric("cdc_leader")) === 0
    }, 5_000)
    const publishedWhenLost = await service.metric("cdc_changes_published_total")
    const streamedWhenLost = (await readStream(kinesis, stream)).length

    // changes made while another session holds the lock are not published
    for (let round = 1; round <= workload.rounds; round++) {
      await pg.psql(`UPDATE ${workload.table} SET v = ${round}`)
    }
    await pause(4 * POLL_MS)
    expect(await service.metric("cdc_changes_published_total")).toBe(publishedWhenLost)
    expect((await readStream(kinesis, stream)).length).toBe(streamedWhenLost)
    expect(await service.metric("cdc_leader")).toBe(0)

    // the lock is free again: the same instance wins it and streams the rest
    const releasedAt = Date.now()
    await holder.release()
    const reelected = await service.waitForLog("leader_elected", { where: (l) => Date.parse(l.timestamp) >= releasedAt, timeoutMs: 10_000 })
    expect(Date.parse(reelected.timestamp) - releasedAt).toBeLessThan(POLL_MS + 2_000)
    await awaitWholeWorkload(kinesis, stream, workload, [service], 30_000)
    expect(historyProblems(await readStream(kinesis, stream), workload)).toEqual([])
    expect(await service.metric("cdc_leader")).toBe(1)
    expect(logTime(service, "streaming", releasedAt)).toBeDefined()
    service.kill("SIGTERM")
    expect(await service.exited).toBe(0)
  })
})

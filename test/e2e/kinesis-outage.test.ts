/**
 * End-to-end: the Kinesis endpoint goes away mid-stream (a TCP proxy in front of kinesalite closes
 * its listener and every connection, then listens again on the same port, so the stream's data
 * survives). The service retries, counts the retries, loses nothing; and a second SIGTERM during a
 * drain that cannot finish exits at once with 130.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually } from "../../support/ServiceProcess.ts"
import {
  processTracker,
  awaitWholeWorkload,
  historyProblems,
  pause,
  prepareWorkload,
  readStream,
  serviceEnv,
  startTcpProxy,
  type TcpProxy,
  uniqueName
} from "./E2eFixture.ts"

let pg: PgCluster
let kinesis: Kinesalite
let proxy: TcpProxy
const processes = processTracker()
const start = processes.start

beforeAll(async () => {
  ;[pg, kinesis] = await Promise.all([startPostgres(), startKinesalite()])
  proxy = await startTcpProxy({ host: "127.0.0.1", port: kinesis.port })
})

afterAll(async () => {
  await processes.killAll()
  await proxy?.stop()
  await kinesis?.stop()
  await pg?.stop()
})

const OUTAGE_MS = 20_000

describe("Kinesis endpoint outage (real processes)", () => {
  it("a 20 s outage mid-stream: retries are counted, streaming resumes, nothing is lost", async () => {
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 2)
    const workload = await prepareWorkload(pg, { keys: 20, rounds: 59 })
    const service = start(serviceEnv(pg, { endpoint: proxy.endpoint, region: kinesis.region }, { slot, stream, table: workload.table }, {
      BATCH_MAX_RECORDS: "3",
      KINESIS_MAX_INFLIGHT: "1",
      KINESIS_REQUEST_TIMEOUT_MS: "2000"
    }))
    await service.waitForLog("streaming")
    await workload.run({ perTx: 4 })
    await eventually("a part of the backlog published", async () => (await service.metric("cdc_changes_published_total")) >= 200)

    await proxy.stop()
    const before = await service.metric("cdc_changes_published_total")
    expect(before, "the outage starts mid-stream").toBeLessThan(workload.changes)
    await eventually("retries counted during the outage", async () => (await service.metric("cdc_put_records_retries_total")) >= 3, 10_000)
    await pause(OUTAGE_MS / 2)
    // nothing can be accepted while the endpoint is gone (at most the request that was in flight)
    expect(await service.metric("cdc_changes_published_total")).toBeLessThanOrEqual(before + 3)
    expect((await service.get("/healthz")).status).toBe(200)
    await pause(OUTAGE_MS / 2)
    await proxy.start()

    await awaitWholeWorkload(kinesis, stream, workload, [service], 30_000)
    expect(historyProblems(await readStream(kinesis, stream), workload)).toEqual([])
    expect(await service.metric("cdc_changes_published_total")).toBeGreaterThanOrEqual(workload.changes)
    expect(await service.metric("cdc_put_records_retries_total")).toBeGreaterThan(0)
    // the publisher retried on its own: the replication session was never restarted
    expect(await service.metric("cdc_reconnects_total")).toBe(0)
    service.kill("SIGTERM")
    expect(await service.exited).toBe(0)
  }, 90_000)

  it("a second SIGTERM while the first is still draining exits at once with 130", async () => {
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 1)
    const workload = await prepareWorkload(pg, { keys: 10, rounds: 29 })
    const service = start(serviceEnv(pg, { endpoint: proxy.endpoint, region: kinesis.region }, { slot, stream, table: workload.table }, {
      BATCH_MAX_RECORDS: "3",
      KINESIS_MAX_INFLIGHT: "1",
      SHUTDOWN_TIMEOUT_MS: "30000"
    }))
    await service.waitForLog("streaming")
    await workload.run({ perTx: 4 })
    await eventually("a part of the backlog published", async () => (await service.metric("cdc_changes_published_total")) >= 30)
    await proxy.stop()
    try {
      expect(await service.metric("cdc_changes_published_total"), "the outage starts mid-stream").toBeLessThan(workload.changes)
      await eventually("changes read but not publishable", async () =>
        (await service.metric("cdc_put_records_retries_total")) > 0 && (await service.metric("cdc_queue_depth")) > 0, 10_000)
      service.kill("SIGTERM")
      // the drain cannot finish: the process is still up, serving probes, well after the signal
      const firstSignalAt = Date.now()
      await eventually("still draining 2 s after the first SIGTERM", async () =>
        Date.now() - firstSignalAt >= 2_000 && (await service.get("/healthz")).status === 200, 5_000)
      expect(service.logs().some((l) => l.message === "pipeline_stopped")).toBe(false)
      const secondSignalAt = Date.now()
      service.kill("SIGTERM")
      expect(await service.exited).toBe(130)
      expect(Date.now() - secondSignalAt).toBeLessThan(2_000)
    } finally {
      await proxy.start()
    }
  })
})

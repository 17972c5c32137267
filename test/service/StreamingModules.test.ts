import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { serviceEnvFor, startService, thisCheckout } from "../../support/ServiceProcess.ts"

/**
 * Which modules a streaming service loads: the real service process (leader election on, as
 * deployed) streams a change from a real PostgreSQL into kinesalite, is stopped, and lists every
 * module it resolved. What only other configurations, the CLI or nothing at all need stays out.
 */
let pg: PgCluster
let kinesis: Kinesalite
const workDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-modules-"))

beforeAll(async () => {
  ;[pg, kinesis] = await Promise.all([startPostgres(), startKinesalite()])
  await pg.psql("CREATE TABLE modules_probe (id int PRIMARY KEY, v text); CREATE PUBLICATION modules_pub FOR ALL TABLES")
}, 120_000)

afterAll(async () => {
  await Promise.all([kinesis?.stop(), pg?.stop()])
  Fs.rmSync(workDir, { recursive: true, force: true })
})

/** Streams one change with `plugin`, stops gracefully, and returns the modules the process resolved. */
const modulesWhileStreaming = async (plugin: "wal2json" | "pgoutput"): Promise<ReadonlyArray<string>> => {
  const stream = `modules_${plugin}`
  await kinesis.createStream(stream)
  const file = Path.join(workDir, `${plugin}.txt`)
  const checkout = { ...thisCheckout, nodeFlags: [...thisCheckout.nodeFlags, "--import", Path.join(import.meta.dirname, "ModuleLog.ts")] }
  const service = startService({
    ...serviceEnvFor(pg, kinesis, { slot: `modules_${plugin}`, stream }),
    LEADER_ELECTION: "true",
    REPLICATION_PLUGIN: plugin,
    PUBLICATION_NAME: "modules_pub",
    MODULE_LOG_FILE: file
  }, checkout)
  try {
    await service.waitForLog("streaming", { timeoutMs: 60_000 })
    await pg.psql(`INSERT INTO modules_probe VALUES (${plugin === "wal2json" ? 1 : 2}, 'x')`)
    await service.waitUntil("the change to be published", async () => (await service.metric("cdc_changes_published_total")) >= 1)
  } finally {
    expect(await service.stop()).toBe(0)
  }
  return Fs.readFileSync(file, "utf8").split("\n").filter((line) => line !== "")
}

const loadedOf = (modules: ReadonlyArray<string>, fragment: string) => modules.filter((url) => url.includes(fragment))

describe("modules of a streaming service", () => {
  it("wal2json: none of pgoutput's decoder, the CLI, effect's Config or its HTTP server modules", async () => {
    const modules = await modulesWhileStreaming("wal2json")
    expect(loadedOf(modules, "/src/replication/Wal2JsonDecoder.ts")).toHaveLength(1)
    for (const fragment of ["/src/replication/PgOutputDecoder.ts", "/src/cli/", "/effect/dist/Config.js", "/effect/dist/http/HttpRouter.js", "/effect/dist/observability/PrometheusMetrics.js"]) {
      expect(loadedOf(modules, fragment), fragment).toEqual([])
    }
  }, 120_000)

  it("pgoutput: none of wal2json's decoder modules", async () => {
    const modules = await modulesWhileStreaming("pgoutput")
    expect(loadedOf(modules, "/src/replication/PgOutputDecoder.ts")).toHaveLength(1)
    for (const fragment of ["/src/replication/Wal2JsonDecoder.ts", "/src/replication/Wal2JsonMessage.ts", "/src/replication/Wal2JsonRepair.ts", "/src/cli/"]) {
      expect(loadedOf(modules, fragment), fragment).toEqual([])
    }
  }, 120_000)
})

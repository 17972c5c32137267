/**
 * One-off: the CPU-per-change baseline of issue 14, measured on main at a4d9f5e with that commit's
 * bench modules. A throwaway PostgreSQL, a backlog written once into four slots created before it
 * (wal2json and pgoutput, each with a twin for pg_recvlogical), then for each plugin:
 *   - pg_recvlogical drains its slot up to the backlog's end (CPU: the bench process's cutime+cstime delta,
 *     i.e. the reaped child's user+system time),
 *   - the service (`node src/main.ts`, default settings) drains the other slot into the bench endpoint
 *     at 20 ms per request (CPU: utime+stime of /proc/<pid>/stat the moment its frontier reaches the end).
 * Usage: node bench/cpu-baseline.ts [changes] [runs]
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freePort, startPostgres } from "../test/support/PostgresHarness.ts"
import type { PgCluster } from "../test/support/PostgresHarness.ts"
import * as Backlog from "./Backlog.ts"
import { wal2jsonOptions } from "./Ceiling.ts"
import { startEndpointProcess } from "./EndpointProcess.ts"
import { startService, waitFor } from "./ServiceProcess.ts"

const ticks = 100 // getconf CLK_TCK
const changes = Number(process.argv[2] ?? 500_000)
const runs = Number(process.argv[3] ?? 2)
const publication = "bench_publication"

const statFields = (pid: number | "self"): Array<string> =>
  Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
/** utime+stime of a live process, seconds. */
const cpuOf = (pid: number): number => {
  const f = statFields(pid)
  return (Number(f[11]) + Number(f[12])) / ticks
}
/** cutime+cstime of this process (its reaped children), seconds. */
const childrenCpu = (): number => {
  const f = statFields("self")
  return (Number(f[13]) + Number(f[14])) / ticks
}
const lsnToNumber = (lsn: string): number => {
  const [hi, lo] = lsn.split("/")
  return Number((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`))
}
const log = (m: string): void => void process.stderr.write(`[baseline ${new Date().toISOString().slice(11, 19)}] ${m}\n`)

const recvlogical = async (pg: PgCluster, slot: string, endLsn: string, options: ReadonlyArray<string>, file: string) => {
  const args = [
    "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database,
    "--slot", slot, "--start", "--endpos", endLsn, "--no-loop", "-F", "0", "-f", file,
    ...options.flatMap((o) => ["-o", o])
  ]
  const cpuBefore = childrenCpu()
  const started = performance.now()
  const child = spawn(Path.join(pg.binDir, "pg_recvlogical"), args, {
    env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" }, stdio: ["ignore", "ignore", "inherit"]
  })
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
  const seconds = (performance.now() - started) / 1000
  if (code !== 0) throw new Error(`pg_recvlogical exited ${code}`)
  const cpu = childrenCpu() - cpuBefore
  const bytes = Fs.statSync(file).size
  Fs.rmSync(file, { force: true })
  return { seconds, cpu, bytes }
}

const drain = async (pg: PgCluster, workDir: string, slot: string, plugin: "wal2json" | "pgoutput", endLsn: string) => {
  const endpoint = await startEndpointProcess({ latencyMs: 20 })
  const httpPort = await freePort()
  const started = performance.now()
  const service = startService({
    httpPort, logFile: Path.join(workDir, `service-${slot}.log`),
    env: {
      ...pg.env, REPLICATION_SLOT: slot, REPLICATION_PLUGIN: plugin, PUBLICATION_NAME: publication,
      AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "bench", AWS_SECRET_ACCESS_KEY: "bench",
      KINESIS_STREAM: "bench", AWS_ENDPOINT_URL_KINESIS: endpoint.url, LOG_FORMAT: "json"
    }
  })
  try {
    let startupCpu: number | undefined
    const target = lsnToNumber(endLsn)
    await waitFor(`frontier ${endLsn}`, async () => {
      const metrics = await service.metrics()
      if (metrics !== undefined && startupCpu === undefined) startupCpu = cpuOf(service.pid)
      const frontier = metrics?.get("cdc_frontier_lsn")
      return frontier !== undefined && frontier >= target ? true : undefined
    }, { timeoutMs: 900_000, intervalMs: 25, service })
    const cpu = cpuOf(service.pid)
    const seconds = (performance.now() - started) / 1000
    const stats = await endpoint.stats()
    if (stats.records < changes) throw new Error(`endpoint acknowledged ${stats.records} of ${changes}`)
    return { seconds, cpu, startupCpu: startupCpu ?? 0, records: stats.records }
  } finally {
    await service.stop()
    await endpoint.stop()
  }
}

const oneRun = async (run: number) => {
  const workDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-baseline-"))
  const pg = await startPostgres({ conf: { synchronous_commit: "on", max_wal_size: "'8GB'", checkpoint_timeout: "'30min'" } })
  try {
    await Backlog.createSchema(pg)
    await pg.psql(`CREATE PUBLICATION ${publication} FOR ALL TABLES`)
    for (const slot of ["w_ceiling", "w_drain"]) await Backlog.createSlot(pg, slot, "wal2json")
    for (const slot of ["p_ceiling", "p_drain"]) await Backlog.createSlot(pg, slot, "pgoutput")
    log(`run ${run}: writing ${changes} changes`)
    const written = await Backlog.writeBacklog(pg, Backlog.planBacklog(changes))
    const endpos = await Backlog.currentLsn(pg)
    await pg.psql("SELECT pg_logical_emit_message(false, 'bench', 'end of backlog')")
    const out = Path.join(workDir, "w.jsonl")
    // the wal2json ceiling, counted, gives the end LSN of the last commit for the drains
    const args = wal2jsonOptions
    const cpuBefore = childrenCpu()
    const t0 = performance.now()
    await new Promise<void>((resolve, reject) => {
      const child = spawn(Path.join(pg.binDir, "pg_recvlogical"), [
        "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database,
        "--slot", "w_ceiling", "--start", "--endpos", endpos, "--no-loop", "-F", "0", "-f", out, ...args.flatMap((o) => ["-o", o])
      ], { env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" }, stdio: ["ignore", "ignore", "inherit"] })
      child.once("exit", (code) => code === 0 ? resolve() : reject(new Error(`pg_recvlogical ${code}`)))
    })
    const wCeiling = { seconds: (performance.now() - t0) / 1000, cpu: childrenCpu() - cpuBefore }
    const { readSlotOutput } = await import("./Ceiling.ts")
    const counted = await readSlotOutput(out)
    Fs.rmSync(out, { force: true })
    if (counted.changes !== written || counted.lastCommitEndLsn === undefined) throw new Error(`ceiling read ${counted.changes} of ${written}`)
    const endLsn = counted.lastCommitEndLsn
    log(`  wal2json ceiling ${(written / wCeiling.seconds).toFixed(0)}/s, ${wCeiling.cpu.toFixed(2)} s CPU`)
    const pCeiling = await recvlogical(pg, "p_ceiling", endpos,
      ["proto_version=1", `publication_names=${publication}`, "messages=true"], Path.join(workDir, "p.bin"))
    log(`  pgoutput ceiling ${(written / pCeiling.seconds).toFixed(0)}/s, ${pCeiling.cpu.toFixed(2)} s CPU`)
    const wDrain = await drain(pg, workDir, "w_drain", "wal2json", endLsn)
    log(`  wal2json drain ${(written / wDrain.seconds).toFixed(0)}/s, ${wDrain.cpu.toFixed(2)} s CPU (startup ${wDrain.startupCpu.toFixed(2)})`)
    const pDrain = await drain(pg, workDir, "p_drain", "pgoutput", endLsn)
    log(`  pgoutput drain ${(written / pDrain.seconds).toFixed(0)}/s, ${pDrain.cpu.toFixed(2)} s CPU (startup ${pDrain.startupCpu.toFixed(2)})`)
    const perChange = (cpu: number) => (cpu / written) * 1e6
    return {
      run, changes: written, loadAverage: Os.loadavg()[0],
      wal2json: {
        ceiling: { changesPerSecond: written / wCeiling.seconds, cpuSeconds: wCeiling.cpu, cpuMicrosPerChange: perChange(wCeiling.cpu) },
        drain20ms: { changesPerSecond: written / wDrain.seconds, ratio: wCeiling.seconds / wDrain.seconds, cpuSeconds: wDrain.cpu, startupCpuSeconds: wDrain.startupCpu, cpuMicrosPerChange: perChange(wDrain.cpu) }
      },
      pgoutput: {
        ceiling: { changesPerSecond: written / pCeiling.seconds, cpuSeconds: pCeiling.cpu, cpuMicrosPerChange: perChange(pCeiling.cpu) },
        drain20ms: { changesPerSecond: written / pDrain.seconds, ratio: pCeiling.seconds / pDrain.seconds, cpuSeconds: pDrain.cpu, startupCpuSeconds: pDrain.startupCpu, cpuMicrosPerChange: perChange(pDrain.cpu) }
      }
    }
  } finally {
    await pg.stop()
    Fs.rmSync(workDir, { recursive: true, force: true })
  }
}

const results = []
for (let run = 1; run <= runs; run++) results.push(await oneRun(run))
process.stdout.write(JSON.stringify(results, null, 2) + "\n")

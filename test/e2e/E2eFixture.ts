/**
 * Shared pieces of the end-to-end lifecycle and failover tests: a deterministic workload whose
 * every change is identifiable (key, version), the service environment, the stream read back and
 * checked with the consumer's dedupe rule, and a TCP proxy that can take the Kinesis endpoint away
 * and give it back on the same port without losing kinesalite's in-memory data.
 */
import type { ChildProcess } from "node:child_process"
import * as Net from "node:net"
import * as Lsn from "../../src/domain/Lsn.ts"
import type { Kinesalite } from "../../support/KinesaliteHarness.ts"
import type { PgCluster } from "../../support/PostgresHarness.ts"
import { type ServiceProcess, serviceEnvFor, startService } from "../../support/ServiceProcess.ts"
import { awaitWalFlushed } from "../decoding/slotChanges.ts"

/** The service processes and helper children a test file starts; `killAll` in afterAll. */
export const processTracker = () => {
  const services = new Set<ServiceProcess>()
  const children = new Set<ChildProcess>()
  return {
    /** Starts the service (`node src/main.ts`) with this environment. */
    start: (env: Record<string, string>): ServiceProcess => {
      const service = startService(env)
      services.add(service)
      void service.exited.then(() => services.delete(service))
      return service
    },
    /** Kills `child` at the end unless it exited before. */
    adopt: <C extends ChildProcess>(child: C): C => {
      children.add(child)
      child.once("exit", () => children.delete(child))
      return child
    },
    killAll: async (): Promise<void> => {
      for (const service of services) service.kill("SIGKILL")
      for (const child of children) child.kill("SIGKILL")
      await Promise.all([...services].map((s) => s.exited))
    }
  }
}

/** An LSN from its text form; throws on anything else. */
export const lsnOf = (text: string): bigint => {
  const lsn = Lsn.parse(text.trim())
  if (lsn === undefined) throw new Error(`not an LSN: ${JSON.stringify(text)}`)
  return lsn
}

let counter = 0
/** A name unique within this test process, usable as a table, slot or stream name. */
export const uniqueName = (prefix: string): string =>
  `${prefix}_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`

export interface Workload {
  readonly table: string
  readonly keys: number
  readonly rounds: number
  /** Changes the workload makes: one insert per key, then one update per key and round. */
  readonly changes: number
}

/**
 * Creates the workload's table and procedure. `run` inserts keys 1..keys with v = 0, then sets
 * v = 1..rounds on every key, committing every `perTx` changes (optionally pausing between
 * commits), all in one session and so in one serial order of transactions.
 */
export const prepareWorkload = async (pg: PgCluster, options: { readonly keys: number; readonly rounds: number }): Promise<Workload & {
  readonly run: (options?: { readonly perTx?: number; readonly pauseSeconds?: number }) => Promise<string>
}> => {
  const table = uniqueName("e2e")
  await pg.psql(`CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, pad text)`)
  await pg.psql(`
    CREATE PROCEDURE ${table}_work(keys int, rounds int, per_tx int, pause float8) LANGUAGE plpgsql AS $$
    DECLARE n int := 0;
    BEGIN
      FOR k IN 1..keys LOOP
        INSERT INTO ${table} (id, v) VALUES (k, 0);
        n := n + 1;
        IF n % per_tx = 0 THEN COMMIT; IF pause > 0 THEN PERFORM pg_sleep(pause); END IF; END IF;
      END LOOP;
      COMMIT;
      FOR r IN 1..rounds LOOP
        FOR k IN 1..keys LOOP
          UPDATE ${table} SET v = r WHERE id = k;
          n := n + 1;
          IF n % per_tx = 0 THEN COMMIT; IF pause > 0 THEN PERFORM pg_sleep(pause); END IF; END IF;
        END LOOP;
      END LOOP;
      COMMIT;
    END $$`)
  return {
    table,
    keys: options.keys,
    rounds: options.rounds,
    changes: options.keys * (options.rounds + 1),
    run: (run = {}) => pg.psql(`CALL ${table}_work(${options.keys}, ${options.rounds}, ${run.perTx ?? 1}, ${run.pauseSeconds ?? 0})`)
  }
}

/** The service's environment for one test: its own slot, stream and table, fast status and probes. */
export const serviceEnv = (
  pg: PgCluster,
  kinesis: { readonly endpoint: string; readonly region: string },
  options: { readonly slot: string; readonly stream: string; readonly table: string },
  overrides: Readonly<Record<string, string>> = {}
): Record<string, string> => ({
  ...serviceEnvFor(pg, kinesis, options),
  WAL2JSON_ADD_TABLES: `public.${options.table}`,
  LOG_LEVEL: "Info",
  PG_RECONNECT_BASE_MS: "200",
  PG_RECONNECT_MAX_MS: "2000",
  KINESIS_RETRY_BASE_MS: "100",
  KINESIS_RETRY_MAX_MS: "1000",
  ...overrides
})

/** One workload change as read back from the stream. */
export interface StreamedChange {
  readonly shardId: string
  readonly partitionKey: string
  readonly action: string
  readonly lsn: bigint
  /** The record's position: its transaction's commit LSN and its index in it. */
  readonly commitLsn: bigint
  readonly commitIdx: number
  readonly id: number
  readonly v: number
}

interface Wal2JsonColumn {
  readonly name: string
  readonly value: unknown
}

/** Every record of the stream, parsed (wal2json format-version 2 bodies), shard by shard in sequence order. */
export const readStream = async (kinesis: Kinesalite, stream: string): Promise<ReadonlyArray<StreamedChange>> => {
  const records = await kinesis.readAll(stream)
  const decoder = new TextDecoder()
  return records.map((record) => {
    const body = JSON.parse(decoder.decode(record.data)) as {
      commit_lsn: string
      commit_idx: number
      action: string
      lsn: string
      columns?: ReadonlyArray<Wal2JsonColumn>
    }
    const column = (name: string) => body.columns?.find((c) => c.name === name)?.value
    return {
      shardId: record.shardId,
      partitionKey: record.partitionKey,
      action: body.action,
      lsn: lsnOf(body.lsn),
      commitLsn: lsnOf(body.commit_lsn),
      commitIdx: body.commit_idx,
      id: Number(column("id")),
      v: Number(column("v"))
    }
  })
}

/**
 * The consumer's dedupe rule: per key, skip a record whose position (commit LSN, index) is not
 * above the highest applied for that key. Returns, per key, the versions that survive, in stream order.
 */
export const dedupePerKey = (changes: ReadonlyArray<StreamedChange>): Map<number, Array<number>> => {
  const highest = new Map<number, { readonly lsn: bigint; readonly idx: number }>()
  const versions = new Map<number, Array<number>>()
  for (const change of changes) {
    const seen = highest.get(change.id)
    if (seen !== undefined && (change.commitLsn < seen.lsn || (change.commitLsn === seen.lsn && change.commitIdx <= seen.idx))) {
      continue
    }
    highest.set(change.id, { lsn: change.commitLsn, idx: change.commitIdx })
    const list = versions.get(change.id) ?? []
    list.push(change.v)
    versions.set(change.id, list)
  }
  return versions
}

/**
 * The keys whose deduplicated history is not exactly 0, 1, ..., rounds (each change once, in
 * order), with what was seen; empty when the stream holds the whole workload in per-key order.
 */
export const historyProblems = (changes: ReadonlyArray<StreamedChange>, workload: Workload): Array<string> => {
  const versions = dedupePerKey(changes)
  const problems: Array<string> = []
  for (let id = 1; id <= workload.keys; id++) {
    const seen = versions.get(id) ?? []
    const ok = seen.length === workload.rounds + 1 && seen.every((v, i) => v === i)
    if (!ok) problems.push(`key ${id}: ${seen.length > 20 ? `${seen.length} versions: ${seen.slice(0, 20).join(",")}...` : seen.join(",")}`)
  }
  for (const id of versions.keys()) {
    if (id < 1 || id > workload.keys) problems.push(`unexpected key ${id}`)
  }
  return problems
}

/** How many distinct workload changes (key, version) the stream holds. */
export const distinctChanges = (changes: ReadonlyArray<StreamedChange>): number =>
  new Set(changes.map((c) => `${c.id}:${c.v}`)).size

export interface SlotState {
  readonly active: boolean
  readonly activePid: number | undefined
  readonly confirmedFlush: bigint
}

export const slotState = async (pg: PgCluster, slot: string): Promise<SlotState | undefined> => {
  const row = await pg.psql(
    `SELECT active, coalesce(active_pid::text, ''), confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '${slot}'`
  )
  if (row === "") return undefined
  const [active, pid, confirmed] = row.split("|")
  return { active: active === "t", activePid: pid ? Number(pid) : undefined, confirmedFlush: lsnOf(confirmed!) }
}

/**
 * A TCP proxy on a fixed port in front of `target`: `stop()` closes the listener and every open
 * connection (clients then see refused connections), `start()` listens on the same port again.
 */
export interface TcpProxy {
  readonly port: number
  readonly endpoint: string
  readonly start: () => Promise<void>
  readonly stop: () => Promise<void>
}

export const startTcpProxy = async (target: { readonly host: string; readonly port: number }): Promise<TcpProxy> => {
  const sockets = new Set<Net.Socket>()
  const track = (socket: Net.Socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  }
  const server = Net.createServer((client) => {
    const upstream = Net.connect(target.port, target.host)
    track(client)
    track(upstream)
    client.on("error", () => upstream.destroy())
    upstream.on("error", () => client.destroy())
    client.once("close", () => upstream.destroy())
    upstream.once("close", () => client.destroy())
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject)
        const address = server.address()
        resolve(typeof address === "object" && address !== null ? address.port : port)
      })
    })
  const port = await listen(0)
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    start: async () => {
      await listen(port)
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      })
  }
}

/** Waits `ms` (for pacing an outage, never as an assertion). */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A workload change as PostgreSQL decoded it, with the end LSN of its transaction's commit. */
export interface WitnessedChange {
  readonly id: number
  readonly v: number
  readonly lsn: bigint
  /** The commit's end LSN: the position a consumer confirms once the whole transaction is handled. */
  readonly commitEnd: bigint
}

/** Creates a second (witness) slot that sees the same changes as the service's slot, from now on. */
export const createWitness = async (pg: PgCluster): Promise<string> => {
  const slot = uniqueName("witness")
  await pg.psql(`SELECT pg_create_logical_replication_slot('${slot}', 'wal2json')`)
  return slot
}

/** Every change of `table` the witness slot has seen (not consumed), each with its commit's end LSN. */
export const witnessedChanges = async (pg: PgCluster, slot: string, table: string): Promise<ReadonlyArray<WitnessedChange>> => {
  // the test clusters run with synchronous_commit=off, and a slot is read only up to the flushed WAL
  await awaitWalFlushed(pg)
  const out = await pg.psql(
    `SELECT data FROM pg_logical_slot_peek_changes('${slot}', NULL, NULL, 'format-version', '2', 'include-lsn', '1', ` +
      `'add-tables', 'public.${table}')`
  )
  const changes: Array<WitnessedChange> = []
  let pending: Array<Omit<WitnessedChange, "commitEnd">> = []
  for (const line of out.split("\n")) {
    if (line === "") continue
    const body = JSON.parse(line) as { action: string; lsn: string; nextlsn?: string; columns?: ReadonlyArray<Wal2JsonColumn> }
    if (body.action === "B") {
      pending = []
    } else if (body.action === "C") {
      const commitEnd = lsnOf(body.nextlsn!)
      for (const change of pending) changes.push({ ...change, commitEnd })
      pending = []
    } else {
      const column = (name: string) => body.columns?.find((c) => c.name === name)?.value
      pending.push({ id: Number(column("id")), v: Number(column("v")), lsn: lsnOf(body.lsn) })
    }
  }
  return changes
}

/**
 * Waits until the stream holds every change of the workload; on timeout fails with what is
 * missing and the services' recent log lines.
 */
export const awaitWholeWorkload = async (
  kinesis: Kinesalite,
  stream: string,
  workload: Workload,
  services: ReadonlyArray<{ readonly logs: () => ReadonlyArray<unknown>; readonly otherOutput: () => string }>,
  timeoutMs: number
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  let changes: ReadonlyArray<StreamedChange> = []
  while (Date.now() < deadline) {
    changes = await readStream(kinesis, stream)
    if (distinctChanges(changes) === workload.changes) return
    await pause(250)
  }
  const logs = services.map((s, i) =>
    `--- service ${i} ---\n${s.logs().slice(-40).map((l) => JSON.stringify(l)).join("\n")}\n${s.otherOutput().slice(-2000)}`)
  throw new Error(
    `after ${timeoutMs} ms the stream holds ${distinctChanges(changes)} of ${workload.changes} changes ` +
      `(${changes.length} records); problems: ${historyProblems(changes, workload).slice(0, 5).join("; ")}\n${logs.join("\n")}`
  )
}

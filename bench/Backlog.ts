/**
 * The benchmark's backlog: a table, and a server-side generator (generate_series and DO loops, no
 * client round trip per row) of a mix of single-row and multi-row transactions with inserts,
 * updates and deletes, rows of roughly 300-600 bytes of wal2json output.
 */
import type { PgCluster } from "../support/PostgresHarness.ts"

export const table = "public.bench_items"
const defaultTable = table

export const createSchema = (pg: PgCluster, into: string = table): Promise<string> =>
  pg.psql(`
    CREATE TABLE IF NOT EXISTS ${into} (
      id bigint PRIMARY KEY,
      account integer NOT NULL,
      status text NOT NULL,
      payload text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`)

/** How many changes of each kind a backlog of `total` changes holds. */
export interface BacklogPlan {
  readonly insertsMulti: number
  readonly insertsSingle: number
  readonly updatesMulti: number
  readonly updatesSingle: number
  readonly deletesSingle: number
  readonly deletesMulti: number
  /** Rows per multi-row transaction. */
  readonly rowsPerTransaction: number
}

export const planBacklog = (total: number, rowsPerTransaction = 100): BacklogPlan => {
  const insertsMulti = Math.floor(total * 0.4)
  const insertsSingle = Math.floor(total * 0.15)
  const updatesMulti = Math.floor(total * 0.2)
  const updatesSingle = Math.floor(total * 0.15)
  const deletesSingle = Math.floor(total * 0.05)
  const deletesMulti = total - insertsMulti - insertsSingle - updatesMulti - updatesSingle - deletesSingle
  return { insertsMulti, insertsSingle, updatesMulti, updatesSingle, deletesSingle, deletesMulti, rowsPerTransaction }
}

export const totalOf = (plan: BacklogPlan): { readonly inserts: number; readonly updates: number; readonly deletes: number } => ({
  inserts: plan.insertsMulti + plan.insertsSingle,
  updates: plan.updatesMulti + plan.updatesSingle,
  deletes: plan.deletesSingle + plan.deletesMulti
})

// 10-209 characters (or exactly `chars`), deterministic per row, cheap to compute
const payloadOf = (chars: number | undefined) => (id: string, salt: number): string =>
  `rpad(md5((${id} + ${salt})::text), ${chars ?? `10 + ((${id}::bigint * 7919 + ${salt}) % 200)::int`}, md5(${id}::text))`

const statusOf = (id: string): string => `(ARRAY['new','paid','shipped','closed'])[1 + (${id} % 4)::int]`

/** A DO block that runs `body` for each id in [first, last], committing every `every` ids. */
const loop = (first: number, last: number, step: number, body: string): string => `
  DO $$
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', false);
    FOR i IN ${first}..${last} BY ${step} LOOP
      ${body}
      COMMIT;
    END LOOP;
  END $$`

export interface WriteOptions {
  /** Ids start after this, so several backlogs can follow one another in one table. */
  readonly idOffset?: number
  /** The table (created by `createSchema`); `table` by default. */
  readonly table?: string
  /** Every payload exactly this many characters; 10-209 by default. */
  readonly payloadChars?: number
}

/** Writes the backlog; returns the number of changes written. */
export const writeBacklog = async (pg: PgCluster, plan: BacklogPlan, options: WriteOptions = {}): Promise<number> => {
  const table = options.table ?? defaultTable
  const payload = payloadOf(options.payloadChars)
  const idOffset = options.idOffset ?? 0
  const n = plan.rowsPerTransaction
  const o = idOffset
  const inserted = plan.insertsMulti + plan.insertsSingle
  const statements: Array<string> = []
  const multi = (count: number, body: (lo: string, hi: string) => string, start: number): void => {
    if (count <= 0) return
    const full = Math.floor(count / n)
    if (full > 0) statements.push(loop(start, start + (full - 1) * n, n, body("i", `i + ${n - 1}`)))
    const rest = count - full * n
    if (rest > 0) statements.push(loop(start + full * n, start + full * n, 1, body("i", `i + ${rest - 1}`)))
  }
  // multi-row inserts: ids o+1 .. o+insertsMulti
  multi(plan.insertsMulti, (lo, hi) =>
    `INSERT INTO ${table} (id, account, status, payload)
       SELECT g, (g % 1000)::int, ${statusOf("g")}, ${payload("g", 0)} FROM generate_series(${lo}, ${hi}) AS g;`, o + 1)
  // single-row inserts
  if (plan.insertsSingle > 0) {
    statements.push(loop(o + plan.insertsMulti + 1, o + inserted, 1,
      `INSERT INTO ${table} (id, account, status, payload) VALUES (i, (i % 1000)::int, ${statusOf("i")}, ${payload("i", 0)});`))
  }
  // multi-row updates: ids o+1 ..
  multi(plan.updatesMulti, (lo, hi) =>
    `UPDATE ${table} SET status = 'updated', payload = ${payload("id", 1)}, updated_at = now() WHERE id BETWEEN ${lo} AND ${hi};`, o + 1)
  // single-row updates: ids o+1 ..
  if (plan.updatesSingle > 0) {
    statements.push(loop(o + 1, o + plan.updatesSingle, 1,
      `UPDATE ${table} SET status = 'touched', payload = ${payload("id", 2)}, updated_at = now() WHERE id = i;`))
  }
  // single-row deletes from the top, then multi-row deletes below them
  if (plan.deletesSingle > 0) {
    statements.push(loop(o + inserted - plan.deletesSingle + 1, o + inserted, 1, `DELETE FROM ${table} WHERE id = i;`))
  }
  multi(plan.deletesMulti, (lo, hi) => `DELETE FROM ${table} WHERE id BETWEEN ${lo} AND ${hi};`,
    o + inserted - plan.deletesSingle - plan.deletesMulti + 1)
  for (const statement of statements) await pg.psql(statement)
  const totals = totalOf(plan)
  return totals.inserts + totals.updates + totals.deletes
}

/** The server's current WAL insert position, as text (e.g. "0/1A2B3C"). */
export const currentLsn = (pg: PgCluster): Promise<string> => pg.psql("SELECT pg_current_wal_insert_lsn()")

export const createSlot = (pg: PgCluster, slot: string, plugin: "wal2json" | "pgoutput" = "wal2json"): Promise<string> =>
  pg.psql(`SELECT lsn FROM pg_create_logical_replication_slot('${slot}', '${plugin}')`)

/**
 * Drops a slot once no walsender holds it: a client that just stopped may still have its walsender
 * for a moment (dropping an active slot fails), so this waits up to 10 s, then ends that walsender.
 */
export const dropSlot = async (pg: PgCluster, slot: string): Promise<string> => {
  const active = `SELECT active_pid FROM pg_replication_slots WHERE slot_name = '${slot}' AND active`
  const untilInactive = async () => {
    for (let waited = 0; waited < 10_000 && (await pg.psql(active)).trim() !== ""; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await untilInactive()
  await pg.psql(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '${slot}' AND active`)
  await untilInactive()
  return pg.psql(`SELECT pg_drop_replication_slot('${slot}') FROM pg_replication_slots WHERE slot_name = '${slot}'`)
}

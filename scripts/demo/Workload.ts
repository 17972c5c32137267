/**
 * The demo's workload: a steady stream of inserts, updates and deletes over a few tables, in
 * transactions of one to five changes. Every row carries a unique `change_id` and the client's
 * write time (`written_at_ms`), so each change can be found again in the stream and timed.
 */
import type { Action, Ledger } from "./Ledger.ts"
import { deleteKey, insertOrUpdateKey } from "./Ledger.ts"
import type { Sql, Statement } from "./Sql.ts"

export const schema = "cdc_demo"
export const tables = ["customers", "orders", "payments"] as const

/** A table that holds rows before the service's slot exists: the service backfills it (INITIAL_BACKFILL). */
export const prefilledTable = "products"
export const prefilledRows = 5_000
type Table = (typeof tables)[number]

export const setupStatements: ReadonlyArray<string> = [
  `DROP SCHEMA IF EXISTS ${schema} CASCADE`,
  `CREATE SCHEMA ${schema}`,
  `CREATE TABLE ${schema}.customers (
     id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, tier text NOT NULL,
     change_id bigint NOT NULL, written_at_ms bigint NOT NULL)`,
  `CREATE TABLE ${schema}.orders (
     id bigint PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL,
     change_id bigint NOT NULL, written_at_ms bigint NOT NULL)`,
  `CREATE TABLE ${schema}.payments (
     id bigint PRIMARY KEY, order_id bigint NOT NULL, amount numeric(12,2) NOT NULL, method text NOT NULL,
     change_id bigint NOT NULL, written_at_ms bigint NOT NULL)`,
  `CREATE TABLE ${schema}.${prefilledTable} (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2) NOT NULL)`,
  `INSERT INTO ${schema}.${prefilledTable} SELECT g, 'product ' || g, (g % 100) + 0.99 FROM generate_series(1, ${prefilledRows}) g`
]

interface PlannedChange {
  readonly statement: Statement
  readonly key: string
  readonly action: Action
  readonly writtenAtMs: number
  readonly table: Table
  readonly id: number
}

const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(Math.random() * items.length)]!

export interface Workload {
  readonly stop: () => Promise<void>
  /** Transactions that failed (their changes are not counted as written). */
  readonly failures: () => number
}

/** Writes about `ratePerSecond` changes per second until stopped. */
export const startWorkload = (sql: Sql, ledger: Ledger, ratePerSecond: number, onError: (error: unknown) => void): Workload => {
  const live: Record<Table, Array<number>> = { customers: [], orders: [], payments: [] }
  const nextId: Record<Table, number> = { customers: 1, orders: 1, payments: 1 }
  let changeId = 0
  let failures = 0

  const plan = (): PlannedChange => {
    const table = pick(tables)
    const rows = live[table]
    const r = Math.random()
    const action: Action = rows.length < 20 || r < 0.5 ? "I" : r < 0.85 ? "U" : "D"
    const now = Date.now()
    changeId++
    if (action === "D") {
      const index = Math.floor(Math.random() * rows.length)
      const id = rows[index]!
      rows[index] = rows[rows.length - 1]!
      rows.pop()
      return { statement: { text: `DELETE FROM ${schema}.${table} WHERE id = $1`, params: [id] }, key: deleteKey(table, id), action, writtenAtMs: now, table, id }
    }
    const key = insertOrUpdateKey(changeId)
    if (action === "U") {
      const id = pick(rows)
      const set = table === "customers" ? "tier = $3" : table === "orders" ? "status = $3" : "amount = amount + $3::numeric"
      const value = table === "customers" ? pick(["free", "pro", "enterprise"]) : table === "orders" ? pick(["paid", "shipped", "delivered"]) : (Math.random() * 10).toFixed(2)
      return {
        statement: { text: `UPDATE ${schema}.${table} SET ${set}, change_id = $1, written_at_ms = $2 WHERE id = $4`, params: [changeId, now, value, id] },
        key, action, writtenAtMs: now, table, id
      }
    }
    const id = nextId[table]++
    rows.push(id)
    const text = table === "customers"
      ? `INSERT INTO ${schema}.customers (id, name, email, tier, change_id, written_at_ms) VALUES ($3, 'customer ' || $3::text, 'c' || $3::text || '@example.com', 'free', $1, $2)`
      : table === "orders"
        ? `INSERT INTO ${schema}.orders (id, customer_id, amount, status, change_id, written_at_ms) VALUES ($3, $4, $5::numeric, 'new', $1, $2)`
        : `INSERT INTO ${schema}.payments (id, order_id, amount, method, change_id, written_at_ms) VALUES ($3, $4, $5::numeric, 'card', $1, $2)`
    const params = table === "customers" ? [changeId, now, id] : [changeId, now, id, 1 + Math.floor(Math.random() * 1000), (Math.random() * 500).toFixed(2)]
    return { statement: { text, params }, key, action, writtenAtMs: now, table, id }
  }

  const writeTransaction = async (changes: ReadonlyArray<PlannedChange>): Promise<void> => {
    try {
      await sql.transaction(changes.map((c) => c.statement))
      for (const c of changes) ledger.wrote(c.key, c.action, c.writtenAtMs)
    } catch (error) {
      failures++
      // the rows did not change: put deleted ids back, forget inserted ones
      for (const c of changes) {
        if (c.action === "D") live[c.table].push(c.id)
        if (c.action === "I") live[c.table] = live[c.table].filter((id) => id !== c.id)
      }
      onError(error)
    }
  }

  const tickMs = 100
  let owed = 0
  let inFlight: Promise<void> = Promise.resolve()
  let stopped = false
  const tick = (): void => {
    if (stopped) return
    owed += (ratePerSecond * tickMs) / 1000
    const batch: Array<Array<PlannedChange>> = []
    while (owed >= 1) {
      const size = Math.min(Math.floor(owed), 1 + Math.floor(Math.random() * 5))
      batch.push(Array.from({ length: size }, plan))
      owed -= size
    }
    // one transaction after the other, so a row is never touched by two at once
    inFlight = inFlight.then(async () => {
      for (const changes of batch) await writeTransaction(changes)
    })
  }
  const timer = setInterval(tick, tickMs)
  return {
    failures: () => failures,
    stop: async () => {
      stopped = true
      clearInterval(timer)
      await inFlight
    }
  }
}

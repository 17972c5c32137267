/**
 * Shared helpers of the replication tests: configuration records pointing at a harness cluster,
 * and polling with a deadline.
 */
import { Effect } from "effect"
import type { ReplicationConfig } from "../../src/config/ServiceConfig.ts"
import type { PgCluster } from "../../support/PostgresHarness.ts"

export { pgConfigOf as pgConfig } from "../../support/PostgresHarness.ts"

export const replicationConfig = (overrides: Partial<ReplicationConfig> = {}): ReplicationConfig => ({
  slot: "cdc_test",
  createSlot: true,
  plugin: "wal2json",
  publication: "cdc_publication",
  wal2jsonAddTables: [],
  wal2jsonFilterTables: [],
  transactionRecords: false,
  statusIntervalMs: 500,
  reconnectBaseMs: 100,
  reconnectMaxMs: 1000,
  ...overrides
})

/** Runs psql against the cluster inside an Effect. */
export const psql = (cluster: PgCluster, sql: string, options?: Parameters<PgCluster["psql"]>[1]) =>
  Effect.promise(() => cluster.psql(sql, options))

/**
 * Re-evaluates `check` every `intervalMs` until it returns a value, failing with `what` after
 * `timeoutMs`. The way tests wait for a condition instead of sleeping.
 */
export const eventually = <A, E, R>(
  what: string,
  check: Effect.Effect<A | undefined, E, R>,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number } = {}
): Effect.Effect<A, E | Error, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + (options.timeoutMs ?? 15_000)
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(options.intervalMs ?? 100)
    }
  })

/**
 * The start-up rules of ServerSettings: which server encodings each plugin streams, and the status
 * interval kept below half of wal_sender_timeout (the real-server checks are in hostile.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as ServerSettings from "../../src/replication/ServerSettings.ts"

const accepted = (encoding: string, plugin: ServerSettings.Plugin) =>
  Exit.isSuccess(Effect.runSyncExit(ServerSettings.checkEncoding(encoding, plugin)))

describe("ServerSettings", () => {
  it("accepts UTF8 for both plugins, any other encoding but SQL_ASCII for pgoutput, SQL_ASCII only for wal2json", () => {
    expect(accepted("UTF8", "wal2json")).toBe(true)
    expect(accepted("UTF8", "pgoutput")).toBe(true)
    expect(accepted("LATIN1", "pgoutput")).toBe(true)
    expect(accepted("LATIN1", "wal2json")).toBe(false)
    expect(accepted("EUC_JP", "wal2json")).toBe(false)
    expect(accepted("SQL_ASCII", "wal2json")).toBe(true)
    expect(accepted("SQL_ASCII", "pgoutput")).toBe(false)
  })

  it("keeps the status interval below half of wal_sender_timeout, and leaves it alone when the timeout is disabled", () => {
    expect(ServerSettings.statusIntervalMs(1000, 60_000)).toBe(1000)
    expect(ServerSettings.statusIntervalMs(1000, 2001)).toBe(1000)
    expect(ServerSettings.statusIntervalMs(1000, 2000)).toBe(666)
    expect(ServerSettings.statusIntervalMs(10_000, 900)).toBe(300)
    expect(ServerSettings.statusIntervalMs(10_000, 0)).toBe(10_000)
    for (const timeout of [1, 2, 3, 100, 1999, 2000, 60_000]) {
      for (const configured of [100, 1000, 30_000]) {
        expect(ServerSettings.statusIntervalMs(configured, timeout)).toBeLessThan(Math.max(timeout / 2, 1.000001))
      }
    }
  })
})

import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PgError } from "../../src/Errors.ts"
import * as Publication from "../../src/replication/Publication.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"

describe("Publication", () => {
  let pg: PgCluster
  const appPassword = "app-" + Math.random().toString(36).slice(2)

  /** A query function over psql, as a role; rows split on psql's `|` (the test's values have none). */
  const queryAs = (user?: { readonly user: string; readonly password: string }): Publication.Query => (sql) =>
    Effect.tryPromise({
      try: () => pg.psql(sql, user ?? {}),
      catch: (error) => new PgError({ reason: "Statement", code: "XX000", message: String(error) })
    }).pipe(Effect.map((out) => (out === "" ? [] : out.split("\n").map((line) => line.split("|")))))

  beforeAll(async () => {
    pg = await startPostgres()
    await pg.psql(`CREATE ROLE app LOGIN REPLICATION PASSWORD '${appPassword}'; GRANT CREATE ON DATABASE postgres TO app`)
    await pg.psql(`CREATE TABLE orders (region text, id int, note text, PRIMARY KEY (region, id)); CREATE TABLE plain (x int)`)
  })
  afterAll(async () => {
    await pg?.stop()
  })

  it("creates a missing publication FOR ALL TABLES as a superuser, and leaves an existing one alone", async () => {
    expect(await Effect.runPromise(Publication.ensure(queryAs(), "cdc"))).toBe(true)
    expect(await pg.psql(`SELECT puballtables FROM pg_publication WHERE pubname = 'cdc'`)).toBe("t")
    expect(await Effect.runPromise(Publication.ensure(queryAs(), "cdc"))).toBe(false)
    expect(await Effect.runPromise(Publication.ensure(queryAs({ user: "app", password: appPassword }), "cdc"))).toBe(false)
  })

  it("fails with the statement to run when the role may not create it", async () => {
    const failure = await Effect.runPromise(Effect.flip(Publication.ensure(queryAs({ user: "app", password: appPassword }), `app's "pub"`)))
    expect(failure).toMatchObject({ _tag: "SlotError", reason: "PluginUnavailable", retriable: false })
    const message = failure.message
    expect(message).toContain(`CREATE PUBLICATION "app's ""pub""" FOR ALL TABLES;`)
    expect(message).toContain(`role "app"`)
    expect(message).not.toContain(appPassword)
    expect(await pg.psql(`SELECT count(*) FROM pg_publication WHERE pubname = 'app''s "pub"'`)).toBe("0")
    // the statement it gives works for a superuser
    await pg.psql(Publication.createStatement(`app's "pub"`))
    expect(await Effect.runPromise(Publication.ensure(queryAs({ user: "app", password: appPassword }), `app's "pub"`))).toBe(false)
  })

  it("tells the tables a publication streams", async () => {
    await pg.psql(`CREATE PUBLICATION only_orders FOR TABLE orders`)
    const streams = await Effect.runPromise(Publication.tables(queryAs(), "only_orders"))
    expect([streams("public", "orders"), streams("public", "plain")]).toEqual([true, false])
  })
})

import { Effect, Redacted, References } from "effect"
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { promisify } from "node:util"
import { describe, expect, it, vi } from "vitest"
import * as ServiceConfig from "../../src/config/ServiceConfig.ts"
import * as Logging from "../../src/observability/Logging.ts"

const run = (format: "json" | "plain", effect: Effect.Effect<void>, secrets: ReadonlyArray<Redacted.Redacted<string>> = []) => {
  const lines: Array<string> = []
  Effect.runSync(effect.pipe(Effect.provide(Logging.layer({ format, level: "Debug", secrets, write: (line) => lines.push(line) }))))
  return lines
}

const PASSWORD = "hunter2-" + Math.random().toString(36).slice(2)

describe("JSON logs", () => {
  it("writes one parseable object per line: timestamp, level, message, fields flattened", () => {
    const lines = run(
      "json",
      Effect.gen(function*() {
        yield* Effect.logInfo("batch_published", { records: 500, bytes: 123_456 }).pipe(
          Effect.annotateLogs({ slot: "etl_slot", lsn: 0x16b3748n }),
          Effect.withLogSpan("put_records")
        )
        yield* Effect.logError("kinesis_failed").pipe(Effect.annotateLogs({ error: { _tag: "KinesisError", code: "Throttled" } }))
      })
    )
    expect(lines).toHaveLength(2)
    const first = JSON.parse(lines[0]!)
    expect(first).toMatchObject({ level: "INFO", message: "batch_published", slot: "etl_slot", lsn: "23803720", records: 500, bytes: 123456 })
    expect(new Date(first.timestamp).toISOString()).toBe(first.timestamp)
    expect(typeof first.spans.put_records).toBe("number")
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: "ERROR", message: "kinesis_failed", error: { _tag: "KinesisError", code: "Throttled" } })
  })

  it("puts a failure's cause and an Error's tag and message in the record", () => {
    class SlotMissing extends Error {
      readonly _tag = "SlotMissing"
    }
    const lines = run(
      "json",
      Effect.gen(function*() {
        yield* Effect.logError("decode_failed", new SlotMissing("replication slot is gone"))
        yield* Effect.fail(new SlotMissing(`slot gone, url postgres://u:${PASSWORD}@h/db`)).pipe(
          Effect.tapCause((cause) => Effect.logError("fatal_error", cause)),
          Effect.ignore
        )
      })
    )
    const [first, second] = lines.map((l) => JSON.parse(l))
    expect(first.details[0]).toEqual({ tag: "SlotMissing", message: "replication slot is gone" })
    expect(second.message).toBe("fatal_error")
    expect(second.cause).toContain("slot gone, url postgres://u:<redacted>@h/db")
    expect(lines[1]).not.toContain(PASSWORD)
  })

  it("never prints a password: secret-looking keys, Redacted values, URL credentials and the configured secrets are masked", () => {
    const secret = Redacted.make(PASSWORD)
    const lines = run(
      "json",
      Effect.gen(function*() {
        yield* Effect.logInfo("connecting").pipe(Effect.annotateLogs({ password: PASSWORD, PGPASSWORD: PASSWORD, host: "db" }))
        yield* Effect.logInfo("config", { pg: { user: "cdc", password: secret, apiToken: PASSWORD } })
        yield* Effect.logWarning(`connect to postgres://cdc:${PASSWORD}@db:5432/app failed`)
        yield* Effect.logWarning("auth_failed").pipe(Effect.annotateLogs({ reason: `server said: bad password "${PASSWORD}"` }))
      }),
      [secret]
    )
    expect(lines).toHaveLength(4)
    for (const line of lines) {
      expect(line).not.toContain(PASSWORD)
      JSON.parse(line)
    }
    const [a, b, c] = lines.map((l) => JSON.parse(l))
    expect(a).toMatchObject({ password: "<redacted>", PGPASSWORD: "<redacted>", host: "db" })
    expect(b.pg).toEqual({ user: "cdc", password: "<redacted>", apiToken: "<redacted>" })
    expect(c.message).toBe("connect to postgres://cdc:<redacted>@db:5432/app failed")
  })

  it("respects the minimum level", () => {
    const lines: Array<string> = []
    Effect.runSync(
      Effect.gen(function*() {
        yield* Effect.logDebug("hidden")
        yield* Effect.logInfo("hidden too")
        yield* Effect.logWarning("shown")
      }).pipe(Effect.provide(Logging.layer({ format: "json", level: "Warn", write: (line) => lines.push(line) })))
    )
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(["shown"])
  })
})

describe("plain logs", () => {
  it("are lines for people, not JSON, with the same fields and masking", () => {
    const lines = run(
      "plain",
      Effect.logInfo("slot_ready").pipe(Effect.annotateLogs({ slot: "etl_slot", password: PASSWORD, note: "two words" })),
      [Redacted.make(PASSWORD)]
    )
    expect(lines).toHaveLength(1)
    expect(() => JSON.parse(lines[0]!)).toThrow()
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  slot_ready slot=etl_slot password=<redacted> note="two words"$/)
  })
})

describe("the default sink", () => {
  const fixture = Path.join(import.meta.dirname, "fixtures", "log-to-stdout.ts")
  const node = Path.join(process.cwd(), "node_modules", ".bin", "node")
  const runFixture = (format: string, level: string) =>
    promisify(execFile)(node, [fixture, format, level], { env: { ...process.env, FIXTURE_SECRET: PASSWORD } })

  it("is stdout, one JSON object per line, and the secret never appears", async () => {
    const { stdout, stderr } = await runFixture("json", "Info")
    expect(stderr).toBe("")
    const records = stdout.trimEnd().split("\n").map((l) => JSON.parse(l))
    expect(records.map((r) => [r.level, r.message])).toEqual([["INFO", "slot_ready"], ["WARN", "connection_failed"]])
    expect(records[0]).toMatchObject({ slot: "etl_slot", lsn: "23803720" })
    expect(stdout).not.toContain(PASSWORD)
    expect(records[1].reason).toBe("password authentication failed, password=<redacted>")
  })

  it("prints plain lines with LOG_FORMAT=plain, filtered by level", async () => {
    const { stdout } = await runFixture("plain", "Warn")
    const lines = stdout.trimEnd().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain("WARN  connection_failed error=PgConnectionError")
    expect(stdout).not.toContain(PASSWORD)
  })
})

describe("layerConfig", () => {
  it("takes LOG_FORMAT and LOG_LEVEL from the configuration and masks PGPASSWORD", () => {
    const config = {
      pg: { password: Redacted.make(PASSWORD) },
      observability: { logFormat: "json", logLevel: "Warn", httpPort: 0 }
    } as unknown as ServiceConfig.ServiceConfig["Service"]
    const written: Array<string> = []
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk))
      return true
    })
    try {
      const level = Effect.runSync(
        Effect.gen(function*() {
          yield* Effect.logInfo("below the level")
          yield* Effect.logWarning(`connecting with ${PASSWORD}`)
          return yield* References.MinimumLogLevel
        }).pipe(Effect.provide(Logging.layerConfig), Effect.provide(ServiceConfig.layer(config)))
      )
      expect(level).toBe("Warn")
    } finally {
      spy.mockRestore()
    }
    expect(written).toHaveLength(1)
    expect(JSON.parse(written[0]!)).toMatchObject({ level: "WARN", message: "connecting with <redacted>" })
  })
})

import { it } from "@effect/vitest"
import { Context, Effect, Layer, Metric } from "effect"
import { describe, expect } from "vitest"
import * as Health from "../../src/observability/Health.ts"
import * as ProbeServer from "../../src/observability/ProbeServer.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import { exportedMetrics, readmeDropReasons, readmeMetrics } from "./readmeMetrics.ts"

/** A probe server on a free port with its own Health (and, when given, its own metric registry). */
const start = (staleAfter?: number, registry?: Metric.MetricRegistry) =>
  Effect.gen(function*() {
    const server = ProbeServer.layer({ port: 0, host: "127.0.0.1" }).pipe(
      Layer.provideMerge(Health.layer(staleAfter === undefined ? {} : { staleAfter }))
    )
    const context = yield* Layer.build(
      registry === undefined ? server : server.pipe(Layer.provide(Layer.succeed(Metric.MetricRegistry, registry)))
    )
    const { port } = Context.get(context, ProbeServer.ProbeServer)
    const get = (path: string) =>
      Effect.promise(async () => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`)
        return { status: response.status, type: response.headers.get("content-type") ?? "", body: await response.text() }
      })
    return { port, health: Context.get(context, Health.Health), get }
  })

describe("probe server", () => {
  it.live("binds port 0 to a real port and answers /healthz with 200 and the state", () =>
    Effect.gen(function*() {
      const server = yield* start()
      expect(server.port).toBeGreaterThan(0)
      const res = yield* server.get("/healthz")
      expect(res.status).toBe(200)
      expect(res.type).toContain("application/json")
      expect(JSON.parse(res.body)).toMatchObject({ status: "ok", state: "starting" })
    }))

  it.live("/readyz is 503 while starting and connecting, 200 when streaming or standing by, 503 after a fatal error", () =>
    Effect.gen(function*() {
      const server = yield* start()
      const ready = () => Effect.map(server.get("/readyz"), (r) => ({ status: r.status, state: JSON.parse(r.body).state as string }))
      expect(yield* ready()).toEqual({ status: 503, state: "starting" })
      yield* server.health.setState("connecting")
      expect(yield* ready()).toEqual({ status: 503, state: "connecting" })
      yield* server.health.setState("streaming")
      expect(yield* ready()).toEqual({ status: 200, state: "streaming" })
      yield* server.health.setState("standby")
      expect(yield* ready()).toEqual({ status: 200, state: "standby" })
      yield* server.health.recordError({ tag: "SlotMissing", message: "slot gone" }, { fatal: true })
      const fatal = yield* server.get("/readyz")
      expect(fatal.status).toBe(503)
      expect(JSON.parse(fatal.body)).toMatchObject({ state: "fatal", lastError: { tag: "SlotMissing", message: "slot gone" } })
      // fatal is terminal, and liveness fails with it
      yield* server.health.setState("streaming")
      expect((yield* ready()).status).toBe(503)
      expect((yield* server.get("/healthz")).status).toBe(503)
    }))

  it.live("/healthz fails when a registered loop stops ticking, and recovers when it ticks again", () =>
    Effect.gen(function*() {
      const server = yield* start(2)
      const beat = yield* server.health.heartbeat("reader", 50)
      yield* beat.tick
      expect((yield* server.get("/healthz")).status).toBe(200)
      // wait until the heartbeat is older than 2 × 50 ms
      yield* Effect.promise(async () => {
        const deadline = Date.now() + 5_000
        while (Date.now() < deadline && (await fetch(`http://127.0.0.1:${server.port}/healthz`)).status === 200) {
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      })
      const stale = yield* server.get("/healthz")
      expect(stale.status).toBe(503)
      expect(JSON.parse(stale.body).heartbeats).toEqual([expect.objectContaining({ name: "reader", stale: true })])
      yield* beat.tick
      expect((yield* server.get("/healthz")).status).toBe(200)
    }))

  it.live("/metrics serves Prometheus text with the cdc_ metrics after they are updated", () =>
    Effect.gen(function*() {
      const server = yield* start()
      yield* Metric.update(Metrics.leader, 1)
      yield* Metric.update(Metrics.changesPublished, 42)
      yield* Metric.update(Metrics.recordsPerBatch, 7)
      const res = yield* server.get("/metrics")
      expect(res.status).toBe(200)
      expect(res.type).toContain("text/plain")
      expect(res.body).toMatch(/^cdc_leader(\{[^}]*\})? 1$/m)
      expect(res.body).toMatch(/^cdc_changes_published_total(\{[^}]*\})? 42$/m)
      expect(res.body).toContain("# TYPE cdc_batch_records histogram")
    }))

  it.live("the first scrape of a just-started server lists every metric of README's Metrics table, counters at 0, and nothing else", () =>
    Effect.gen(function*() {
      const server = yield* start(undefined, new Map())
      const body = (yield* server.get("/metrics")).body
      const exported = exportedMetrics(body)
      expect(exported).toEqual(readmeMetrics())
      // every sample but the process's memory is 0: nothing has happened yet
      const samples = body.split("\n").filter((line) => line.startsWith("cdc_") && !line.startsWith("cdc_memory_bytes"))
      expect(samples.length).toBeGreaterThan(exported.size)
      expect(samples.filter((line) => !/ 0$/.test(line))).toEqual([])
      // the memory gauges are sampled from the start
      const resident = /^cdc_memory_bytes\{kind="rss"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(body)
      expect(Number(resident?.[1])).toBeGreaterThan(0)
      // the labelled counters, once per known label value
      for (const action of ["I", "U", "D", "T", "M"]) {
        expect(body).toContain(`cdc_changes_received_total{action="${action}"} 0`)
      }
      // every drop reason README names, and no other
      const reasons = [...body.matchAll(/^cdc_changes_dropped_total\{reason="([^"]+)"\}/gm)].map((m) => m[1])
      expect(reasons).toContain("oversized")
      expect(reasons.sort()).toEqual(readmeDropReasons().sort())
      expect(body).toContain(`cdc_put_records_retries_total{code="ProvisionedThroughputExceededException"} 0`)
    }))

  it.live("a labelled counter counts in the series registered at start", () =>
    Effect.gen(function*() {
      const registry: Metric.MetricRegistry = new Map()
      const server = yield* start(undefined, registry)
      yield* Metric.update(Metric.withAttributes(Metrics.changesReceived, { action: "U" }), 3).pipe(
        Effect.provideService(Metric.MetricRegistry, registry)
      )
      const body = (yield* server.get("/metrics")).body
      expect(body.match(/^cdc_changes_received_total\{action="U"\} .*$/gm)).toEqual([`cdc_changes_received_total{action="U"} 3`])
    }))

  it.live("a counter of its own per action (changesReceivedFor) counts in the same series as the labelled view", () =>
    Effect.gen(function*() {
      const registry: Metric.MetricRegistry = new Map()
      const server = yield* start(undefined, registry)
      const update = (metric: Metric.Metric<number, unknown>, value: number) =>
        Metric.update(metric, value).pipe(Effect.provideService(Metric.MetricRegistry, registry))
      yield* update(Metric.withAttributes(Metrics.changesReceived, { action: "U" }), 3)
      yield* update(Metrics.changesReceivedFor("U"), 4)
      yield* update(Metrics.changesReceivedFor("I"), 2)
      yield* update(Metrics.changesReceivedFor("U"), 1)
      const body = (yield* server.get("/metrics")).body
      expect(body.match(/^cdc_changes_received_total\{action="U"\} .*$/gm)).toEqual([`cdc_changes_received_total{action="U"} 8`])
      expect(body.match(/^cdc_changes_received_total\{action="I"\} .*$/gm)).toEqual([`cdc_changes_received_total{action="I"} 2`])
      expect(body.match(/^# HELP cdc_changes_received_total .*$/gm)).toEqual([
        "# HELP cdc_changes_received_total Changes decoded from the replication slot"
      ])
    }))

  it.live("an unknown path is 404, as is any method but GET; a query string is ignored", () =>
    Effect.gen(function*() {
      const server = yield* start()
      expect((yield* server.get("/nope")).status).toBe(404)
      expect((yield* server.get("/healthz?verbose=1")).status).toBe(200)
      const post = yield* Effect.promise(() => fetch(`http://127.0.0.1:${server.port}/healthz`, { method: "POST", body: "{}" }))
      expect(post.status).toBe(404)
    }))

  it.live("once its scope closes, the server has stopped listening and the port is free, even with a keep-alive connection open", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.gen(function*() {
        const server = yield* start()
        // fetch keeps its connection alive after the answer
        expect((yield* server.get("/healthz")).status).toBe(200)
        return server.port
      }))
      const refused = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/healthz`).then(() => "answered", () => "refused"))
      expect(refused).toBe("refused")
      const again = yield* Layer.build(ProbeServer.layer({ port, host: "127.0.0.1" }).pipe(Layer.provide(Health.layer()))).pipe(Effect.scoped)
      expect(Context.get(again, ProbeServer.ProbeServer).port).toBe(port)
    }))

  it.live("a port in use fails the layer with a ServeError naming the cause", () =>
    Effect.gen(function*() {
      const server = yield* start()
      const error = yield* Layer.build(ProbeServer.layer({ port: server.port, host: "127.0.0.1" }).pipe(Layer.provide(Health.layer()))).pipe(
        Effect.scoped,
        Effect.flip
      )
      expect(error._tag).toBe("ServeError")
      expect(String((error.cause as Error).message)).toContain("EADDRINUSE")
    }))
})

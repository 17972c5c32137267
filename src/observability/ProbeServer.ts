/**
 * The probe and metrics endpoint on HTTP_PORT: GET /healthz (liveness: no wedged loop, no fatal
 * error), GET /readyz (readiness: streaming, or a healthy standby), GET /metrics (Prometheus text).
 * Both probes answer JSON with the state, 200 or 503. Port 0 picks a free port; the bound port is
 * logged and available as {@link ProbeServer}. Every metric is registered when the server starts, so
 * the first scrape lists them all (counters at 0), on a standby too; the memory gauges are sampled
 * every 5 s, and with them the idle memory release looks whether to run (MemoryRelease.ts).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type { ServeError } from "effect/http/HttpServerError"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import { ServiceConfig } from "../config/ServiceConfig.ts"
import { Health, type HealthSnapshot } from "./Health.ts"
import * as MemoryRelease from "./MemoryRelease.ts"
import * as Metrics from "./Metrics.ts"

// node:http through getBuiltinModule, not `import`: an ES import of node:http reads every export,
// and its WebSocket getters load Node's fetch implementation (undici), which nothing here uses
const { createServer } = process.getBuiltinModule("node:http")

export interface ProbeServerOptions {
  readonly port: number
  /** Interface to listen on; all interfaces when omitted. */
  readonly host?: string
}

/** The running probe server: where it listens. */
export class ProbeServer extends Context.Service<ProbeServer, { readonly port: number }>()(
  "cdc-logical-replication/ProbeServer"
) {}

const probeBody = (snapshot: HealthSnapshot, ok: boolean) => ({
  status: ok ? "ok" : "unavailable",
  state: snapshot.state,
  since: new Date(snapshot.sinceMs).toISOString(),
  lastError: snapshot.lastError === undefined
    ? null
    : { tag: snapshot.lastError.tag, message: snapshot.lastError.message, at: new Date(snapshot.lastError.atMs).toISOString() },
  heartbeats: snapshot.heartbeats.map((h) => ({ name: h.name, intervalMs: h.intervalMs, ageMs: h.ageMs, stale: h.stale }))
})

const probe = (health: Health["Service"], pick: (s: HealthSnapshot) => boolean) =>
  Effect.map(health.snapshot, (snapshot) => {
    const ok = pick(snapshot)
    return HttpServerResponse.jsonUnsafe(probeBody(snapshot, ok), {
      status: ok ? 200 : 503,
      headers: { "cache-control": "no-store" }
    })
  })

const Probes = HttpRouter.use(Effect.fn(function*(router) {
  const health = yield* Health
  yield* router.add("GET", "/healthz", probe(health, (s) => s.live))
  yield* router.add("GET", "/readyz", probe(health, (s) => s.ready))
}))

/** The probe server on an explicit port. */
export const layer = (options: ProbeServerOptions): Layer.Layer<ProbeServer, ServeError, Health> => {
  const bound = Layer.effect(
    ProbeServer,
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "UnixPathAddress" ? options.port : server.address.port
      yield* Effect.logInfo("http_listening").pipe(Effect.annotateLogs({ port }))
      return ProbeServer.of({ port })
    })
  )
  const routes = HttpRouter.serve(Layer.mergeAll(Probes, PrometheusMetrics.layerHttp({ path: "/metrics" })), {
    disableLogger: true,
    disableListenLog: true
  })
  const listen = options.host === undefined ? { port: options.port } : { port: options.port, host: options.host }
  // memory gauges every 5 s: cheap (one process.memoryUsage()), fresh enough for a 15 s scrape; then
  // the idle memory release's look (a full collection once idle after heavy work)
  const memory = Layer.effectDiscard(Effect.gen(function*() {
    const release = yield* MemoryRelease.make
    yield* Effect.forkScoped(Effect.repeat(Effect.andThen(Metrics.sampleMemory, release), Schedule.spaced("5 seconds")))
  }))
  return Layer.mergeAll(routes, bound, Layer.effectDiscard(Metrics.registerAll), memory).pipe(
    Layer.provide(NodeHttpServer.layer(() => createServer(), listen))
  )
}

/** The probe server on HTTP_PORT from the {@link ServiceConfig}. */
export const layerConfig: Layer.Layer<ProbeServer, ServeError, Health | ServiceConfig> = Layer.unwrap(
  Effect.map(Effect.service(ServiceConfig), (config) => layer({ port: config.observability.httpPort }))
)

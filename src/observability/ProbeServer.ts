/**
 * The probe and metrics endpoint on HTTP_PORT: GET /healthz (liveness: no wedged loop, no fatal
 * error), GET /readyz (readiness: streaming, or a healthy standby), GET /metrics (Prometheus text).
 * Both probes answer JSON with the state, 200 or 503; any other request is 404. Port 0 picks a free
 * port; the bound port is logged and available as {@link ProbeServer}. Every metric is registered
 * when the server starts, so the first scrape lists them all (counters at 0), on a standby too; the
 * memory gauges are sampled every 5 s, and with them the idle memory release looks whether to run
 * (MemoryRelease.ts).
 *
 * Three fixed routes are answered by a plain node:http server: @effect/platform-node's server and
 * Effect's router load ~120 modules more (WebSockets, multipart, file system, child processes) that
 * stay resident for the process's life (~3 MiB RSS). For the same reason the metrics text comes from
 * `PrometheusText` and the listen error is this module's own {@link ServeError}: effect's
 * `PrometheusMetrics` and `HttpServerError` import its HTTP server modules.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type { IncomingMessage, ServerResponse } from "node:http"
import { ServiceConfig } from "../config/ServiceConfig.ts"
import { Health, type HealthSnapshot } from "./Health.ts"
import * as MemoryRelease from "./MemoryRelease.ts"
import * as Metrics from "./Metrics.ts"
import * as PrometheusText from "./PrometheusText.ts"

// node:http through getBuiltinModule, not `import`: an ES import of node:http reads every export,
// and its WebSocket getters load Node's fetch implementation (undici), which nothing here uses
const { createServer } = process.getBuiltinModule("node:http")

export interface ProbeServerOptions {
  readonly port: number
  /** Interface to listen on; all interfaces when omitted. */
  readonly host?: string
}

/** The server could not listen (port in use, no such interface): the reason is in `cause`. */
export class ServeError extends Data.TaggedError("ServeError")<{ readonly cause: unknown }> {}

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

const PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

const send = (response: ServerResponse, status: number, headers: Record<string, string>, body: string): void => {
  response.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) })
  response.end(body)
}

/** The path of a request, without its query. */
const pathOf = (request: IncomingMessage): string => {
  const url = request.url ?? "/"
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/** Listens on `options`; fails with a {@link ServeError} (port in use, no such interface). */
const listen = (server: ReturnType<typeof createServer>, options: ProbeServerOptions) =>
  Effect.callback<number, ServeError>((resume) => {
    const onError = (cause: Error) => resume(Effect.fail(new ServeError({ cause })))
    server.once("error", onError)
    server.listen(options.host === undefined ? { port: options.port } : { port: options.port, host: options.host }, () => {
      server.off("error", onError)
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : options.port))
    })
  })

/** Closes the server: idle and open connections are ended (a probe in flight at shutdown is cut). */
const close = (server: ReturnType<typeof createServer>) =>
  Effect.callback<void>((resume) => {
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

/** The probe server on an explicit port. */
export const layer = (options: ProbeServerOptions): Layer.Layer<ProbeServer, ServeError, Health> =>
  Layer.effect(
    ProbeServer,
    Effect.gen(function*() {
      const health = yield* Health
      yield* Metrics.registerAll
      // the metric registry and everything else the handlers run with
      const context = yield* Effect.context<never>()
      const run = Effect.runPromiseWith(context)

      const probe = (response: ServerResponse, pick: (s: HealthSnapshot) => boolean) =>
        run(health.snapshot).then((snapshot) => {
          const ok = pick(snapshot)
          send(response, ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }, JSON.stringify(probeBody(snapshot, ok)))
        })

      const handle = (request: IncomingMessage, response: ServerResponse): Promise<void> => {
        const path = request.method === "GET" ? pathOf(request) : undefined
        if (path === "/healthz") return probe(response, (s) => s.live)
        if (path === "/readyz") return probe(response, (s) => s.ready)
        if (path === "/metrics") {
          send(response, 200, { "content-type": PROMETHEUS_TYPE }, PrometheusText.format(context))
        } else {
          send(response, 404, {}, "")
        }
        return Promise.resolve()
      }

      const server = yield* Effect.acquireRelease(
        Effect.sync(() =>
          createServer((request, response) => {
            handle(request, response).catch((error: unknown) => {
              if (!response.headersSent) send(response, 500, { "content-type": "text/plain" }, String(error))
              else response.destroy()
            })
          })
        ),
        close
      )
      const port = yield* listen(server, options)
      yield* Effect.logInfo("http_listening").pipe(Effect.annotateLogs({ port }))
      // memory gauges every 5 s: cheap (one process.memoryUsage()), fresh enough for a 15 s scrape; then
      // the idle memory release's look (a full collection once idle after heavy work)
      const release = yield* MemoryRelease.make
      yield* Effect.forkScoped(Effect.repeat(Effect.andThen(Metrics.sampleMemory, release), Schedule.spaced("5 seconds")))
      return ProbeServer.of({ port })
    })
  )

/** The probe server on HTTP_PORT from the {@link ServiceConfig}. */
export const layerConfig: Layer.Layer<ProbeServer, ServeError, Health | ServiceConfig> = Layer.unwrap(
  Effect.map(Effect.service(ServiceConfig), (config) => layer({ port: config.observability.httpPort }))
)

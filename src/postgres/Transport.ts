/**
 * The transport under a PostgreSQL session: the TCP connection, the SSLRequest and the TLS upgrade
 * that {@link Tls.policy} asks for. The replication connection runs its protocol over the socket
 * this opens; sessions on @effect/sql-pg use {@link serverOffersTls} for `allow`/`prefer`.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as NodeTls from "node:tls"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { PgError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import * as Tls from "./Tls.ts"

/** A connected socket, encrypted or not, ready for the startup message. */
export interface Transport {
  readonly socket: Net.Socket
  readonly encrypted: boolean
}


/** Waits for a new socket to connect. */
const awaitConnect = (socket: Net.Socket, pg: PgConfig): Effect.Effect<void, PgError> =>
  Effect.callback<void, PgError>((resume) => {
    const onError = (cause: Error) =>
      resume(Effect.fail(new PgError({ reason: "Connection", message: `cannot connect to ${pg.host}:${pg.port}: ${cause.message}`, cause })))
    socket.once("error", onError)
    socket.once("connect", () => {
      socket.off("error", onError)
      socket.setNoDelay(true)
      socket.setKeepAlive(true, 30_000)
      resume(Effect.void)
    })
  })

/** Sends an SSLRequest and reads the one-byte answer ('S', 'N', or an ErrorResponse from an old server). */
const sslAnswer = (socket: Net.Socket): Effect.Effect<"S" | "N", PgError> =>
  Effect.callback((resume) => {
    const cleanup = () => {
      socket.off("data", onData)
      socket.off("error", onError)
      socket.off("close", onClose)
    }
    const onData = (chunk: Buffer) => {
      cleanup()
      socket.pause()
      if (chunk[0] === 0x45) {
        const messages = (() => {
          try {
            return PgProtocol.makeParser().push(chunk)
          } catch {
            return []
          }
        })()
        const error = messages.find((m): m is PgProtocol.ErrorResponse => m._tag === "ErrorResponse")
        return resume(Effect.fail(error ? ErrorPolicy.fromErrorResponse(error.fields) : new PgError({ reason: "Connection", message: "unreadable answer to SSLRequest" })))
      }
      // Bytes after the answer would arrive unencrypted before the handshake: refuse them (CVE-2021-23222).
      if (chunk.length !== 1) return resume(Effect.fail(new PgError({ reason: "Tls", message: "unexpected data after the server's SSL answer" })))
      const answer = PgProtocol.decodeSslResponse(chunk[0]!)
      resume(
        Result.isSuccess(answer)
          ? Effect.succeed(answer.success)
          : Effect.fail(new PgError({ reason: "Connection", message: `unexpected answer to SSLRequest: byte ${chunk[0]}` }))
      )
    }
    const onError = (cause: Error) => {
      cleanup()
      resume(Effect.fail(new PgError({ reason: "Connection", message: `connection failed during SSL negotiation: ${cause.message}`, cause })))
    }
    const onClose = () => {
      cleanup()
      resume(Effect.fail(new PgError({ reason: "Connection", message: "the server closed the connection during SSL negotiation" })))
    }
    socket.on("data", onData)
    socket.once("error", onError)
    socket.once("close", onClose)
    socket.resume()
    socket.write(PgProtocol.encodeSslRequest())
  })

/** Runs the TLS handshake over the negotiated socket. */
const upgrade = (pg: PgConfig, socket: Net.Socket, options: NodeTls.ConnectionOptions): Effect.Effect<NodeTls.TLSSocket, PgError> =>
  Effect.callback<NodeTls.TLSSocket, PgError>((resume) => {
    const secure = NodeTls.connect({ ...options, socket })
    const onError = (cause: Error) => {
      secure.destroy()
      const code = (cause as { readonly code?: unknown }).code
      resume(Effect.fail(
        new PgError({
          reason: "Tls",
          message: `TLS (PGSSLMODE=${pg.sslMode}) with ${pg.host} failed: ${cause.message}: ` +
            ErrorPolicy.tlsAdvice(typeof code === "string" ? code : undefined)
        })
      ))
    }
    secure.once("error", onError)
    secure.once("secureConnect", () => {
      secure.off("error", onError)
      resume(Effect.succeed(secure))
    })
    return Effect.sync(() => secure.destroy())
  })

/** Opens a TCP socket that is destroyed when the scope closes (or at once when `use` fails). */
const withSocket = <A, E, R>(pg: PgConfig, use: (socket: Net.Socket) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    // acquiring is instant (acquisition is uninterruptible); what follows can be timed out
    const raw = yield* Effect.acquireRelease(
      Effect.sync(() => Net.createConnection({ host: pg.host, port: pg.port })),
      (socket) => Effect.sync(() => socket.destroy())
    )
    // a failed or interrupted attempt frees the socket now, not when the scope closes
    return yield* Effect.onError(use(raw), () => Effect.sync(() => raw.destroy()))
  })

/**
 * Connects and sets up TLS as PGSSLMODE demands. The socket lives until the scope closes; the
 * caller bounds the time (PG_CONNECT_TIMEOUT_MS covers the whole connection set-up).
 */
export const open = (pg: PgConfig): Effect.Effect<Transport, PgError, Scope.Scope> =>
  Effect.gen(function*() {
    const tls = yield* Tls.policy(pg)
    return yield* withSocket(pg, (raw) =>
      Effect.gen(function*() {
        yield* awaitConnect(raw, pg)
        // under TLS the session listens on the TLS socket; keep a late error of the raw one from crashing the process
        raw.on("error", () => undefined)
        if (tls._tag === "Plain") return { socket: raw, encrypted: false }
        if ((yield* sslAnswer(raw)) === "S") return { socket: yield* upgrade(pg, raw, tls.options), encrypted: true }
        if (tls.optional) return { socket: raw, encrypted: false }
        return yield* new PgError({ reason: "Tls", message: `PGSSLMODE=${pg.sslMode} but the server at ${pg.host} does not accept TLS` })
      }))
  })

/** Asks the server (on a connection of its own, closed afterwards) whether it speaks TLS. */
export const serverOffersTls = (pg: PgConfig): Effect.Effect<boolean, PgError> =>
  Effect.scoped(withSocket(pg, (raw) =>
    Effect.gen(function*() {
      yield* awaitConnect(raw, pg)
      return (yield* sslAnswer(raw)) === "S"
    }))).pipe(
      Effect.timeoutOrElse({
        duration: pg.connectTimeoutMs,
        orElse: () => Effect.fail(new PgError({ reason: "Connection", message: `no answer from ${pg.host}:${pg.port} within ${pg.connectTimeoutMs} ms` }))
      })
    )

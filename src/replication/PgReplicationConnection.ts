/**
 * A PostgreSQL connection in `replication=database` mode, over node:net or node:tls, as a scoped
 * resource: TLS negotiated per PGSSLMODE, authentication (trust, cleartext, MD5, SCRAM-SHA-256),
 * simple queries (replication commands and plain SQL), and the hand-over of the socket to a
 * CopyBoth stream. Built on the pure codecs of `@effect/sql-pg` (PgProtocol, PgAuth).
 *
 * Closing the scope (success, failure or interruption) ends any CopyBoth stream with CopyDone,
 * sends Terminate, waits briefly for the server to close, and destroys the socket.
 */
import * as PgAuth from "@effect/sql-pg/PgAuth"
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { PgAuthError, PgConnectionError, PgServerError, PgTlsError } from "../Errors.ts"
import * as PgWire from "./PgWire.ts"

/** The rows of a simple query, as text (NULL as `null`). */
export interface QueryResult {
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>
}

/** Receives a CopyBoth stream. Called synchronously from the socket's data handler. */
export interface CopyBothListener {
  /** A backend CopyData payload: a view into the parser's buffer, valid only during the call. */
  readonly onCopyData: (payload: Uint8Array) => void
  /** Every message of one socket read has been delivered: the moment to hand a batch on. */
  readonly onReadEnd: () => void
  /** The stream failed or the server ended it; nothing more is delivered. */
  readonly onFailure: (error: PgConnectionError | PgServerError) => void
}

export type ConnectError = PgConnectionError | PgTlsError | PgAuthError | PgServerError

export interface PgReplicationConnection {
  /** The walsender's process id (from BackendKeyData). */
  readonly backendPid: number
  /** The server's major version, e.g. 15. */
  readonly serverMajorVersion: number
  /** Whether the connection is encrypted. */
  readonly encrypted: boolean
  /** Runs one simple-protocol statement and returns its rows. Not during a CopyBoth stream. */
  readonly query: (sql: string) => Effect.Effect<QueryResult, PgServerError | PgConnectionError>
  /**
   * Sends `sql` (START_REPLICATION) and succeeds once the server answers CopyBothResponse; from then
   * on every backend message goes to `listener`, synchronously.
   */
  readonly startCopyBoth: (sql: string, listener: CopyBothListener) => Effect.Effect<void, PgServerError | PgConnectionError>
  /** Writes raw protocol bytes; false when the socket is gone. Safe to call from any callback. */
  readonly write: (bytes: Uint8Array) => boolean
  /** Stops / restarts reading the socket (TCP back-pressure). */
  readonly pause: () => void
  readonly resume: () => void
}

/** How long closing waits for the server to hang up after Terminate before destroying the socket. */
const CLOSE_GRACE_MS = 1000

/** SQLSTATEs of a refused login: invalid_authorization_specification, invalid_password. */
const authFailureCodes = new Set(["28000", "28P01"])

export const serverError = (fields: PgProtocol.ErrorFields): PgServerError =>
  new PgServerError({
    code: fields.code ?? "XX000",
    message: fields.message ?? "unknown server error",
    detail: fields.detail,
    hint: fields.hint
  })

const utf8 = new TextDecoder()

/** Backend messages as the mailbox keeps them: DataRow values are decoded while their buffer is valid. */
type Inbound =
  | Exclude<PgProtocol.BackendMessage, PgProtocol.DataRow>
  | { readonly _tag: "Row"; readonly values: ReadonlyArray<string | null> }

type Mode = "startup" | "idle" | "query" | "startingCopy" | "copyBoth" | "closed"

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Waits for a new socket to connect; fails with PgConnectionError. */
const awaitConnect = (socket: Net.Socket, config: PgConfig): Effect.Effect<void, PgConnectionError> =>
  Effect.callback<void, PgConnectionError>((resume) => {
    const onError = (cause: Error) =>
      resume(Effect.fail(new PgConnectionError({ message: `cannot connect to ${config.host}:${config.port}: ${cause.message}`, cause })))
    socket.once("error", onError)
    socket.once("connect", () => {
      socket.off("error", onError)
      socket.setNoDelay(true)
      socket.setKeepAlive(true, 30_000)
      resume(Effect.void)
    })
  })

/** Reads the one-byte answer to an SSLRequest ('S', 'N', or an ErrorResponse from an old server). */
const sslAnswer = (socket: Net.Socket): Effect.Effect<"S" | "N", PgConnectionError | PgServerError | PgTlsError> =>
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
        return resume(Effect.fail(error ? serverError(error.fields) : new PgConnectionError({ message: "unreadable answer to SSLRequest" })))
      }
      // Bytes after the answer would arrive unencrypted before the handshake: refuse them (CVE-2021-23222).
      if (chunk.length !== 1) return resume(Effect.fail(new PgTlsError({ message: "unexpected data after the server's SSL answer" })))
      const answer = PgProtocol.decodeSslResponse(chunk[0]!)
      resume(
        Result.isSuccess(answer)
          ? Effect.succeed(answer.success)
          : Effect.fail(new PgConnectionError({ message: `unexpected answer to SSLRequest: byte ${chunk[0]}` }))
      )
    }
    const onError = (cause: Error) => {
      cleanup()
      resume(Effect.fail(new PgConnectionError({ message: `connection failed during SSL negotiation: ${cause.message}`, cause })))
    }
    const onClose = () => {
      cleanup()
      resume(Effect.fail(new PgConnectionError({ message: "the server closed the connection during SSL negotiation" })))
    }
    socket.on("data", onData)
    socket.once("error", onError)
    socket.once("close", onClose)
    socket.resume()
    socket.write(PgProtocol.encodeSslRequest())
  })

const readRootCert = (path: string): Effect.Effect<Buffer, PgTlsError> =>
  Effect.try({
    try: () => Fs.readFileSync(path),
    catch: (cause) => new PgTlsError({ message: `cannot read PGSSLROOTCERT ${path}: ${describeCause(cause)}` })
  })

/** The node:tls options a PGSSLMODE asks for. */
const tlsOptions = (config: PgConfig, socket: Net.Socket): Effect.Effect<Tls.ConnectionOptions, PgTlsError> =>
  Effect.gen(function*() {
    const base: Tls.ConnectionOptions = {
      socket,
      host: config.host,
      ...(Net.isIP(config.host) === 0 ? { servername: config.host } : {})
    }
    switch (config.sslMode) {
      case "disable":
      case "prefer":
      case "require":
        return { ...base, rejectUnauthorized: false }
      case "verify-ca":
      case "verify-full": {
        const ca = config.sslRootCert === undefined ? undefined : yield* readRootCert(config.sslRootCert)
        return {
          ...base,
          ...(ca === undefined ? {} : { ca }),
          rejectUnauthorized: true,
          // verify-ca checks the chain only; verify-full also checks the host name (node's default check)
          ...(config.sslMode === "verify-ca" ? { checkServerIdentity: () => undefined } : {})
        }
      }
    }
  })

/** Runs the TLS handshake over the negotiated socket. */
const upgradeToTls = (config: PgConfig, socket: Net.Socket): Effect.Effect<Tls.TLSSocket, PgTlsError> =>
  Effect.flatMap(tlsOptions(config, socket), (options) =>
    Effect.callback<Tls.TLSSocket, PgTlsError>((resume) => {
      const secure = Tls.connect(options)
      const onError = (cause: Error) => {
        secure.destroy()
        resume(Effect.fail(new PgTlsError({ message: `TLS (PGSSLMODE=${config.sslMode}) with ${config.host} failed: ${cause.message}` })))
      }
      secure.once("error", onError)
      secure.once("secureConnect", () => {
        secure.off("error", onError)
        resume(Effect.succeed(secure))
      })
      return Effect.sync(() => secure.destroy())
    }))

/** TCP connect, TLS negotiation per PGSSLMODE, then the protocol session. */
const handshake = (config: PgConfig, raw: Net.Socket): Effect.Effect<PgReplicationConnection, ConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* awaitConnect(raw, config)
    // under TLS the session listens on the TLS socket; keep a late error of the raw one from crashing the process
    raw.on("error", () => undefined)
    let stream: Net.Socket = raw
    let encrypted = false
    if (config.sslMode !== "disable") {
      const answer = yield* sslAnswer(raw)
      if (answer === "S") {
        stream = yield* upgradeToTls(config, raw)
        encrypted = true
      } else if (config.sslMode !== "prefer") {
        return yield* new PgTlsError({ message: `PGSSLMODE=${config.sslMode} but the server at ${config.host} does not accept TLS` })
      }
    }
    return yield* session(config, stream, encrypted)
  })

/**
 * Connects, negotiates TLS, authenticates in `replication=database` mode and waits for the first
 * ReadyForQuery. The connection lives until the scope closes.
 */
export const connect = (config: PgConfig): Effect.Effect<PgReplicationConnection, ConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    // acquiring is instant (acquisition is uninterruptible); the connect itself can be timed out
    const raw = yield* Effect.acquireRelease(
      Effect.sync(() => Net.createConnection({ host: config.host, port: config.port })),
      (socket) => Effect.sync(() => socket.destroy())
    )
    // a failed or interrupted (timed-out) handshake frees the socket now, not when the scope closes
    return yield* Effect.onError(handshake(config, raw), () => Effect.sync(() => raw.destroy()))
  }).pipe(
    Effect.timeoutOrElse({
      duration: config.connectTimeoutMs,
      orElse: () =>
        Effect.fail(new PgConnectionError({ message: `connecting to ${config.host}:${config.port} timed out after ${config.connectTimeoutMs} ms` }))
    })
  )

/** The protocol session over a connected (possibly encrypted) socket. */
const session = (
  config: PgConfig,
  socket: Net.Socket,
  encrypted: boolean
): Effect.Effect<PgReplicationConnection, ConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    let mode: Mode = "startup"
    let closing = false
    let failure: PgConnectionError | undefined
    let listener: CopyBothListener | undefined
    const inbox: Array<Inbound> = []
    let wake: (() => void) | undefined

    const notify = () => {
      const waiting = wake
      wake = undefined
      waiting?.()
    }

    const fail = (error: PgConnectionError) => {
      if (failure !== undefined || closing) return
      failure = error
      if (mode === "copyBoth" && listener !== undefined) listener.onFailure(error)
      notify()
    }

    const dispatch = (message: PgProtocol.BackendMessage): void => {
      if (mode === "copyBoth") {
        switch (message._tag) {
          case "CopyData":
            return listener!.onCopyData(message.data)
          case "ErrorResponse":
            return listener!.onFailure(serverError(message.fields))
          case "CopyDone":
            return listener!.onFailure(new PgConnectionError({ message: "the server ended the replication stream" }))
          default:
            return // NoticeResponse, ParameterStatus: nothing to do mid-stream
        }
      }
      if (mode === "startingCopy" && message._tag === "CopyBothResponse") mode = "copyBoth"
      inbox.push(
        message._tag === "DataRow"
          ? { _tag: "Row", values: message.values.map((v) => (v === null ? null : utf8.decode(v))) }
          : message
      )
      notify()
    }

    const parser = PgProtocol.makeParser()
    const onData = (chunk: Buffer) => {
      try {
        parser.pushEach(chunk, dispatch)
        if (mode === "copyBoth") listener!.onReadEnd()
      } catch (cause) {
        fail(new PgConnectionError({ message: `protocol error: ${describeCause(cause)}`, cause }))
        socket.destroy()
      }
    }
    socket.on("data", onData)
    socket.on("error", (cause) => fail(new PgConnectionError({ message: `connection to ${config.host}:${config.port} failed: ${cause.message}`, cause })))
    socket.on("close", () => fail(new PgConnectionError({ message: `the server at ${config.host}:${config.port} closed the connection` })))
    socket.resume()

    yield* Effect.addFinalizer(() => close(socket, () => {
      const wasStreaming = mode === "copyBoth"
      closing = true
      mode = "closed"
      socket.off("data", onData)
      return wasStreaming
    }))

    const write = (bytes: Uint8Array): boolean => {
      if (socket.destroyed || !socket.writable) return false
      socket.write(bytes)
      return true
    }

    const next: Effect.Effect<Inbound, PgConnectionError> = Effect.callback((resume) => {
      const deliver = () => {
        const message = inbox.shift()
        if (message !== undefined) resume(Effect.succeed(message))
        else if (failure !== undefined) resume(Effect.fail(failure))
        else wake = deliver
      }
      deliver()
      return Effect.sync(() => {
        wake = undefined
      })
    })

    // ---- startup and authentication
    yield* Effect.sync(() =>
      write(PgProtocol.encodeStartupMessage({
        user: config.user,
        database: config.database,
        replication: "database",
        application_name: config.applicationName
      }))
    )
    const password = (): Effect.Effect<string, PgAuthError> =>
      config.password === undefined
        ? Effect.fail(new PgAuthError({ message: `the server asks a password for user ${config.user}, but PGPASSWORD is not set` }))
        : Effect.succeed(Redacted.value(config.password))
    const authError = (error: PgAuth.AuthError) => new PgAuthError({ message: `authentication as ${config.user} failed: ${error.message}` })

    let backendPid = 0
    let serverVersion = ""
    let scramFirst: PgAuth.ScramFirst | undefined
    let scramFinal: PgAuth.ScramFinal | undefined
    startup: while (true) {
      const message = yield* next
      switch (message._tag) {
        case "AuthenticationOk":
          break
        case "AuthenticationCleartextPassword":
          write(PgProtocol.encodePasswordMessage({ password: yield* password() }))
          break
        case "AuthenticationMD5Password": {
          const hashed = yield* Effect.mapError(
            Effect.fromResult(PgAuth.md5Password({ user: config.user, password: yield* password(), salt: message.salt })),
            authError
          )
          write(PgProtocol.encodePasswordMessage({ password: hashed }))
          break
        }
        case "AuthenticationSASL": {
          if (!message.mechanisms.includes(PgAuth.SCRAM_SHA_256)) {
            return yield* new PgAuthError({
              message: `the server offers SASL mechanisms ${message.mechanisms.join(", ")}; only ${PgAuth.SCRAM_SHA_256} is supported`
            })
          }
          const first = yield* Effect.mapError(
            Effect.fromResult(PgAuth.scramInit({ password: yield* password(), nonce: randomBytes(18).toString("base64") })),
            authError
          )
          scramFirst = first.state
          write(PgProtocol.encodeSASLInitialResponse({ mechanism: PgAuth.SCRAM_SHA_256, initialResponse: first.response }))
          break
        }
        case "AuthenticationSASLContinue": {
          if (scramFirst === undefined) return yield* new PgAuthError({ message: "unexpected SASL challenge" })
          const final = yield* Effect.mapError(Effect.fromResult(PgAuth.scramContinue(scramFirst, message.data)), authError)
          scramFinal = final.state
          write(PgProtocol.encodeSASLResponse({ data: final.response }))
          break
        }
        case "AuthenticationSASLFinal":
          if (scramFinal === undefined) return yield* new PgAuthError({ message: "unexpected SASL final message" })
          // verifies the server's signature: the server knew the password too
          yield* Effect.mapError(Effect.fromResult(PgAuth.scramFinish(scramFinal, message.data)), authError)
          break
        case "AuthenticationUnsupported":
          return yield* new PgAuthError({ message: `the server asks for an unsupported authentication method (${message.method})` })
        case "ErrorResponse": {
          const error = serverError(message.fields)
          return yield* authFailureCodes.has(error.code) ? new PgAuthError({ message: error.message }) : error
        }
        case "BackendKeyData":
          backendPid = message.pid
          break
        case "ParameterStatus":
          if (message.name === "server_version") serverVersion = message.value
          break
        case "ReadyForQuery":
          break startup
        default:
          break // NoticeResponse, NegotiateProtocolVersion
      }
    }
    mode = "idle"

    /** Reads until ReadyForQuery; fails with the first ErrorResponse of the cycle. */
    const finishCycle = Effect.fnUntraced(function*(result: { columns: Array<string>; rows: Array<ReadonlyArray<string | null>> }) {
      let error: PgServerError | undefined
      while (true) {
        const message = yield* next
        switch (message._tag) {
          case "RowDescription":
            result.columns = message.fields.map((f) => f.name)
            break
          case "Row":
            result.rows.push(message.values)
            break
          case "ErrorResponse":
            error ??= serverError(message.fields)
            break
          case "ReadyForQuery":
            mode = "idle"
            if (error !== undefined) return yield* error
            return result
          default:
            break
        }
      }
    })

    const query = (sql: string): Effect.Effect<QueryResult, PgServerError | PgConnectionError> =>
      Effect.suspend(() => {
        if (failure !== undefined) return Effect.fail(failure)
        if (mode !== "idle") return Effect.die(new Error(`query while the connection is ${mode}`))
        mode = "query"
        write(PgWire.encodeQuery(sql))
        return finishCycle({ columns: [], rows: [] })
      })

    const startCopyBoth = (sql: string, copyListener: CopyBothListener): Effect.Effect<void, PgServerError | PgConnectionError> =>
      Effect.suspend(() => {
        if (failure !== undefined) return Effect.fail(failure)
        if (mode !== "idle") return Effect.die(new Error(`START_REPLICATION while the connection is ${mode}`))
        listener = copyListener
        mode = "startingCopy"
        write(PgWire.encodeQuery(sql))
        return Effect.gen(function*() {
          while (true) {
            const message = yield* next
            if (message._tag === "CopyBothResponse") return
            if (message._tag === "ErrorResponse") {
              mode = "query" // the cycle ends with ReadyForQuery
              return yield* finishCycle({ columns: [], rows: [] }).pipe(
                Effect.andThen(Effect.fail(serverError(message.fields)))
              )
            }
          }
        })
      })

    const serverMajorVersion = Number(/^(\d+)/.exec(serverVersion)?.[1] ?? 0)
    return {
      backendPid,
      serverMajorVersion,
      encrypted,
      query,
      startCopyBoth,
      write,
      pause: () => {
        socket.pause()
      },
      resume: () => {
        socket.resume()
      }
    } satisfies PgReplicationConnection
  }).pipe(Effect.onError(() => Effect.sync(() => socket.destroy())))

/**
 * Ends the session politely: CopyDone when streaming, Terminate, then waits for the server to hang
 * up (at most CLOSE_GRACE_MS) and destroys the socket.
 */
const close = (socket: Net.Socket, markClosing: () => boolean): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const wasStreaming = markClosing()
    if (socket.destroyed) return resume(Effect.void)
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.void)
    }, CLOSE_GRACE_MS)
    socket.once("close", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    socket.on("data", () => undefined) // drain whatever is still in flight
    socket.resume()
    if (wasStreaming) socket.write(PgWire.encodeCopyDone())
    socket.end(PgProtocol.encodeTerminate())
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

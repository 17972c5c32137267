/**
 * A PostgreSQL connection in `replication=database` mode, as a scoped resource: simple queries
 * (replication commands and plain SQL) and the hand-over of the socket to a CopyBoth stream. The
 * transport (TCP, TLS per PGSSLMODE) and authentication are the shared ones of `src/postgres/`.
 *
 * Closing the scope (success, failure or interruption) ends any CopyBoth stream with CopyDone,
 * sends Terminate, waits briefly for the server to close, and destroys the socket.
 */
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Net from "node:net"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { PgError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import * as Startup from "../postgres/Startup.ts"
import * as Transport from "../postgres/Transport.ts"
import * as BackendFrames from "./BackendFrames.ts"
import * as PgWire from "./PgWire.ts"

/** The rows of a simple query, as text (NULL as `null`). */
export interface QueryResult {
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>
}

/** Receives a CopyBoth stream. Called synchronously from the socket's data handler. */
export interface CopyBothListener {
  /**
   * XLogData messages longer than this (changes and logical messages) are dropped as they arrive
   * and reported to `onOversized` instead of `onCopyData` (default: never).
   */
  readonly discardAbove?: number | undefined
  /**
   * A backend CopyData payload, `bytes[start, end)`: `bytes` is a read buffer that is never written
   * over, so views of it stay valid for as long as they are referenced.
   */
  readonly onCopyData: (bytes: Uint8Array, start: number, end: number) => void
  /**
   * An XLogData message over `discardAbove`, dropped: `head` is the start of its CopyData payload
   * (XLogData header and the message's first bytes), `bytes` the message's size.
   */
  readonly onOversized: (head: Uint8Array, bytes: number) => void
  /** Every message of one socket read has been delivered: the moment to hand a batch on. */
  readonly onReadEnd: () => void
  /** The stream failed or the server ended it; nothing more is delivered. */
  readonly onFailure: (error: PgError) => void
}


export interface PgReplicationConnection {
  /** The walsender's process id (from BackendKeyData). */
  readonly backendPid: number
  /** The server's major version, e.g. 15. */
  readonly serverMajorVersion: number
  /** Whether the connection is encrypted. */
  readonly encrypted: boolean
  /** Runs one simple-protocol statement and returns its rows. Not during a CopyBoth stream. */
  readonly query: (sql: string) => Effect.Effect<QueryResult, PgError>
  /**
   * Sends `sql` (START_REPLICATION) and succeeds once the server answers CopyBothResponse; from then
   * on every backend message goes to `listener`, synchronously.
   */
  readonly startCopyBoth: (sql: string, listener: CopyBothListener) => Effect.Effect<void, PgError>
  /** Writes raw protocol bytes; false when the socket is gone. Safe to call from any callback. */
  readonly write: (bytes: Uint8Array) => boolean
  /** Stops / restarts reading the socket (TCP back-pressure). */
  readonly pause: () => void
  readonly resume: () => void
}

/** How long closing waits for the server to hang up after Terminate before destroying the socket. */
const CLOSE_GRACE_MS = 1000

const utf8 = new TextDecoder()

/** Backend CopyData type byte. */
const COPY_DATA = 0x64

type Mode = "startup" | "idle" | "query" | "startingCopy" | "copyBoth" | "closed"

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/**
 * Connects, negotiates TLS, authenticates in `replication=database` mode and waits for the first
 * ReadyForQuery. The connection lives until the scope closes.
 */
export const connect = (config: PgConfig): Effect.Effect<PgReplicationConnection, PgError, Scope.Scope> =>
  Effect.flatMap(Transport.open(config), ({ socket, encrypted }) => session(config, socket, encrypted)).pipe(
    Effect.timeoutOrElse({
      duration: config.connectTimeoutMs,
      orElse: () =>
        Effect.fail(new PgError({ reason: "Connection", message: `connecting to ${config.host}:${config.port} timed out after ${config.connectTimeoutMs} ms` }))
    })
  )

/** The protocol session over a connected (possibly encrypted) socket. */
const session = (
  config: PgConfig,
  socket: Net.Socket,
  encrypted: boolean
): Effect.Effect<PgReplicationConnection, PgError, Scope.Scope> =>
  Effect.gen(function*() {
    let mode: Mode = "startup"
    let closing = false
    let failure: PgError | undefined
    let listener: CopyBothListener | undefined
    const inbox: Array<Startup.Inbound> = []
    let wake: (() => void) | undefined

    const notify = () => {
      const waiting = wake
      wake = undefined
      waiting?.()
    }

    const fail = (error: PgError) => {
      if (failure !== undefined || closing) return
      failure = error
      if (mode === "copyBoth" && listener !== undefined) listener.onFailure(error)
      notify()
    }

    const dispatch = (message: PgProtocol.BackendMessage): void => {
      if (mode === "copyBoth") {
        // CopyData never comes here while streaming: the frame sink hands it to the listener
        switch (message._tag) {
          case "ErrorResponse":
            return listener!.onFailure(ErrorPolicy.fromErrorResponse(message.fields))
          case "CopyDone":
            return listener!.onFailure(new PgError({ reason: "Connection", message: "the server ended the replication stream" }))
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

    // Frames are split here; CopyData of the stream goes to the listener as is, every other
    // message (small, rare once streaming) through @effect/sql-pg's parser.
    const parser = PgProtocol.makeParser()
    const frames = BackendFrames.make()
    const sink: BackendFrames.FrameSink = {
      onMessage: (type, bytes, start, end) => {
        if (type === COPY_DATA && mode === "copyBoth") return listener!.onCopyData(bytes, start, end)
        parser.pushEach(bytes.subarray(start - 5, end), dispatch)
      },
      onOversized: (head, bytes) => listener!.onOversized(head, bytes)
    }
    const onData = (chunk: Buffer) => {
      try {
        frames.push(chunk, sink)
        if (mode === "copyBoth") listener!.onReadEnd()
      } catch (cause) {
        fail(new PgError({ reason: "Connection", message: `protocol error: ${describeCause(cause)}`, cause }))
        socket.destroy()
      }
    }
    socket.on("data", onData)
    socket.on("error", (cause) => fail(new PgError({ reason: "Connection", message: `connection to ${config.host}:${config.port} failed: ${cause.message}`, cause })))
    socket.on("close", () => fail(new PgError({ reason: "Connection", message: `the server at ${config.host}:${config.port} closed the connection` })))
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

    const next: Effect.Effect<Startup.Inbound, PgError> = Effect.callback((resume) => {
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
    const { backendPid, serverMajorVersion } = yield* Startup.authenticate(config, {
      replication: "database",
      application_name: config.applicationName
    }, { next, write })
    mode = "idle"

    /** Reads until ReadyForQuery; fails with the first ErrorResponse of the cycle. */
    const finishCycle = Effect.fnUntraced(function*(result: { columns: Array<string>; rows: Array<ReadonlyArray<string | null>> }) {
      let error: PgError | undefined
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
            error ??= ErrorPolicy.fromErrorResponse(message.fields)
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

    const query = (sql: string): Effect.Effect<QueryResult, PgError> =>
      Effect.suspend(() => {
        if (failure !== undefined) return Effect.fail(failure)
        if (mode !== "idle") return Effect.die(new Error(`query while the connection is ${mode}`))
        mode = "query"
        write(PgWire.encodeQuery(sql))
        return finishCycle({ columns: [], rows: [] })
      })

    const startCopyBoth = (sql: string, copyListener: CopyBothListener): Effect.Effect<void, PgError> =>
      Effect.suspend(() => {
        if (failure !== undefined) return Effect.fail(failure)
        if (mode !== "idle") return Effect.die(new Error(`START_REPLICATION while the connection is ${mode}`))
        listener = copyListener
        frames.discardAbove = copyListener.discardAbove ?? Number.POSITIVE_INFINITY
        mode = "startingCopy"
        write(PgWire.encodeQuery(sql))
        return Effect.gen(function*() {
          while (true) {
            const message = yield* next
            if (message._tag === "CopyBothResponse") return
            if (message._tag === "ErrorResponse") {
              mode = "query" // the cycle ends with ReadyForQuery
              return yield* finishCycle({ columns: [], rows: [] }).pipe(
                Effect.andThen(Effect.fail(ErrorPolicy.fromErrorResponse(message.fields)))
              )
            }
          }
        })
      })

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

/**
 * The replication reader: opens a replication connection, makes sure the slot is usable, starts
 * streaming, and serves the CopyBoth stream as a `ReplicationSession`.
 *
 * The socket's data handler does the per-frame work synchronously (no fiber, no Effect per frame):
 * keepalives are answered in place, XLogData payloads go into a pending list, and reading pauses
 * when that list holds `highWaterBytes`. `take` hands the whole pending list to the decoder as one
 * batch. A payload is a view of the frame reader's read buffer, not a copy: it never writes over
 * bytes it has handed out (it starts a new buffer when one is full), so a payload stays valid for
 * as long as it is referenced; the decoder writes the record bodies of a batch into one new
 * buffer, which the queue counts whole against QUEUE_MAX_BYTES. A change or logical message larger than
 * `maxMessageBytes` is never held: its bytes are dropped as they arrive and the decoder gets its
 * first bytes and its size (`WalMessage.oversizedBytes`), enough to name it, so
 * OVERSIZED_RECORD_POLICY decides about it like about any record over the limit. A separate fiber sends standby
 * status updates every STATUS_INTERVAL_MS whether or not anyone takes, so a stalled consumer never
 * lets `wal_sender_timeout` end the walsender.
 *
 * Flush position rules: the flush position reported is the acknowledged LSN, never below the slot's
 * confirmed_flush at start and never going backwards. When nothing is pending (every event handed
 * out is acknowledged and the last one closed its transaction), the server's WAL end from its
 * keepalives moves it forward, so an idle database does not keep WAL for ever.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { PgConfig, ReplicationConfig } from "../config/ServiceConfig.ts"
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import { type DecodeError, PgError, type ServiceError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"
import * as Quote from "../postgres/Quote.ts"
import { type Decoder, ReadMessage, type WalMessage } from "./Decoder.ts"
import * as PgReplicationConnection from "./PgReplicationConnection.ts"
import * as PgWire from "./PgWire.ts"
import type { ReplicationSession } from "./ReplicationSession.ts"
import * as ServerSettings from "./ServerSettings.ts"
import * as Slot from "./Slot.ts"

export interface OpenOptions {
  readonly pg: PgConfig
  readonly replication: ReplicationConfig
  /**
   * The decoder, or a way to build it on the replication connection once the slot is checked (the
   * pgoutput decoder needs its publication made sure of and the tables' primary keys read).
   */
  readonly decoder: Decoder | DecoderFactory
  /**
   * Where to start streaming: the last flush position this process knows was handled. Default 0/0,
   * which makes the server start at the slot's confirmed_flush_lsn.
   */
  readonly startLsn?: Lsn.Lsn | undefined
  /** Pending XLogData bytes at which the socket stops being read until the next `take` (default 256 KiB). */
  readonly highWaterBytes?: number | undefined
  /**
   * Changes and logical messages longer than this are dropped as they arrive and handed on as
   * oversized (the per-record limit; default {@link DEFAULT_MAX_MESSAGE_BYTES}).
   */
  readonly maxMessageBytes?: number | undefined
}

/** Runs one SQL statement on the replication connection and returns its rows as text. */
export type Query = (sql: string) => Effect.Effect<ReadonlyArray<ReadonlyArray<string | null>>, ServiceError>

/** Builds the decoder with SQL access to the replication connection, before streaming starts. */
export type DecoderFactory = (query: Query) => Effect.Effect<Decoder, ServiceError>

/**
 * A few socket reads: enough for batch-sized takes, small enough that what waits to be decoded (and,
 * while the queue is full, waits to be offered) stays small beside QUEUE_MAX_BYTES. Measured against
 * 8 MiB on a 500,000-change drain: 20–60 MiB lower peak RSS, the same throughput.
 */
export const DEFAULT_HIGH_WATER_BYTES = 256 * 1024

/** The largest record Kinesis accepts (10 MiB): no larger message can ever be published. */
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024

/** Bookkeeping bytes counted per pending message on top of its payload. */
const MESSAGE_OVERHEAD_BYTES = 48

/** The START_REPLICATION command for a slot, position and decoder options. */
export const startReplicationCommand = (slot: string, startLsn: Lsn.Lsn, startOptions: string): string =>
  `START_REPLICATION SLOT ${Quote.identifier(slot)} LOGICAL ${Lsn.format(startLsn)}${startOptions === "" ? "" : ` ${startOptions}`}`

/**
 * Connects, ensures the slot (create / plugin / active / invalidated checks), starts replication
 * and returns the session. Everything is released when the scope closes: a last status update,
 * CopyDone and Terminate are sent and the socket is destroyed.
 */
export const open = (options: OpenOptions): Effect.Effect<ReplicationSession, ServiceError, Scope.Scope> =>
  Effect.gen(function*() {
    const { replication } = options
    const slotName = replication.slot
    const highWaterBytes = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES

    const connection = yield* PgReplicationConnection.connect(options.pg)
    // before the slot: a database the plugin cannot stream is refused without leaving a slot behind
    const settings = yield* ServerSettings.read((sql) => Effect.map(connection.query(sql), (result) => result.rows))
    yield* ServerSettings.checkEncoding(settings.serverEncoding, replication.plugin)
    const statusIntervalMs = ServerSettings.statusIntervalMs(replication.statusIntervalMs, settings.walSenderTimeoutMs)
    if (statusIntervalMs !== replication.statusIntervalMs) {
      yield* Effect.logWarning("status_interval_clamped").pipe(Effect.annotateLogs({
        configuredMs: replication.statusIntervalMs,
        walSenderTimeoutMs: settings.walSenderTimeoutMs,
        statusIntervalMs,
        note: "STATUS_INTERVAL_MS must stay below half of the server's wal_sender_timeout"
      }))
    }
    const slot = yield* Slot.ensure(connection, { slot: slotName, plugin: replication.plugin, createSlot: replication.createSlot })
    const decoder = typeof options.decoder === "function"
      ? yield* options.decoder((sql) => Effect.map(connection.query(sql), (result) => result.rows))
      : options.decoder
    if (decoder.plugin !== slot.plugin) {
      return yield* Effect.die(new Error(`decoder for ${decoder.plugin} given for a ${slot.plugin} slot`))
    }

    // ---- state, touched only by the data handler, take, acknowledge and the status fiber
    const requestedStart = options.startLsn ?? Lsn.zero
    /** Everything up to here is handled (acknowledged, or the slot's position at start). */
    let acknowledged = Lsn.max(slot.confirmedFlush, requestedStart)
    /** The flush position last sent. */
    let flushed = acknowledged
    /** The server's WAL end from its last keepalive, and from any frame (for lag). */
    let keepaliveWalEnd = Lsn.zero
    let serverWalEnd = Lsn.zero
    let pending: Array<WalMessage> = []
    let pendingBytes = 0
    let paused = false
    /** Whether the last event handed out left a transaction open. */
    let inTransaction = false
    /** The acknowledgement that covers every event handed out so far. */
    let handedOutAckLsn = Lsn.zero
    let connectionFailure: PgError | undefined
    let decodeFailure: DecodeError | undefined
    let wakeTaker: (() => void) | undefined

    const wake = () => {
      const taker = wakeTaker
      wakeTaker = undefined
      taker?.()
    }

    /** Every change received has been handed out and acknowledged, and no transaction is open. */
    const nothingPending = (): boolean =>
      decodeFailure === undefined && pending.length === 0 && !inTransaction && acknowledged >= handedOutAckLsn

    const flushPosition = (): Lsn.Lsn => {
      let position = acknowledged
      if (keepaliveWalEnd > position && nothingPending()) position = keepaliveWalEnd
      return position > flushed ? position : flushed
    }

    const sendStatus = (replyRequested: boolean): boolean => {
      const position = flushPosition()
      const sent = connection.write(PgWire.encodeStatusUpdate({
        write: position,
        flush: position,
        apply: position,
        clock: PgWire.postgresMicros(Date.now()),
        replyRequested
      }))
      if (sent) flushed = position
      return sent
    }

    const failStream = (error: PgError) => {
      if (connectionFailure !== undefined) return
      connectionFailure = error
      wake()
    }

    const addPending = (message: WalMessage, payloadBytes: number): void => {
      pending.push(message)
      pendingBytes += payloadBytes + MESSAGE_OVERHEAD_BYTES
      if (!paused && pendingBytes >= highWaterBytes) {
        paused = true
        connection.pause()
      }
    }

    const onOversized = (head: Uint8Array, bytes: number): void => {
      const walEnd = PgWire.readUint64(head, 9)
      if (walEnd > serverWalEnd) serverWalEnd = walEnd
      const data = head.subarray(PgWire.XLOG_DATA_HEADER_BYTES)
      addPending({ lsn: PgWire.readUint64(head, 1), data, oversizedBytes: bytes }, data.length)
    }

    /**
     * The highest WAL end of the XLogData frames of this read, as its two 32-bit halves: made an
     * LSN once per read (`onReadEnd`), not once per frame.
     */
    let readWalEndHigh = -1
    let readWalEndLow = 0

    const onCopyData = (bytes: Uint8Array, start: number, end: number): void => {
      const type = bytes[start]
      if (type === PgWire.XLOG_DATA && end - start >= PgWire.XLOG_DATA_HEADER_BYTES) {
        const high = PgWire.readUint32(bytes, start + 9)
        const low = PgWire.readUint32(bytes, start + 13)
        if (high > readWalEndHigh || (high === readWalEndHigh && low > readWalEndLow)) {
          readWalEndHigh = high
          readWalEndLow = low
        }
        // the read's bytes: the frame reader never writes over bytes it has handed out
        const payloadStart = start + PgWire.XLOG_DATA_HEADER_BYTES
        addPending(new ReadMessage(PgWire.readUint64(bytes, start + 1), bytes, payloadStart, end), end - payloadStart)
      } else if (type === PgWire.PRIMARY_KEEPALIVE && end - start >= PgWire.KEEPALIVE_BYTES) {
        const walEnd = PgWire.readUint64(bytes, start + 1)
        if (walEnd > keepaliveWalEnd) keepaliveWalEnd = walEnd
        if (walEnd > serverWalEnd) serverWalEnd = walEnd
        if (bytes[start + 17] === 1) sendStatus(false)
      } else {
        failStream(new PgError({ reason: "Connection", message: `unexpected replication frame (type ${type}, ${end - start} bytes)` }))
      }
    }

    const onReadEnd = (): void => {
      if (readWalEndHigh >= 0) {
        const walEnd = PgWire.uint64Of(readWalEndHigh, readWalEndLow)
        if (walEnd > serverWalEnd) serverWalEnd = walEnd
        readWalEndHigh = -1
        readWalEndLow = 0
      }
      // one wake-up per socket read, so a take gets everything the read brought
      if (wakeTaker !== undefined && pending.length > 0) wake()
    }

    yield* connection.startCopyBoth(startReplicationCommand(slotName, requestedStart, decoder.startOptions), {
      discardAbove: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      onCopyData,
      onOversized,
      onReadEnd,
      onFailure: failStream
    }).pipe(Effect.mapError((error) => ErrorPolicy.slotErrorOf({ slot: slotName, plugin: decoder.plugin }, error)))

    const startLsn = Lsn.max(requestedStart, slot.confirmedFlush)
    yield* Effect.logInfo("replication_started").pipe(Effect.annotateLogs({
      slot: slotName,
      plugin: slot.plugin,
      lsn: Lsn.format(startLsn),
      tls: connection.encrypted
    }))

    // Runs before the connection's own finalizer (CopyDone, Terminate): report the last position.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (connectionFailure === undefined) sendStatus(false)
      })
    )

    // Status updates on their own schedule, whether or not anyone takes.
    yield* Effect.forkScoped(Effect.gen(function*() {
      while (connectionFailure === undefined) {
        yield* Effect.sleep(statusIntervalMs)
        if (connectionFailure === undefined) sendStatus(false)
      }
    }))

    /** Decodes everything pending as one batch. */
    const drain = (): Effect.Effect<ReadonlyArray<ChangeEvent>, DecodeError> => {
      const batch = pending
      pending = []
      pendingBytes = 0
      if (paused) {
        paused = false
        connection.resume()
      }
      const decoded = decoder.decode(batch)
      if (decoded._tag === "Failure") {
        decodeFailure = decoded.failure
        return Effect.fail(decoded.failure)
      }
      const events = decoded.success
      const last = events[events.length - 1]
      if (last !== undefined) {
        // the last transaction boundary in the batch says whether a transaction is left open
        for (let i = events.length - 1; i >= 0; i--) {
          const action = events[i]!.action
          if (action === "C") {
            inTransaction = false
            break
          }
          if (action === "B") {
            inTransaction = true
            break
          }
        }
        if (last.ackLsn > handedOutAckLsn) handedOutAckLsn = last.ackLsn
      }
      return Effect.succeed(events)
    }

    const waitForData = Effect.callback<void>((resume) => {
      if (pending.length > 0 || connectionFailure !== undefined) return resume(Effect.void)
      wakeTaker = () => resume(Effect.void)
      return Effect.sync(() => {
        wakeTaker = undefined
      })
    })

    const take: Effect.Effect<ReadonlyArray<ChangeEvent>, ServiceError> = Effect.suspend(() => {
      if (decodeFailure !== undefined) return Effect.fail(decodeFailure)
      if (connectionFailure !== undefined) return Effect.fail(connectionFailure)
      if (pending.length === 0) return Effect.andThen(waitForData, take)
      return Effect.flatMap(drain(), (events) => (events.length === 0 ? take : Effect.succeed(events)))
    })

    const session: ReplicationSession = {
      slot: slotName,
      startLsn,
      slotCreated: slot.created,
      take,
      acknowledge: (lsn) =>
        Effect.sync(() => {
          // after a decode error nothing at or after the failed message is ever confirmed
          if (decodeFailure !== undefined && lsn >= decodeFailure.lsn) return
          if (lsn > acknowledged) acknowledged = lsn
        }),
      flushed: Effect.sync(() => flushed),
      serverWalEnd: Effect.sync(() => serverWalEnd),
      sendStatusNow: Effect.suspend(() => {
        if (connectionFailure !== undefined) return Effect.fail(connectionFailure)
        return sendStatus(false)
          ? Effect.void
          : Effect.fail(new PgError({ reason: "Connection", message: "cannot send a status update: the connection is closed" }))
      })
    }
    return session
  }).pipe(Effect.annotateLogs({ slot: options.replication.slot }))

/**
 * An in-memory replication slot for tests: implements {@link ReplicationSource} over a WAL that the
 * test appends to. Each session starts after the last transaction the slot confirmed, as a real
 * slot does, so changes not acknowledged before a restart are handed out again. Failures can be
 * injected (the next `open`, or the running session as a dropped connection would), and every
 * acknowledgement, open and status update is recorded.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import * as Lsn from "../domain/Lsn.ts"
import type { ServiceError } from "../Errors.ts"
import * as Signal from "../pipeline/Signal.ts"
import { ReplicationSource } from "./ReplicationSource.ts"
import type { ReplicationSession } from "./ReplicationSession.ts"

export class ReplicationMemory extends Context.Service<ReplicationMemory, {
  /** The {@link ReplicationSource} this slot implements. */
  readonly source: ReplicationSource["Service"]
  /** Appends changes (B/C boundaries included) to the WAL, in order; an open session hands them out. */
  readonly append: (events: ReadonlyArray<ChangeEvent>) => void
  /** The next `open` fails with `error` (each call fails one more open). */
  readonly failOpen: (error: ServiceError) => void
  /** The open session's reads fail with `error` from now on, as after a dropped connection. */
  readonly failSession: (error: ServiceError) => void
  /** Every LSN acknowledged, in order, over every session. */
  readonly acknowledged: () => ReadonlyArray<Lsn.Lsn>
  /** The slot's confirmed position: the highest LSN acknowledged. */
  readonly confirmed: () => Lsn.Lsn
  /** When each `open` was called (clock milliseconds), whether it succeeded or not. */
  readonly opens: () => ReadonlyArray<number>
  /** Whether a session is open now. */
  readonly isOpen: () => boolean
  /** Status updates sent at once (`sendStatusNow`, at the end of a graceful stop). */
  readonly statusSent: () => number
}>()("cdc-logical-replication/ReplicationMemory") {}

export const make = (options: { readonly slot?: string } = {}): ReplicationMemory["Service"] => {
  const slot = options.slot ?? "memory_slot"
  const wal: Array<ChangeEvent> = []
  const openFailures: Array<ServiceError> = []
  const acknowledged: Array<Lsn.Lsn> = []
  const opens: Array<number> = []
  let confirmed = Lsn.zero
  let statusSent = 0
  let sessionFailure: ServiceError | undefined
  let open = false
  const appended = Signal.make()

  /** The first event after the last commit the slot confirmed. */
  const resumeIndex = (): number => {
    let index = 0
    for (let i = 0; i < wal.length; i++) {
      const event = wal[i]!
      if (event.action === "C" && event.ackLsn <= confirmed) index = i + 1
    }
    return index
  }

  const session = (startLsn: Lsn.Lsn, startIndex: number): ReplicationSession => {
    let cursor = startIndex
    const take: Effect.Effect<ReadonlyArray<ChangeEvent>, ServiceError> = Effect.suspend(() => {
      if (sessionFailure !== undefined) return Effect.fail(sessionFailure)
      if (cursor < wal.length) {
        const events = wal.slice(cursor)
        cursor = wal.length
        return Effect.succeed(events)
      }
      return appended.waitSince(appended.version()).pipe(Effect.andThen(take))
    })
    return {
      slot,
      startLsn,
      take,
      acknowledge: (lsn) =>
        Effect.sync(() => {
          acknowledged.push(lsn)
          if (lsn > confirmed) confirmed = lsn
        }),
      flushed: Effect.sync(() => confirmed),
      serverWalEnd: Effect.sync(() => wal.length === 0 ? Lsn.zero : wal[wal.length - 1]!.ackLsn),
      sendStatusNow: Effect.suspend(() => {
        if (sessionFailure !== undefined) return Effect.fail(sessionFailure)
        statusSent++
        return Effect.void
      })
    }
  }

  const source = ReplicationSource.of({
    open: () => Effect.gen(function*() {
      opens.push(yield* Clock.currentTimeMillis)
      const failure = openFailures.shift()
      if (failure !== undefined) return yield* Effect.fail(failure)
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          open = true
          sessionFailure = undefined
        }),
        () =>
          Effect.sync(() => {
            open = false
          })
      )
      return session(confirmed, resumeIndex())
    })
  })

  return ReplicationMemory.of({
    source,
    append: (events) => {
      wal.push(...events)
      appended.notify()
    },
    failOpen: (error) => {
      openFailures.push(error)
    },
    failSession: (error) => {
      sessionFailure = error
      appended.notify()
    },
    acknowledged: () => acknowledged,
    confirmed: () => confirmed,
    opens: () => opens,
    isOpen: () => open,
    statusSent: () => statusSent
  })
}

/** Provides the slot's controls and the {@link ReplicationSource} it implements. */
export const layer = (options: { readonly slot?: string } = {}): Layer.Layer<ReplicationMemory | ReplicationSource> =>
  Layer.suspend(() => {
    const memory = make(options)
    return Layer.mergeAll(Layer.succeed(ReplicationMemory, memory), Layer.succeed(ReplicationSource, memory.source))
  })

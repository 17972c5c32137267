/**
 * Backfills as a service: for each replication session, a {@link Splicer} for the reader's decoded
 * reads and the {@link Worker} that runs beside the pipeline on the session's frontier. The live
 * layer takes its configuration from the {@link ServiceConfig}; without the service in the context
 * (the in-memory tests), the service streams without backfills.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ServiceConfig } from "../config/ServiceConfig.ts"
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import type * as Lsn from "../domain/Lsn.ts"
import * as Splicer from "./Splicer.ts"
import * as Worker from "./Worker.ts"

/** The backfill's part in one replication session. */
export interface BackfillSession {
  /** For ReplicationSource.open: sees every decoded read. */
  readonly intercept: (events: ReadonlyArray<ChangeEvent>) => ReadonlyArray<ChangeEvent>
  /** For Pipeline.run's `beside`: the worker, on the session's frontier. */
  readonly worker: (options: { readonly slotCreated: boolean }) => (frontier: () => Lsn.Lsn) => Effect.Effect<never>
}

export class Backfill extends Context.Service<Backfill, {
  /** A fresh splicer and worker for a session about to open. */
  readonly session: Effect.Effect<BackfillSession>
}>()("cdc-logical-replication/Backfill") {}

/** Backfills for a configuration. */
export const make = (config: Pick<ServiceConfig["Service"], "pg" | "replication" | "backfill" | "pipeline">): Backfill["Service"] =>
  Backfill.of({
    session: Effect.sync(() => {
      const splicer = Splicer.make(config.replication.slot)
      return {
        intercept: splicer.intercept,
        worker: ({ slotCreated }) => (frontier) => Worker.run({ config, splicer, frontier, slotCreated })
      }
    })
  })

/** The live layer on the {@link ServiceConfig}. */
export const layerConfig: Layer.Layer<Backfill, never, ServiceConfig> = Layer.effect(
  Backfill,
  Effect.map(Effect.service(ServiceConfig), make)
)

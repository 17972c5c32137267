/**
 * Where changes come from, as a service: `open` starts a {@link ReplicationSession} on the slot,
 * closed when its scope closes. The live layer is the {@link ReplicationReader} on the configured
 * slot and plugin; `ReplicationMemory` implements the same service in memory for tests.
 *
 * Only the configured plugin's decoder is loaded (imported when the first session opens): the
 * other one's modules are never needed by the process.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type { FormatConfig, PgConfig, ReplicationConfig } from "../config/ServiceConfig.ts"
import { ServiceConfig } from "../config/ServiceConfig.ts"
import type { ChangeEvent } from "../domain/ChangeEvent.ts"
import type { ServiceError } from "../Errors.ts"
import * as Formats from "../format/Formats.ts"
import type { Decoder } from "./Decoder.ts"
import * as KeyCatalog from "./KeyCatalog.ts"
import * as Publication from "./Publication.ts"
import * as ReplicationReader from "./ReplicationReader.ts"
import type { ReplicationSession } from "./ReplicationSession.ts"
import type * as Wal2JsonDecoder from "./Wal2JsonDecoder.ts"

export interface OpenOptions {
  readonly maxMessageBytes: number
  /**
   * Sees each decoded read before the record format does (the backfill's {@link Splicer}: it
   * consumes its watermarks and puts backfilled rows in their place).
   */
  readonly intercept?: ((events: ReadonlyArray<ChangeEvent>) => ReadonlyArray<ChangeEvent>) | undefined
}

export class ReplicationSource extends Context.Service<ReplicationSource, {
  /**
   * Connects and starts streaming from the slot's confirmed position; the session ends with the
   * scope. A change over `maxMessageBytes` (the per-record limit) is handed on as oversized.
   */
  readonly open: (options: OpenOptions) => Effect.Effect<ReplicationSession, ServiceError, Scope.Scope>
}>()("cdc-logical-replication/ReplicationSource") {}

/** The decoder for the configured plugin, built on the replication connection, with the record format. */
export const decoderFor = (
  replication: ReplicationConfig,
  format?: FormatConfig,
  intercept?: OpenOptions["intercept"],
  warned: Set<string> = new Set()
): ReplicationReader.DecoderFactory =>
  Formats.around(intercepted(pluginDecoderFor(replication), intercept), format, { slot: replication.slot }, warned)

/** The factory's decoder with each decoded read passed through `intercept`. */
const intercepted = (
  factory: ReplicationReader.DecoderFactory,
  intercept: OpenOptions["intercept"]
): ReplicationReader.DecoderFactory =>
  intercept === undefined ? factory : (query) =>
    Effect.map(factory(query), (decoder): Decoder => ({
      ...decoder,
      decode: (messages) => Result.map(decoder.decode(messages), intercept)
    }))

/**
 * The decoder for the configured plugin, built on the replication connection: the row keys are
 * read from the catalog (again at every start of the stream), and the tables whose rows cannot be
 * followed by key are named in a warning.
 */
export const pluginDecoderFor = (replication: ReplicationConfig): ReplicationReader.DecoderFactory => (query) =>
  Effect.gen(function*() {
    const wal2json: typeof Wal2JsonDecoder | undefined = replication.plugin === "wal2json"
      ? yield* Effect.promise(() => import("./Wal2JsonDecoder.ts"))
      : undefined
    if (replication.plugin === "pgoutput") {
      const created = yield* Publication.ensure(query, replication.publication)
      if (created) {
        yield* Effect.logWarning("publication_created").pipe(
          Effect.annotateLogs({ publication: replication.publication, statement: Publication.createStatement(replication.publication) })
        )
      }
    }
    const keys = yield* KeyCatalog.load(query)
    const covered = wal2json === undefined
      ? yield* Publication.tables(query, replication.publication)
      : wal2json.covers({ addTables: replication.wal2jsonAddTables, filterTables: replication.wal2jsonFilterTables })
    const unidentified = KeyCatalog.unidentified(keys, covered)
    if (unidentified.length > 0) {
      yield* Effect.logWarning("tables_without_row_key").pipe(Effect.annotateLogs({
        tables: unidentified.map((entry) => `${entry.table}: ${entry.reason}`),
        note: "their changes are not kept in per-row order by partition key (see README, Delivery guarantees)"
      }))
    }
    if (wal2json !== undefined) {
      return wal2json.make({
        addTables: replication.wal2jsonAddTables,
        filterTables: replication.wal2jsonFilterTables,
        keys,
        transactionRecords: replication.transactionRecords
      }) satisfies Decoder
    }
    const pgoutput = yield* Effect.promise(() => import("./PgOutputDecoder.ts"))
    return pgoutput.make({ publication: replication.publication, keys, transactionRecords: replication.transactionRecords }) satisfies Decoder
  })

/** The replication reader on PostgreSQL. */
export const make = (
  options: { readonly pg: PgConfig; readonly replication: ReplicationConfig; readonly format?: FormatConfig | undefined }
): ReplicationSource["Service"] => {
  // unmatched EXCLUDE_COLUMNS patterns warned about: once for the source's life, not per session
  const warned = new Set<string>()
  return ReplicationSource.of({
    open: Effect.fn("ReplicationSource.open")(function*({ intercept, maxMessageBytes }: OpenOptions) {
      return yield* ReplicationReader.open({
        pg: options.pg,
        replication: options.replication,
        decoder: decoderFor(options.replication, options.format, intercept, warned),
        maxMessageBytes
      })
    })
  })
}

/** The live layer for explicit options. */
export const layer = (
  options: { readonly pg: PgConfig; readonly replication: ReplicationConfig; readonly format?: FormatConfig | undefined }
): Layer.Layer<ReplicationSource> =>
  Layer.succeed(ReplicationSource, make(options))

/** The live layer on the slot and plugin of the {@link ServiceConfig}. */
export const layerConfig: Layer.Layer<ReplicationSource, never, ServiceConfig> = Layer.effect(
  ReplicationSource,
  Effect.map(Effect.service(ServiceConfig), (config) => make({ pg: config.pg, replication: config.replication, format: config.format }))
)

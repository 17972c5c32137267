/**
 * The service's entry point: wires the layers and launches them. Signals reach the service through
 * the runtime: the first SIGTERM/SIGINT interrupts it and it stops gracefully (exit 0); a second
 * exits at once (130, {@link SecondSignal}). Exit codes: 0 after a graceful stop, 2 for an unusable
 * configuration, 1 for any other fatal error (each reported once, by the layer that failed).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Layer from "effect/Layer"
import * as Backfill from "./backfill/Backfill.ts"
import * as ServiceConfig from "./config/ServiceConfig.ts"
import * as FatalReport from "./FatalReport.ts"
import * as KinesisSdk from "./kinesis/KinesisSdk.ts"
import * as Leadership from "./leader/Leadership.ts"
import * as Health from "./observability/Health.ts"
import * as ProbeServer from "./observability/ProbeServer.ts"
import * as Logging from "./observability/Logging.ts"
import * as Pipeline from "./pipeline/Pipeline.ts"
import * as ReplicationSource from "./replication/ReplicationSource.ts"
import * as SecondSignal from "./SecondSignal.ts"
import * as Service from "./Service.ts"

const ConfigLive = ServiceConfig.layerConfig.pipe(Layer.tapError(FatalReport.reportConfigError))

const MainLive = Layer.mergeAll(
  Service.layer,
  ProbeServer.layerConfig.pipe(Layer.tapCause(FatalReport.reportFatal)),
  SecondSignal.layer
).pipe(
  Layer.provide(Layer.mergeAll(Leadership.layerConfig, ReplicationSource.layerConfig, Pipeline.layerConfig, Backfill.layerConfig)),
  Layer.provideMerge(KinesisSdk.layerConfig),
  Layer.provideMerge(Health.layer()),
  Layer.provide(Logging.layerConfig),
  Layer.provideMerge(ConfigLive)
)

NodeRuntime.runMain(Layer.launch(MainLive), { disableErrorReporting: true, teardown: FatalReport.teardown })

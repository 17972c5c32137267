import { it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import { describe, expect } from "vitest"
import * as Metrics from "../../src/observability/Metrics.ts"
import * as PrometheusText from "../../src/observability/PrometheusText.ts"

/** Runs `effect` with a registry of its own, and returns both texts of that registry afterwards. */
const bothTexts = (effect: Effect.Effect<void>) =>
  Effect.gen(function*() {
    yield* effect
    const context = yield* Effect.context<never>()
    return { ours: PrometheusText.format(context), effects: PrometheusMetrics.formatUnsafe(context) }
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

describe("Prometheus text", () => {
  it.effect("is effect's PrometheusMetrics text, byte for byte, for every metric the service declares, updated", () =>
    Effect.gen(function*() {
      const { ours, effects } = yield* bothTexts(Effect.gen(function*() {
        yield* Metrics.registerAll
        yield* Metric.update(Metric.withAttributes(Metrics.changesReceived, { action: "I" }), 300_000)
        yield* Metric.update(Metrics.changesDroppedFor("oversized"), 2)
        yield* Metric.update(Metrics.recordsPerBatch, 500)
        yield* Metric.update(Metrics.recordsPerBatch, 7)
        yield* Metric.update(Metrics.bytesPerBatch, 1_048_576)
        yield* Metric.update(Metrics.putRecordsDurationSeconds, 0.0213)
        yield* Metric.update(Metrics.frontierLsn, 0x16B374D848)
        yield* Metric.update(Metrics.replicationLagSeconds, 0.25)
        yield* Metrics.sampleMemory
      }))
      expect(ours).toContain("# TYPE cdc_batch_records histogram")
      expect(ours).toContain("cdc_changes_received_total{action=\"I\"} 300000")
      expect(ours).toBe(effects)
    }))

  it.effect("escapes label values and help text, sanitizes names, and writes summaries, frequencies and special values the same way", () =>
    Effect.gen(function*() {
      const { ours, effects } = yield* bothTexts(Effect.gen(function*() {
        const gauge = Metric.gauge("odd-name.with:chars__", { description: "a \\ help\ntext" })
        yield* Metric.update(Metric.withAttributes(gauge, { "1st label": "quote \" back \\ line\n", unit: "bytes" }), Number.NaN)
        yield* Metric.update(Metric.withAttributes(gauge, { kind: "inf" }), Infinity)
        yield* Metric.update(Metric.withAttributes(gauge, { kind: "-inf" }), -Infinity)
        const big = Metric.counter("big_total", { bigint: true })
        yield* Metric.update(big, 12345678901234567890n)
        const summary = Metric.summary("latency_seconds", { maxAge: "1 minute", maxSize: 10, quantiles: [0.5, 0.99] })
        yield* Metric.update(summary, 0.5)
        yield* Metric.update(summary, 1.5)
        const emptySummary = Metric.summary("empty_seconds", { maxAge: "1 minute", maxSize: 10, quantiles: [0.5] })
        yield* Metric.value(emptySummary)
        const frequency = Metric.frequency("seen_total", { description: "what was seen" })
        yield* Metric.update(frequency, "a")
        yield* Metric.update(frequency, "a")
        yield* Metric.update(frequency, "b\"c")
      }))
      expect(ours).toContain("+Inf")
      expect(ours).toContain("quantile=")
      expect(ours).toBe(effects)
    }))

  it.effect("is empty without metrics", () =>
    Effect.gen(function*() {
      const { ours, effects } = yield* bothTexts(Effect.void)
      expect(ours).toBe("")
      expect(effects).toBe("")
    }))
})

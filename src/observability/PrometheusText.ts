/**
 * The registered metrics in Prometheus's text exposition format (version 0.0.4), for GET /metrics:
 * one `# HELP` (when described) and `# TYPE` line per metric name, then one sample line per label
 * set; histograms as cumulative `_bucket{le=...}` lines with `+Inf`, `_sum` and `_count`.
 *
 * The output is the same, byte for byte, as `formatUnsafe` of effect's
 * `observability/PrometheusMetrics` (a test compares them on every metric the service declares):
 * that module imports Effect's HTTP router and server response (about 30 modules more, ~18 ms of
 * every start, and Schema with them) for the layer that serves it, which the service does not use.
 */
import type * as Context from "effect/Context"
import * as Metric from "effect/Metric"

const sanitizeMetricName = (name: string): string => {
  let sanitized = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  if (/^[0-9:]/.test(sanitized)) sanitized = "_" + sanitized
  return sanitized.replace(/_+/g, "_").replace(/_$/, "")
}

const sanitizeLabelName = (name: string): string => {
  let sanitized = name.replace(/[^a-zA-Z0-9_]/g, "_")
  if (/^[0-9]/.test(sanitized)) sanitized = "_" + sanitized
  return sanitized.replace(/_+/g, "_")
}

const escapeLabelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Infinity) return "+Inf"
  if (value === -Infinity) return "-Inf"
  return value.toString()
}

const formatLabels = (
  attributes: Metric.Metric.AttributeSet | undefined,
  extra?: readonly [string, string]
): string => {
  const labels: Array<string> = []
  if (attributes !== undefined) {
    for (const [key, value] of Object.entries(attributes)) {
      // units are part of the name, not labels
      if (key === "unit" || key === "time_unit") continue
      labels.push(`${sanitizeLabelName(key)}="${escapeLabelValue(value)}"`)
    }
  }
  if (extra !== undefined) labels.push(`${sanitizeLabelName(extra[0])}="${escapeLabelValue(extra[1])}"`)
  return labels.length > 0 ? `{${labels.join(",")}}` : ""
}

const TYPES = { Counter: "counter", Gauge: "gauge", Histogram: "histogram", Summary: "summary", Frequency: "counter" } as const

const formatSample = (name: string, metric: Metric.Metric.Snapshot, lines: Array<string>): void => {
  switch (metric.type) {
    case "Counter":
      lines.push(`${name}${formatLabels(metric.attributes)} ${formatValue(metric.state.count)}`)
      break
    case "Gauge":
      lines.push(`${name}${formatLabels(metric.attributes)} ${formatValue(metric.state.value)}`)
      break
    case "Histogram": {
      const state = metric.state
      for (const [boundary, cumulativeCount] of state.buckets) {
        if (boundary === Number.POSITIVE_INFINITY) continue
        lines.push(`${name}_bucket${formatLabels(metric.attributes, ["le", boundary.toString()])} ${cumulativeCount}`)
      }
      lines.push(`${name}_bucket${formatLabels(metric.attributes, ["le", "+Inf"])} ${state.count}`)
      const labels = formatLabels(metric.attributes)
      lines.push(`${name}_sum${labels} ${formatValue(state.sum)}`)
      lines.push(`${name}_count${labels} ${state.count}`)
      break
    }
    case "Summary": {
      const state = metric.state
      for (const [quantile, value] of state.quantiles) {
        if (value !== undefined) lines.push(`${name}${formatLabels(metric.attributes, ["quantile", quantile.toString()])} ${formatValue(value)}`)
      }
      const labels = formatLabels(metric.attributes)
      lines.push(`${name}_sum${labels} ${formatValue(state.sum)}`)
      lines.push(`${name}_count${labels} ${state.count}`)
      break
    }
    case "Frequency":
      for (const [key, count] of metric.state.occurrences) lines.push(`${name}${formatLabels(metric.attributes, ["key", key])} ${count}`)
      break
  }
}

/** Every metric registered in `context`'s registry, as Prometheus text (empty when there is none). */
export const format = (context: Context.Context<never>): string => {
  const byName = new Map<string, Array<Metric.Metric.Snapshot>>()
  for (const metric of Metric.snapshotUnsafe(context)) {
    const name = sanitizeMetricName(metric.id)
    const family = byName.get(name)
    if (family === undefined) byName.set(name, [metric])
    else family.push(metric)
  }
  const lines: Array<string> = []
  for (const [name, family] of byName) {
    const first = family[0]!
    if (first.description) lines.push(`# HELP ${name} ${escapeHelp(first.description)}`)
    lines.push(`# TYPE ${name} ${TYPES[first.type]}`)
    for (const metric of family) formatSample(name, metric, lines)
  }
  return lines.length > 0 ? lines.join("\n") + "\n" : ""
}

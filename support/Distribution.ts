/** Latency samples summarized: count, min, nearest-rank p50/p95/p99, max (the bench endpoint, the demo). */

/** Nearest-rank percentiles of a sample, in the sample's unit. */
export interface Distribution {
  readonly count: number
  readonly min: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

export const distribution = (samples: Float64Array): Distribution | undefined => {
  if (samples.length === 0) return undefined
  const sorted = Float64Array.from(samples).sort()
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
  return { count: sorted.length, min: sorted[0]!, p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: sorted[sorted.length - 1]! }
}

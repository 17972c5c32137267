/** The service's /metrics (Prometheus text exposition): scraped, parsed into samples, summed. */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Parses exposition text: `name{labels} value [timestamp]` lines; comments and blank lines ignored. */
export const parseMetrics = (text: string): ReadonlyArray<Sample> =>
  text.split("\n").filter((l) => l.length > 0 && !l.startsWith("#")).flatMap((line) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) return []
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    return [{ name: m[1]!, labels, value: Number(m[3]) }]
  })

/** The sum of a metric over the samples whose labels include `labels`; undefined when none. */
export const valueOf = (
  samples: ReadonlyArray<Sample>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number | undefined => {
  let total: number | undefined
  for (const s of samples) {
    if (s.name !== name || !Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue
    total = (total ?? 0) + s.value
  }
  return total
}

/** GET http://127.0.0.1:<port>/metrics, parsed; undefined when it does not answer (yet). */
export const scrape = async (port: number): Promise<ReadonlyArray<Sample> | undefined> => {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })
    return response.ok ? parseMetrics(await response.text()) : undefined
  } catch {
    return undefined
  }
}

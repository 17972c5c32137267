/**
 * Reads the service's /metrics (Prometheus text exposition): one value per metric name, the
 * largest across label sets (enough for the gauges and counters the tools watch).
 */

export type MetricValues = ReadonlyMap<string, number>

/** Parses exposition text: `name{labels} value [timestamp]` lines; comments ignored. */
export const parsePrometheus = (text: string): MetricValues => {
  const values = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("#")) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match === null) continue
    const value = Number(match[3])
    if (Number.isNaN(value)) continue
    const name = match[1]!
    const previous = values.get(name)
    values.set(name, previous === undefined ? value : Math.max(previous, value))
  }
  return values
}

/** Sums a metric over its label sets (e.g. a counter split by action). */
export const sumOf = (text: string, name: string): number | undefined => {
  let total: number | undefined
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match === null || match[1] !== name) continue
    const value = Number(match[3])
    if (!Number.isNaN(value)) total = (total ?? 0) + value
  }
  return total
}

/** GET http://127.0.0.1:<port>/metrics, or undefined when it does not answer (yet). */
export const scrape = async (port: number): Promise<string | undefined> => {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })
    return response.ok ? await response.text() : undefined
  } catch {
    return undefined
  }
}

/** README's Metrics table and a /metrics body, read for comparison by the tests. */
import { readFileSync } from "node:fs"

const readme = () => readFileSync(new URL("../../README.md", import.meta.url), "utf8")

/** Every metric README's Metrics table lists, with its type (`cdc_batch_records` → "histogram"). */
export const readmeMetrics = (): Map<string, string> => {
  const text = readme()
  const start = text.indexOf("### Metrics")
  const section = text.slice(start, text.indexOf("\n### ", start + 1))
  const metrics = new Map<string, string>()
  for (const row of section.split("\n").filter((line) => line.startsWith("| `cdc_"))) {
    const [names, type] = row.split("|").slice(1, 3).map((cell) => cell.trim())
    for (const m of names!.matchAll(/`(cdc_[a-z_]+)/g)) metrics.set(m[1]!, type!)
  }
  return metrics
}

/** The reasons README's row for cdc_changes_dropped_total names (in backticks). */
export const readmeDropReasons = (): Array<string> => {
  const row = readme().split("\n").find((line) => line.startsWith("| `cdc_changes_dropped_total"))!
  return [...row.split("|")[3]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!)
}

/** The cdc_ metrics a Prometheus text body declares (`# TYPE` lines), with their types. */
export const exportedMetrics = (body: string): Map<string, string> =>
  new Map([...body.matchAll(/^# TYPE (cdc_\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))

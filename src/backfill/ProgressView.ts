/**
 * A backfill's progress as `cli status` shows it: rows done, the estimated total (pg_class.reltuples),
 * rows per second since it started, and the time left at that rate.
 */
import type { Progress } from "./Store.ts"

export interface ProgressView {
  readonly table: string
  readonly state: string
  readonly rowsDone: number
  readonly estimatedRows: number | null
  readonly rowsPerSecond: number | null
  readonly etaSeconds: number | null
  readonly requestedAt: string
  readonly startedAt: string | null
  readonly finishedAt: string | null
  readonly error: string | null
}

export const view = (p: Progress): ProgressView => {
  const rate = p.elapsedSeconds !== undefined && p.elapsedSeconds > 0 && p.rowsDone > 0 ? p.rowsDone / p.elapsedSeconds : undefined
  const eta = p.state === "running" && rate !== undefined && p.estimatedRows !== undefined
    ? Math.max(0, (p.estimatedRows - p.rowsDone) / rate)
    : undefined
  return {
    table: `${p.schema}.${p.table}`,
    state: p.state,
    rowsDone: p.rowsDone,
    estimatedRows: p.estimatedRows ?? null,
    rowsPerSecond: rate === undefined ? null : Math.round(rate),
    etaSeconds: eta === undefined ? null : Math.round(eta),
    requestedAt: p.requestedAt,
    startedAt: p.startedAt ?? null,
    finishedAt: p.finishedAt ?? null,
    error: p.error ?? null
  }
}

const duration = (seconds: number): string => {
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`
}

/** One line per backfill. */
export const render = (views: ReadonlyArray<ProgressView>): Array<string> =>
  views.length === 0 ? ["  none"] : views.map((v) =>
    [
      `  ${v.table}`,
      v.state,
      `${v.rowsDone.toLocaleString("en-US")} rows of ~${v.estimatedRows === null ? "?" : v.estimatedRows.toLocaleString("en-US")}`,
      v.rowsPerSecond === null ? "- rows/s" : `${v.rowsPerSecond.toLocaleString("en-US")} rows/s`,
      v.etaSeconds === null ? "ETA -" : `ETA ${duration(v.etaSeconds)}`,
      ...(v.error === null ? [] : [`error: ${v.error}`])
    ].join("  "))

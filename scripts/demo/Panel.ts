/**
 * What the demo shows each second: a compact panel redrawn in place on a terminal, or one plain
 * line per second when stdout is not a terminal (a log, a pipe, a test); and the final summary.
 */
import type { LedgerSnapshot } from "./Ledger.ts"

export interface ServiceFigures {
  readonly published: number | undefined
  readonly lagBytes: number | undefined
  readonly lagSeconds: number | undefined
}

export interface PanelState {
  readonly elapsedSeconds: number
  readonly mode: string
  readonly ledger: LedgerSnapshot
  readonly service: ServiceFigures
  readonly writing: boolean
}

const ms = (n: number | undefined): string => (n === undefined ? "-" : `${Math.round(n)} ms`)
const num = (n: number | undefined): string => (n === undefined ? "-" : Math.round(n).toLocaleString("en-US"))

const truncate = (text: string, width: number): string => (text.length <= width ? text : `${text.slice(0, width - 1)}…`)

export const panel = (s: PanelState, width: number): string => {
  const l = s.ledger
  const lines = [
    `cdc-logical-replication demo — ${s.mode} — ${s.elapsedSeconds.toFixed(0)} s ${s.writing ? "(writing; Ctrl-C to stop)" : "(workload stopped)"}`,
    "",
    `  rows backfilled      ${num(l.backfilled).padStart(10)}   of ${num(l.backfillExpected)} in the table before the slot (R records)`,
    `  changes written      ${num(l.written).padStart(10)}   (insert ${num(l.writtenByAction.I)}, update ${num(l.writtenByAction.U)}, delete ${num(l.writtenByAction.D)})`,
    `  read from the stream ${num(l.arrived).padStart(10)}   (records read ${num(l.recordsRead)}, duplicates ${num(l.duplicates)})`,
    `  not yet arrived      ${num(l.missing).padStart(10)}   service lag ${s.service.lagBytes === undefined ? "-" : `${num(s.service.lagBytes)} B`}, ${s.service.lagSeconds === undefined ? "-" : `${s.service.lagSeconds.toFixed(2)} s`}; published ${num(s.service.published)}`,
    `  end-to-end latency   last ${ms(l.lastLatencyMs)}, p50 ${ms(l.latencyMs?.p50)}, p95 ${ms(l.latencyMs?.p95)}, p99 ${ms(l.latencyMs?.p99)}, max ${ms(l.latencyMs?.max)}`,
    "",
    "  sample record:",
    `  ${truncate(l.sample ?? "(none yet)", Math.max(40, width - 4))}`
  ]
  return lines.join("\n")
}

export const line = (s: PanelState): string => {
  const l = s.ledger
  return `[demo ${s.elapsedSeconds.toFixed(0).padStart(3)}s] written ${l.written} arrived ${l.arrived} outstanding ${l.missing} ` +
    `backfilled ${l.backfilled}/${l.backfillExpected} ` +
    `duplicates ${l.duplicates} latency p50 ${ms(l.latencyMs?.p50)} p99 ${ms(l.latencyMs?.p99)} ` +
    `service lag ${s.service.lagSeconds === undefined ? "-" : `${s.service.lagSeconds.toFixed(2)} s`}`
}

export const summary = (l: LedgerSnapshot, seconds: number, interrupted: boolean): string => [
  "",
  "Summary",
  `  backfilled: ${l.backfilled} of the ${l.backfillExpected} rows that were in the database before the slot (R records, apart from the live changes below)`,
  `  written: ${l.written} changes in ${seconds.toFixed(1)} s (insert ${l.writtenByAction.I}, update ${l.writtenByAction.U}, delete ${l.writtenByAction.D})`,
  `  arrived: ${l.arrived} of them read back from the stream (${l.missing} missing, ${l.duplicates} duplicates)`,
  `  latency: p50 ${ms(l.latencyMs?.p50)}, p95 ${ms(l.latencyMs?.p95)}, p99 ${ms(l.latencyMs?.p99)}, max ${ms(l.latencyMs?.max)}`,
  `  sample record: ${truncate(l.sample ?? "(none)", 400)}`,
  l.written > 0 && l.missing === 0 && l.backfilled === l.backfillExpected
    ? `RESULT: OK — every change written (${l.written}) arrived in the stream, and every row there before it (${l.backfilled}) was backfilled`
    : interrupted
      ? `RESULT: stopped (Ctrl-C) — ${l.missing} of ${l.written} changes written had not arrived yet`
      : `RESULT: FAILED — ${l.written === 0 ? "no change was written" : `${l.missing} of ${l.written} changes written never arrived`}` +
        `, ${l.backfilled} of ${l.backfillExpected} rows backfilled`
].join("\n")

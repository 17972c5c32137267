/**
 * EXCLUDE_COLUMNS: columns that never leave the database. A pattern is `schema.table.column`,
 * `table.column` (any schema) or `column` (any table); each part is a name as PostgreSQL stores it
 * (case-sensitive) in which `*` matches any run of characters. The filter answers, per table, which
 * column names are excluded; the answer is cached per table, so records pay one map lookup.
 */
import * as Result from "effect/Result"
import { glob } from "../config/Glob.ts"

export interface ColumnPattern {
  /** As written in EXCLUDE_COLUMNS. */
  readonly text: string
  readonly schema: RegExp
  readonly table: RegExp
  readonly column: RegExp
}

const any = /^/

/** Parses one pattern. */
export const parse = (text: string): Result.Result<ColumnPattern, string> => {
  const parts = text.split(".")
  if (parts.length > 3 || parts.some((part) => part.length === 0)) {
    return Result.fail(`${JSON.stringify(text)} is not schema.table.column, table.column or column`)
  }
  const [schema, table, column] = parts.length === 3 ? parts : parts.length === 2 ? ["*", ...parts] : ["*", "*", ...parts]
  return Result.succeed({
    text,
    schema: schema === "*" ? any : glob(schema!),
    table: table === "*" ? any : glob(table!),
    column: column === "*" ? any : glob(column!)
  })
}

/** Parses EXCLUDE_COLUMNS: comma-separated patterns; every bad one is named. */
export const parseList = (raw: string): Result.Result<ReadonlyArray<ColumnPattern>, string> => {
  const patterns: Array<ColumnPattern> = []
  const problems: Array<string> = []
  for (const item of raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
    const parsed = parse(item)
    if (Result.isSuccess(parsed)) patterns.push(parsed.success)
    else problems.push(parsed.failure)
  }
  return problems.length > 0 ? Result.fail(problems.join("; ")) : Result.succeed(patterns)
}

/** Whether a pattern names this column. */
export const matches = (pattern: ColumnPattern, schema: string, table: string, column: string): boolean =>
  pattern.schema.test(schema) && pattern.table.test(table) && pattern.column.test(column)

/** Which columns of a table are excluded. */
export type Excluded = (column: string) => boolean

export interface ColumnFilter {
  /** Whether any pattern is configured. */
  readonly active: boolean
  /** The excluded columns of a table; `undefined` when no pattern concerns the table. */
  readonly forTable: (schema: string, table: string) => Excluded | undefined
  /**
   * A row (column name to value) without its excluded columns: for records built from rows rather
   * than decoded (backfill). Returns the row itself when nothing is excluded.
   */
  readonly filterRow: <V>(schema: string, table: string, row: Readonly<Record<string, V>>) => Readonly<Record<string, V>>
}

/** A filter over the patterns. */
export const make = (patterns: ReadonlyArray<ColumnPattern>): ColumnFilter => {
  const cache = new Map<string, Excluded | undefined>()
  const forTable = (schema: string, table: string): Excluded | undefined => {
    if (patterns.length === 0) return undefined
    const name = `${schema}\u0000${table}`
    if (cache.has(name)) return cache.get(name)
    const concerned = patterns.filter((p) => p.schema.test(schema) && p.table.test(table))
    const excluded: Excluded | undefined = concerned.length === 0
      ? undefined
      : (column) => concerned.some((p) => p.column.test(column))
    if (cache.size > 10_000) cache.clear()
    cache.set(name, excluded)
    return excluded
  }
  return {
    active: patterns.length > 0,
    forTable,
    filterRow: (schema, table, row) => {
      const excluded = forTable(schema, table)
      if (excluded === undefined) return row
      const kept: Record<string, (typeof row)[string]> = {}
      for (const [column, value] of Object.entries(row)) if (!excluded(column)) kept[column] = value
      return kept
    }
  }
}

/** A column of the catalog: schema, table, column. */
export type CatalogColumn = readonly [string, string, string]

/** The patterns that match no column of the catalog. */
export const unmatched = (
  patterns: ReadonlyArray<ColumnPattern>,
  catalog: Iterable<CatalogColumn>
): ReadonlyArray<ColumnPattern> => {
  const left = new Set(patterns)
  for (const [schema, table, column] of catalog) {
    for (const pattern of left) if (matches(pattern, schema, table, column)) left.delete(pattern)
    if (left.size === 0) break
  }
  return [...left]
}

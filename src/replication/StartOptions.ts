/**
 * Writing the options clause of START_REPLICATION: `("name" 'value', ...)`, names as quoted
 * identifiers and values as string literals, so table lists and publication names cannot break it.
 */

/** A string literal for the options clause (single quotes doubled). */
export const quoteOptionValue = (value: string): string => `'${value.replaceAll("'", "''")}'`

/** An option name as a quoted identifier (double quotes doubled). */
export const quoteOptionName = (name: string): string => `"${name.replaceAll(`"`, `""`)}"`

/** The whole clause from name/value pairs. */
export const clause = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  `(${pairs.map(([name, value]) => `${quoteOptionName(name)} ${quoteOptionValue(value)}`).join(", ")})`

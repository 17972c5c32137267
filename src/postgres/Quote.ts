/**
 * Quoting for the SQL and replication commands the service writes itself (slot names, publication
 * names, table lists): every value a user configures reaches PostgreSQL through one of these.
 */

/** A quoted identifier: `"name"`, embedded double quotes doubled. */
export const identifier = (name: string): string => `"${name.replaceAll(`"`, `""`)}"`

/**
 * A string literal for SQL, as libpq's PQescapeLiteral writes it: single quotes doubled, and a
 * value with a backslash written as an escape string (`E'a\\b'`), so it means the same whatever
 * `standard_conforming_strings` says.
 */
export const literal = (value: string): string =>
  value.includes("\\")
    ? ` E'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`
    : `'${value.replaceAll("'", "''")}'`

/**
 * A string literal inside a replication command (START_REPLICATION's options): the walsender's
 * grammar knows only `'…'` with doubled quotes, and no escape strings.
 */
export const replicationLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`

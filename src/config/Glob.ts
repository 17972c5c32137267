/**
 * Name patterns as the configuration writes them (`KINESIS_STREAM_ROUTES`, `EXCLUDE_COLUMNS`): `*`
 * stands for any run of characters, everything else for itself.
 */

/** The anchored regular expression of one pattern part (`public`, `order*`, `*`). */
export const glob = (part: string): RegExp =>
  new RegExp(`^${part.split("*").map((piece) => piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)

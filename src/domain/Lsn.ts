/**
 * PostgreSQL log sequence numbers: 64-bit WAL positions, written `X/Y` in hex.
 */

/** A WAL position. */
export type Lsn = bigint

export const zero: Lsn = 0n

/** Parses `16/B374D848`; `undefined` when the text is not an LSN. */
export const parse = (text: string): Lsn | undefined => {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text)
  return m ? (BigInt("0x" + m[1]) << 32n) | BigInt("0x" + m[2]) : undefined
}

/** Formats as PostgreSQL does: upper-case hex, no leading zeros. */
export const format = (lsn: Lsn): string =>
  `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`

export const max = (a: Lsn, b: Lsn): Lsn => (a > b ? a : b)

/**
 * Rendering pgoutput's column types and text values the way wal2json (format-version 2) renders
 * them, so both plugins publish the same JSON: type names as PostgreSQL's format_type prints them
 * with the column's typmod, numbers unquoted as the server wrote them, booleans as true/false.
 * The rules were taken from wal2json's output on a real server (see test/decoding).
 */

/** A type known by name from a pgoutput Type message (user-defined types). */
export interface NamedType {
  /** "" for pg_catalog, as pgoutput sends it. */
  readonly namespace: string
  readonly name: string
}

/** Built-in scalar types: OID, name as format_type prints it (wal2json's spelling), array type OID. */
const builtinTypes: ReadonlyArray<readonly [number, string, number]> = [
  [16, "boolean", 1000], [17, "bytea", 1001], [18, "char", 1002], [19, "name", 1003], [20, "bigint", 1016],
  [21, "smallint", 1005], [23, "integer", 1007], [24, "regproc", 1008], [25, "text", 1009], [26, "oid", 1028],
  [27, "tid", 1010], [28, "xid", 1011], [29, "cid", 1012], [114, "json", 199], [142, "xml", 143], [600, "point", 1017],
  [601, "lseg", 1018], [602, "path", 1019], [603, "box", 1020], [604, "polygon", 1027], [628, "line", 629],
  [650, "cidr", 651], [700, "real", 1021], [701, "double precision", 1022], [718, "circle", 719], [774, "macaddr8", 775],
  [790, "money", 791], [829, "macaddr", 1040], [869, "inet", 1041], [1033, "aclitem", 1034], [1042, "bpchar", 1014],
  [1043, "character varying", 1015], [1082, "date", 1182], [1083, "time without time zone", 1183],
  [1114, "timestamp without time zone", 1115], [1184, "timestamp with time zone", 1185], [1186, "interval", 1187],
  [1266, "time with time zone", 1270], [1560, "bit", 1561], [1562, "bit varying", 1563], [1700, "numeric", 1231],
  [1790, "refcursor", 2201], [2202, "regprocedure", 2207], [2203, "regoper", 2208], [2204, "regoperator", 2209],
  [2205, "regclass", 2210], [2206, "regtype", 2211], [2950, "uuid", 2951], [2970, "txid_snapshot", 2949],
  [3220, "pg_lsn", 3221], [3614, "tsvector", 3643], [3615, "tsquery", 3645], [3734, "regconfig", 3735],
  [3769, "regdictionary", 3770], [3802, "jsonb", 3807], [3904, "int4range", 3905], [3906, "numrange", 3907],
  [3908, "tsrange", 3909], [3910, "tstzrange", 3911], [3912, "daterange", 3913], [3926, "int8range", 3927],
  [4072, "jsonpath", 4073], [4089, "regnamespace", 4090], [4096, "regrole", 4097], [4191, "regcollation", 4192],
  [4451, "int4multirange", 6150], [4532, "nummultirange", 6151], [4533, "tsmultirange", 6152],
  [4534, "tstzmultirange", 6153], [4535, "datemultirange", 6155], [4536, "int8multirange", 6157],
  [5038, "pg_snapshot", 5039], [5069, "xid8", 271]
]

const scalarNames = new Map<number, string>(builtinTypes.map(([oid, name]) => [oid, name]))
const arrayElements = new Map<number, number>(builtinTypes.map(([oid, , arrayOid]) => [arrayOid, oid]))

/** Names pg_catalog types go by in pgoutput Type messages (domains are sent as their base type). */
const catalogNames = new Map<string, string>([
  ["bool", "boolean"], ["int2", "smallint"], ["int4", "integer"], ["int8", "bigint"], ["float4", "real"],
  ["float8", "double precision"], ["varchar", "character varying"], ["time", "time without time zone"],
  ["timetz", "time with time zone"], ["timestamp", "timestamp without time zone"],
  ["timestamptz", "timestamp with time zone"], ["varbit", "bit varying"]
])

const BPCHAR = 1042
const VARCHAR = 1043
const TIME = 1083
const TIMESTAMP = 1114
const TIMESTAMPTZ = 1184
const INTERVAL = 1186
const TIMETZ = 1266
const BIT = 1560
const VARBIT = 1562
const NUMERIC = 1700
/** The length word PostgreSQL counts into character and numeric typmods. */
const VARHDRSZ = 4

const intervalRanges = new Map<number, string>([
  [1 << 2, " year"], [1 << 1, " month"], [1 << 3, " day"], [1 << 10, " hour"], [1 << 11, " minute"], [1 << 12, " second"],
  [(1 << 2) | (1 << 1), " year to month"], [(1 << 3) | (1 << 10), " day to hour"],
  [(1 << 3) | (1 << 10) | (1 << 11), " day to minute"], [(1 << 3) | (1 << 10) | (1 << 11) | (1 << 12), " day to second"],
  [(1 << 10) | (1 << 11), " hour to minute"], [(1 << 10) | (1 << 11) | (1 << 12), " hour to second"],
  [(1 << 11) | (1 << 12), " minute to second"]
])

/** A built-in scalar type's name with its typmod, as format_type prints it; `undefined` if not built in. */
const scalarTypeName = (oid: number, typmod: number): string | undefined => {
  const name = scalarNames.get(oid)
  if (name === undefined || typmod < 0) return name
  switch (oid) {
    case BPCHAR:
      return `character(${typmod - VARHDRSZ})`
    case VARCHAR:
      return `character varying(${typmod - VARHDRSZ})`
    case NUMERIC: {
      const packed = typmod - VARHDRSZ
      const scale = ((packed & 0x7ff) ^ 1024) - 1024
      return `numeric(${(packed >> 16) & 0xffff},${scale})`
    }
    case TIME:
      return `time(${typmod}) without time zone`
    case TIMETZ:
      return `time(${typmod}) with time zone`
    case TIMESTAMP:
      return `timestamp(${typmod}) without time zone`
    case TIMESTAMPTZ:
      return `timestamp(${typmod}) with time zone`
    case BIT:
      return `bit(${typmod})`
    case VARBIT:
      return `bit varying(${typmod})`
    case INTERVAL: {
      const range = intervalRanges.get((typmod >> 16) & 0x7fff) ?? ""
      const precision = typmod & 0xffff
      return `interval${range}${precision === 0xffff ? "" : `(${precision})`}`
    }
    default:
      return name
  }
}

/** A user-defined type's name as wal2json prints it: qualified unless in public or pg_catalog. */
const namedTypeName = (type: NamedType): string => {
  if (type.namespace === "" || type.namespace === "pg_catalog") {
    const plain = type.name.startsWith("_") ? type.name.slice(1) : type.name
    const suffix = type.name.startsWith("_") ? "[]" : ""
    return (catalogNames.get(plain) ?? plain) + suffix
  }
  const name = type.name.startsWith("_") ? quoted(type.name.slice(1)) + "[]" : quoted(type.name)
  return type.namespace === "public" ? name : `${quoted(type.namespace)}.${name}`
}

/** An identifier as format_type prints it: quoted unless a plain lower-case word (keywords are not checked). */
const quoted = (name: string): string => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll(`"`, `""`)}"`)

/**
 * The type name of a column as wal2json prints it. Built-in types by OID (with typmod), others
 * from the Type message pgoutput sent for them; an unknown OID is shown as `oid:<n>`.
 */
export const typeName = (oid: number, typmod: number, namedTypes: ReadonlyMap<number, NamedType>): string => {
  const scalar = scalarTypeName(oid, typmod)
  if (scalar !== undefined) return scalar
  const element = arrayElements.get(oid)
  if (element !== undefined) {
    if (element === 18) return `"char"[]`
    return `${scalarTypeName(element, typmod)}[]`
  }
  const named = namedTypes.get(oid)
  return named === undefined ? `oid:${oid}` : namedTypeName(named)
}

/** How a column's text value becomes JSON. */
export type ValueKind = "number" | "boolean" | "bytea" | "string"

/** wal2json's value rules are by exact type OID: domains over numbers are strings, as in wal2json. */
export const valueKind = (oid: number): ValueKind => {
  switch (oid) {
    case 20: case 21: case 23: case 26: case 700: case 701: case NUMERIC:
      return "number"
    case 16:
      return "boolean"
    case 17:
      return "bytea"
    default:
      return "string"
  }
}

/** A column's text value (as the server's output function wrote it) as wal2json's JSON. */
export const renderValue = (kind: ValueKind, text: string): string => {
  switch (kind) {
    case "number":
      // NaN and infinities are not JSON numbers: wal2json writes null for them
      return text === "NaN" || text === "Infinity" || text === "-Infinity" ? "null" : text
    case "boolean":
      return text === "t" ? "true" : "false"
    case "bytea":
      return JSON.stringify(text.startsWith("\\x") ? text.slice(2) : text)
    case "string":
      return JSON.stringify(text)
  }
}

/**
 * Where records go, as configured: KINESIS_STREAM (a stream name or ARN) and KINESIS_STREAM_ROUTES
 * (`schema.table=stream`, comma-separated, `*` in either part matching any run of characters).
 */
import * as Result from "effect/Result"
import { glob } from "./Glob.ts"

/** A stream name, or a stream ARN from which the name is taken. */
export interface StreamRef {
  readonly name: string
  readonly arn: string | undefined
}

export const parseStream = (raw: string): Result.Result<StreamRef, string> => {
  const arn = /^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream\/([a-zA-Z0-9_.-]{1,128})$/.exec(raw)
  if (arn) return Result.succeed({ name: arn[1]!, arn: raw })
  if (/^[a-zA-Z0-9_.-]{1,128}$/.test(raw)) return Result.succeed({ name: raw, arn: undefined })
  return Result.fail(`must be a stream name ([a-zA-Z0-9_.-], 1-128) or a stream ARN, got ${JSON.stringify(raw)}`)
}

/** Tables whose records go to a stream. */
export interface Route {
  /** `schema.table` as written. */
  readonly pattern: string
  readonly schema: RegExp
  readonly table: RegExp
  readonly stream: StreamRef
}

/** Parses `public.orders=orders-cdc,public.*=app-cdc`; every bad route is named. */
export const parseRoutes = (raw: string): Result.Result<ReadonlyArray<Route>, string> => {
  const routes: Array<Route> = []
  const problems: Array<string> = []
  for (const item of raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
    const equals = item.indexOf("=")
    const pattern = equals < 0 ? "" : item.slice(0, equals).trim()
    const parts = pattern.split(".")
    if (parts.length !== 2 || parts.some((part) => part.length === 0)) {
      problems.push(`${JSON.stringify(item)} is not schema.table=stream`)
      continue
    }
    const stream = parseStream(item.slice(equals + 1).trim())
    if (Result.isFailure(stream)) {
      problems.push(`${JSON.stringify(item)}: the stream ${stream.failure}`)
      continue
    }
    routes.push({ pattern, schema: glob(parts[0]!), table: glob(parts[1]!), stream: stream.success })
  }
  return problems.length > 0 ? Result.fail(problems.join("; ")) : Result.succeed(routes)
}

/**
 * The one place that decides what a foreign failure means: every SQLSTATE, every @effect/sql
 * `SqlError`, every AWS SDK, HTTP or socket error becomes one of the service's errors
 * (`Errors.ts`) with the reason that says whether it is retried. Nothing else in `src/` looks at
 * SQLSTATEs or AWS error names to decide between retrying and stopping.
 */
import type * as PgProtocol from "@effect/sql-pg/PgProtocol"
import type { SqlError } from "effect/sql/SqlError"
import { KinesisError, type KinesisErrorReason, PgError, type PgErrorReason, SlotError } from "./Errors.ts"

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** The SQLSTATEs the service reacts to by name. */
export const SqlState = {
  /** "replication slot … is active for PID n" */
  objectInUse: "55006",
  /** the slot exists already (another instance created it a moment ago) */
  duplicateObject: "42710",
  /** the output plugin's library is not installed */
  undefinedFile: "58P01",
  invalidAuthorizationSpecification: "28000",
  invalidPassword: "28P01"
} as const

/** The reason for an ErrorResponse's SQLSTATE. */
export const pgReasonOf = (sqlState: string): PgErrorReason => {
  if (sqlState.startsWith("08")) return "Connection"
  if (sqlState === SqlState.invalidAuthorizationSpecification || sqlState === SqlState.invalidPassword) return "Authentication"
  // insufficient resources, operator intervention (shutdown, starting up), object in use,
  // serialization failure, deadlock, lock not available
  if (
    sqlState.startsWith("53") || sqlState.startsWith("57P") || sqlState === SqlState.objectInUse ||
    sqlState === "40001" || sqlState === "40P01" || sqlState === "55P03"
  ) return "Unavailable"
  return "Statement"
}

/** An ErrorResponse (on our own protocol connection) as a {@link PgError}. */
export const fromErrorResponse = (fields: PgProtocol.ErrorFields): PgError => {
  const code = fields.code ?? "XX000"
  return new PgError({
    reason: pgReasonOf(code),
    code,
    message: fields.message ?? "unknown server error",
    detail: fields.detail,
    hint: fields.hint
  })
}

const tlsErrorCodes = /CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS|ERR_SSL|HOSTNAME|ALTNAME/

/** What to do about a failed TLS handshake, by node's error code. */
export const tlsAdvice = (code: string | undefined): string => {
  if (code === undefined) return "check PGSSLMODE and PGSSLROOTCERT"
  if (/ALTNAME|HOSTNAME/.test(code)) {
    return "the certificate is not for this host name: set PGHOST to a name the certificate carries, or PGSSLMODE=verify-ca to check the chain only"
  }
  if (/EXPIRED|NOT_YET_VALID/.test(code)) return "the server's certificate is outside its validity period: renew it"
  if (/SELF_SIGNED|UNABLE_TO_|UNTRUSTED/.test(code)) {
    return "the certificate does not lead to a trusted root: set PGSSLROOTCERT to the CA bundle that signed it (RDS: the global bundle)"
  }
  return "check PGSSLMODE and PGSSLROOTCERT"
}

const causeChain = (error: unknown): ReadonlyArray<unknown> => {
  const chain: Array<unknown> = []
  let current: unknown = error
  while (current !== undefined && current !== null && chain.length < 5) {
    chain.push(current)
    current = typeof current === "object" && "cause" in current ? (current as { readonly cause?: unknown }).cause : undefined
  }
  return chain
}

const stringField = (value: unknown, key: string): string | undefined => {
  if (typeof value !== "object" || value === null || !(key in value)) return undefined
  const field = (value as Record<string, unknown>)[key]
  return typeof field === "string" && field.length > 0 ? field : undefined
}

/**
 * An @effect/sql-pg `SqlError` (the leader session, the CLI) as a {@link PgError}: its
 * AuthenticationError is `Authentication`, a certificate or TLS failure anywhere in its causes is
 * `Tls`, a SQLSTATE is classified as on our own connection, anything else is `Connection`.
 */
export const fromSqlError = (error: SqlError): PgError => {
  const chain = causeChain(error)
  const message = chain.map((c) => stringField(c, "message"))
    .reduce((acc: Array<string>, m) => m === undefined || acc.some((seen) => seen.includes(m)) ? acc : [...acc, m], [])
    .join(": ") || error.message
  if (error.reason._tag === "AuthenticationError") return new PgError({ reason: "Authentication", message })
  const codes = chain.map((c) => stringField(c, "code"))
  const tlsCode = codes.find((code) => code !== undefined && tlsErrorCodes.test(code))
  if (tlsCode !== undefined || /refused TLS|does not support TLS/i.test(message)) {
    return new PgError({
      reason: "Tls",
      message: tlsCode === undefined ? message : `${message} (${tlsCode}): ${tlsAdvice(tlsCode)}`
    })
  }
  const sqlState = codes.find((code) => code !== undefined && /^[0-9A-Z]{5}$/.test(code))
  if (sqlState !== undefined) return new PgError({ reason: pgReasonOf(sqlState), code: sqlState, message })
  return new PgError({ reason: "Connection", message, cause: error })
}

/**
 * A server error about the slot as a {@link SlotError} where it is one: object in use means another
 * walsender streams the slot (`Active`, retried); an undefined file while creating the slot means
 * the plugin's library is missing (`PluginUnavailable`). (Streaming reports removed WAL with the
 * same SQLSTATE, so there it is not read as a missing plugin.) Anything else stays the
 * {@link PgError} it is.
 */
export const slotErrorOf = (
  options: { readonly slot: string; readonly plugin: string; readonly creating?: boolean },
  error: PgError
): SlotError | PgError => {
  if (error.code === SqlState.objectInUse) {
    const pid = /PID (\d+)/i.exec(error.message)?.[1]
    return SlotError.active(options.slot, pid === undefined ? undefined : Number(pid))
  }
  if (options.creating === true && error.code === SqlState.undefinedFile) {
    return SlotError.pluginUnavailable(
      `cannot create replication slot "${options.slot}": output plugin ${options.plugin} is not installed on the server ` +
        `(${error.message}): install it, or set REPLICATION_PLUGIN to one that is`,
      options.slot
    )
  }
  return error
}

// ---------------------------------------------------------------------------------------------
// Kinesis

/** Known AWS and socket error codes, by reason; codes not listed are classified by HTTP status. */
const kinesisReasons: ReadonlyMap<string, KinesisErrorReason> = new Map<string, KinesisErrorReason>([
  ...[
    "ThrottlingException", "Throttling", "ProvisionedThroughputExceededException", "LimitExceededException",
    "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
    "ThrottledException", "SlowDown", "KMSThrottlingException"
  ].map((code) => [code, "Throttled"] as const),
  ...[
    "InternalFailure", "InternalFailureException", "InternalError", "InternalServerError", "InternalServiceError",
    "ServiceUnavailable", "ServiceUnavailableException", "InvalidResponse"
  ].map((code) => [code, "ServerError"] as const),
  ...[
    "ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN",
    "EAI_AGAIN", "ENOTFOUND", "TimeoutError", "RequestTimeout", "RequestTimeoutException", "NetworkingError"
  ].map((code) => [code, "Network"] as const),
  // The provider chain could not get credentials now (IMDS/ECS/STS unreachable or slow, a web
  // identity token rotated late, a session token that expired before its refresh): the SDK asks
  // the provider again on the next attempt, so these clear up on their own.
  ...[
    "CredentialsProviderError", "ProviderError", "TokenProviderError", "ExpiredTokenException", "ExpiredToken",
    "RequestExpired", "IDPCommunicationError", "IDPCommunicationErrorException"
  ].map((code) => [code, "CredentialsUnavailable"] as const),
  // AWS does not accept what it was given: the key does not exist, the secret is wrong.
  ...[
    "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature", "IncompleteSignatureException",
    "MissingAuthenticationToken", "InvalidClientTokenId", "InvalidIdentityToken", "InvalidIdentityTokenException"
  ].map((code) => [code, "InvalidCredentials"] as const),
  ...["AccessDeniedException", "AccessDenied"].map((code) => [code, "AccessDenied"] as const),
  ...[
    "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException", "KMSNotFoundException",
    "KMSOptInRequired"
  ].map((code) => [code, "KmsUnusable"] as const),
  ["ResourceNotFoundException", "StreamMissing"],
  ...["ValidationException", "InvalidArgumentException", "SerializationException"].map((code) => [code, "InvalidRequest"] as const)
])

const advice: Readonly<Record<KinesisErrorReason, string>> = {
  Throttled: "Kinesis is throttling: retrying with backoff (add shards or lower the write rate if it persists)",
  ServerError: "Kinesis reported a server error: retrying with backoff",
  Network:
    "cannot reach Kinesis (network or timeout): retrying with backoff; check AWS_ENDPOINT_URL_KINESIS and connectivity if it persists",
  CredentialsUnavailable:
    "AWS credentials could not be obtained or had expired: retrying with backoff; if it persists, check the credentials " +
    "the SDK's default chain finds (env, profile, web identity / IRSA, ECS or EC2 instance role) and that IMDS/STS are reachable",
  InvalidCredentials:
    "AWS does not accept the credentials (unknown access key or wrong secret): fix the credentials the SDK's default chain finds (env, profile, role)",
  AccessDenied: "the credentials lack permission: grant kinesis:PutRecords and kinesis:DescribeStreamSummary on the stream",
  KmsUnusable: "the stream's KMS key cannot be used: check the key is enabled and the role may use it (kms:GenerateDataKey)",
  StreamMissing: "the stream does not exist: create it or fix KINESIS_STREAM (and AWS_REGION)",
  InvalidRequest: "Kinesis rejected the request as invalid: check KINESIS_STREAM, partition keys and record sizes",
  Unknown: "unrecognised Kinesis error, not retried: check the message and the stream's configuration"
}

const networkMessage = /socket hang up|timed? ?out|ECONNRESET|ECONNREFUSED|EPIPE|network/i

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

/** Errors of the SDK's credential providers, whatever socket error they wrap. */
const providerErrors: ReadonlySet<string> = new Set(["CredentialsProviderError", "ProviderError", "TokenProviderError"])

/** The code, HTTP status and message of anything the SDK (or a socket) throws. */
const facts = (error: unknown) => {
  // Node socket errors carry `code` (ECONNRESET); SDK service exceptions carry `name` = the service's code.
  // A provider error that could not reach IMDS copies the socket's `code` onto itself: it is still
  // about credentials, not about reaching Kinesis.
  const errno = stringField(error, "code")
  const name = stringField(error, "name")
  const code = name !== undefined && providerErrors.has(name)
    ? name
    : errno !== undefined && /^E[A-Z_]+$/.test(errno)
    ? errno
    : (stringField(error, "Code") ?? stringField(error, "__type")?.split("#").pop() ??
      (name !== undefined && name !== "Error" ? name : errno))
  const status = field(field(error, "$metadata"), "httpStatusCode")
  const message = stringField(error, "message") ?? (typeof error === "string" ? error : "")
  return { code, httpStatus: typeof status === "number" ? status : undefined, message }
}

/** The first line of a message, short enough for a log line. */
const oneLine = (message: string): string => {
  const first = message.split(/\r?\n/, 1)[0]?.trim() ?? ""
  return first.length > 200 ? `${first.slice(0, 200)}…` : first
}

const kinesisError = (reason: KinesisErrorReason, code: string, detail: string, what = advice[reason]): KinesisError =>
  new KinesisError({
    reason,
    code,
    message: `Kinesis ${code}${detail.length > 0 && detail !== code ? ` (${oneLine(detail)})` : ""}: ${what}`
  })

/**
 * A failed Kinesis request (anything the SDK throws) as a {@link KinesisError}. Codes not known
 * are retried only when the transport says so (HTTP 5xx, or a socket-level message); anything else
 * unknown is fatal, so that a misconfiguration stops with its message instead of retrying for ever
 * without a word.
 */
export const fromAws = (error: unknown): KinesisError => {
  if (error instanceof KinesisError) return error
  const { code, httpStatus, message } = facts(error)
  const known = code === undefined ? undefined : kinesisReasons.get(code)
  const reason: KinesisErrorReason = known ??
    (httpStatus !== undefined && httpStatus >= 500
      ? "ServerError"
      : httpStatus === undefined && networkMessage.test(message)
      ? "Network"
      : "Unknown")
  return kinesisError(reason, code ?? (httpStatus !== undefined ? `HTTP${httpStatus}` : "UnknownError"), message)
}

/**
 * Records that failed inside an accepted PutRecords, by their ErrorCode (`ProvisionedThroughput…`,
 * `InternalFailure`, KMS errors): known codes mean what they mean for a request; unknown ones are
 * retried, since the request itself was valid. `failed` of `total` records failed.
 */
export const fromRecordFailure = (code: string, failed: number, total: number): KinesisError => {
  const known = kinesisReasons.get(code)
  const reason: KinesisErrorReason = known === undefined || known === "Unknown" ? "ServerError" : known
  return kinesisError(
    reason,
    code,
    "",
    `${failed} of ${total} records failed; ${KinesisError.retriableReason(reason) ? "retrying them" : advice[reason]}`
  )
}

/**
 * The one place that decides what a Kinesis failure means: every SDK, HTTP or socket error becomes a
 * {@link KinesisError} whose `retriable` flag drives the publisher (retry for ever, or stop), and whose
 * message is one line: the code and what to do about it.
 */
import { KinesisError } from "../Errors.ts"

type Category = "throttling" | "server" | "network" | "credentials" | "permissions" | "kms" | "missing" | "invalid"

/** Known codes, by category. Throttling, server and network codes are retriable; the others are fatal. */
const categories: ReadonlyMap<string, Category> = new Map<string, Category>([
  ...[
    "ThrottlingException", "Throttling", "ProvisionedThroughputExceededException", "LimitExceededException",
    "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
    "ThrottledException", "SlowDown", "KMSThrottlingException"
  ].map((code) => [code, "throttling"] as const),
  ...[
    "InternalFailure", "InternalFailureException", "InternalError", "InternalServerError", "InternalServiceError",
    "ServiceUnavailable", "ServiceUnavailableException"
  ].map((code) => [code, "server"] as const),
  ...[
    "ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN",
    "EAI_AGAIN", "ENOTFOUND", "TimeoutError", "RequestTimeout", "RequestTimeoutException", "NetworkingError"
  ].map((code) => [code, "network"] as const),
  ...[
    "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "ExpiredToken",
    "IncompleteSignature", "IncompleteSignatureException", "MissingAuthenticationToken", "InvalidClientTokenId",
    "CredentialsProviderError"
  ].map((code) => [code, "credentials"] as const),
  ...["AccessDeniedException", "AccessDenied"].map((code) => [code, "permissions"] as const),
  ...[
    "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException", "KMSNotFoundException",
    "KMSOptInRequired"
  ].map((code) => [code, "kms"] as const),
  ["ResourceNotFoundException", "missing"],
  ...["ValidationException", "InvalidArgumentException", "SerializationException"].map((code) => [code, "invalid"] as const)
])

const retriableCategories: ReadonlySet<Category> = new Set<Category>(["throttling", "server", "network"])

const advice: Record<Category, string> = {
  throttling: "Kinesis is throttling: retrying with backoff (add shards or lower the write rate if it persists)",
  server: "Kinesis reported a server error: retrying with backoff",
  network: "cannot reach Kinesis (network or timeout): retrying with backoff; check AWS_ENDPOINT_URL_KINESIS and connectivity if it persists",
  credentials: "AWS credentials are missing, invalid or expired: fix the credentials the SDK's default chain finds (env, profile, role)",
  permissions: "the credentials lack permission: grant kinesis:PutRecords and kinesis:DescribeStreamSummary on the stream",
  kms: "the stream's KMS key cannot be used: check the key is enabled and the role may use it (kms:GenerateDataKey)",
  missing: "the stream does not exist: create it or fix KINESIS_STREAM (and AWS_REGION)",
  invalid: "Kinesis rejected the request as invalid: check KINESIS_STREAM, partition keys and record sizes"
}

const networkMessage = /socket hang up|timed? ?out|ECONNRESET|ECONNREFUSED|EPIPE|network/i

interface ErrorFacts {
  readonly code: string | undefined
  readonly httpStatus: number | undefined
  readonly message: string
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

const text = (value: unknown): string | undefined => (typeof value === "string" && value.length > 0 ? value : undefined)

const facts = (error: unknown): ErrorFacts => {
  // Node socket errors carry `code` (ECONNRESET); SDK service exceptions carry `name` = the service's code.
  const errno = text(field(error, "code"))
  const name = text(field(error, "name"))
  const code = errno !== undefined && /^E[A-Z_]+$/.test(errno)
    ? errno
    : (text(field(error, "Code")) ?? text(field(error, "__type"))?.split("#").pop() ??
      (name !== undefined && name !== "Error" ? name : errno))
  const status = field(field(error, "$metadata"), "httpStatusCode")
  const message = text(field(error, "message")) ?? (typeof error === "string" ? error : "")
  return { code, httpStatus: typeof status === "number" ? status : undefined, message }
}

/** The first line of a message, short enough for a log line. */
const oneLine = (message: string): string => {
  const first = message.split(/\r?\n/, 1)[0]?.trim() ?? ""
  return first.length > 200 ? `${first.slice(0, 200)}…` : first
}

/** Classifies a failed Kinesis request (any thrown value) into a {@link KinesisError}. */
export const classify = (error: unknown): KinesisError => {
  if (error instanceof KinesisError) return error
  const { code, httpStatus, message } = facts(error)
  const known = code === undefined ? undefined : categories.get(code)
  // Unknown codes: retriable only when the transport says so (HTTP 5xx, or a socket-level message);
  // anything else unknown is fatal, so that a misconfiguration stops with its message instead of
  // retrying for ever without a word.
  const category: Category | undefined = known ??
    (httpStatus !== undefined && httpStatus >= 500
      ? "server"
      : httpStatus === undefined && networkMessage.test(message)
      ? "network"
      : undefined)
  const finalCode = code ?? (httpStatus !== undefined ? `HTTP${httpStatus}` : "UnknownError")
  const detail = oneLine(message)
  const what = category === undefined
    ? "unrecognised Kinesis error, not retried: check the message and the stream's configuration"
    : advice[category]
  return new KinesisError({
    code: finalCode,
    retriable: category !== undefined && retriableCategories.has(category),
    message: `Kinesis ${finalCode}${detail.length > 0 && detail !== finalCode ? ` (${detail})` : ""}: ${what}`
  })
}

/**
 * A failed record inside an otherwise successful PutRecords (ProvisionedThroughputExceededException,
 * InternalFailure, KMS errors...): always retried, since the request itself was valid.
 */
export const recordFailureIsRetriable = (_errorCode: string): boolean => true

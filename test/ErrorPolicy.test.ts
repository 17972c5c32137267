/** The one error policy: every foreign failure gets the reason (and so the retry decision) it should. */
import { describe, expect, it } from "@effect/vitest"
import { AuthenticationError, ConnectionError, SqlError, UnknownError } from "effect/sql/SqlError"
import { DecodeError, KinesisError, PgError, SlotError } from "../src/Errors.ts"
import * as ErrorPolicy from "../src/ErrorPolicy.ts"

/** An SDK service exception as the SDK throws it: `name` is the code, `$metadata` the HTTP status. */
const sdkError = (name: string, httpStatusCode = 400, message = `${name} message`) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode } })

const socketError = (code: string, message = `connect ${code} 127.0.0.1:4567`) => Object.assign(new Error(message), { code })

/** A credential-provider failure as @smithy/property-provider throws it (no HTTP metadata). */
const providerError = (name: string, message: string) => Object.assign(new Error(message), { name, tryNextLink: false })

const cases: ReadonlyArray<readonly [string, unknown, KinesisError["reason"], boolean]> = [
  // throttling: retriable
  ["ThrottlingException", sdkError("ThrottlingException"), "Throttled", true],
  ["ProvisionedThroughputExceededException", sdkError("ProvisionedThroughputExceededException"), "Throttled", true],
  ["LimitExceededException", sdkError("LimitExceededException"), "Throttled", true],
  ["RequestLimitExceeded", sdkError("RequestLimitExceeded"), "Throttled", true],
  ["KMSThrottlingException", sdkError("KMSThrottlingException"), "Throttled", true],
  // 5xx: retriable
  ["InternalFailure", sdkError("InternalFailure", 500), "ServerError", true],
  ["ServiceUnavailable", sdkError("ServiceUnavailable", 503), "ServerError", true],
  ["unknown code with HTTP 502", sdkError("SomethingOdd", 502), "ServerError", true],
  // network and timeouts: retriable
  ["ECONNREFUSED", socketError("ECONNREFUSED"), "Network", true],
  ["ECONNRESET", socketError("ECONNRESET"), "Network", true],
  ["ETIMEDOUT", socketError("ETIMEDOUT"), "Network", true],
  ["EPIPE", socketError("EPIPE"), "Network", true],
  ["socket hang up", new Error("socket hang up"), "Network", true],
  ["TimeoutError", sdkError("TimeoutError", undefined as unknown as number), "Network", true],
  ["RequestTimeout", sdkError("RequestTimeout"), "Network", true],
  // credentials that cannot be had right now: retriable
  ["CredentialsProviderError", providerError("CredentialsProviderError", "Could not load credentials from any providers"), "CredentialsUnavailable", true],
  ["ProviderError (IMDS)", providerError("ProviderError", "Error response received from instance metadata service"), "CredentialsUnavailable", true],
  [
    "ProviderError carrying the socket's ECONNREFUSED (IMDS unreachable)",
    Object.assign(providerError("ProviderError", "Unable to connect to instance metadata service"), { code: "ECONNREFUSED" }),
    "CredentialsUnavailable",
    true
  ],
  ["ExpiredTokenException (a token that expired before its refresh)", sdkError("ExpiredTokenException", 403), "CredentialsUnavailable", true],
  ["IDPCommunicationError (STS cannot reach the identity provider)", sdkError("IDPCommunicationError", 400), "CredentialsUnavailable", true],
  // credentials AWS does not accept, or that may not write: fatal
  ["UnrecognizedClientException", sdkError("UnrecognizedClientException"), "InvalidCredentials", false],
  ["InvalidSignatureException", sdkError("InvalidSignatureException", 403), "InvalidCredentials", false],
  ["AccessDeniedException", sdkError("AccessDeniedException"), "AccessDenied", false],
  // fatal
  ["ValidationException", sdkError("ValidationException"), "InvalidRequest", false],
  ["ResourceNotFoundException", sdkError("ResourceNotFoundException"), "StreamMissing", false],
  ["KMSDisabledException", sdkError("KMSDisabledException"), "KmsUnusable", false],
  ["KMSInvalidStateException", sdkError("KMSInvalidStateException"), "KmsUnusable", false],
  ["KMSAccessDeniedException", sdkError("KMSAccessDeniedException"), "KmsUnusable", false],
  ["KMSNotFoundException", sdkError("KMSNotFoundException"), "KmsUnusable", false],
  ["KMSOptInRequired", sdkError("KMSOptInRequired"), "KmsUnusable", false],
  ["InvalidArgumentException", sdkError("InvalidArgumentException"), "InvalidRequest", false],
  ["unknown 4xx code", sdkError("BrandNewException", 400), "Unknown", false],
  ["a plain unknown Error", new Error("something else"), "Unknown", false]
]

describe("ErrorPolicy.fromAws", () => {
  it.each(cases)("%s → %s, retriable=%s", (_name, error, reason, retriable) => {
    const classified = ErrorPolicy.fromAws(error)
    expect(classified).toBeInstanceOf(KinesisError)
    expect(classified.reason).toBe(reason)
    expect(classified.retriable).toBe(retriable)
  })

  it("keeps the code and writes one line that says what to do", () => {
    const error = ErrorPolicy.fromAws(sdkError("ResourceNotFoundException", 400, "Stream test under account 1 not found.\nmore detail"))
    expect(error.code).toBe("ResourceNotFoundException")
    expect(error.message).not.toContain("\n")
    expect(error.message).toContain("ResourceNotFoundException")
    expect(error.message).toContain("KINESIS_STREAM")
    const network = ErrorPolicy.fromAws(socketError("ECONNREFUSED"))
    expect(network.code).toBe("ECONNREFUSED")
    expect(network.message).toContain("AWS_ENDPOINT_URL_KINESIS")
    expect(ErrorPolicy.fromAws(sdkError("InvalidSignatureException", 403)).message).toContain("credentials")
    expect(ErrorPolicy.fromAws(providerError("CredentialsProviderError", "x")).message).toMatch(/retrying with backoff.*IMDS\/STS/)
  })

  it("names unknown status-only failures by their HTTP status", () => {
    const error = ErrorPolicy.fromAws({ $metadata: { httpStatusCode: 503 } })
    expect(error.code).toBe("HTTP503")
    expect(error.retriable).toBe(true)
  })

  it("returns an already classified error unchanged", () => {
    const error = new KinesisError({ reason: "Throttled", code: "X", message: "m" })
    expect(ErrorPolicy.fromAws(error)).toBe(error)
  })
})

describe("ErrorPolicy.fromRecordFailure", () => {
  it("retries throttled, failed and unknown records; stops on a KMS key that cannot be used", () => {
    for (const code of ["ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException", "Whatever"]) {
      expect(ErrorPolicy.fromRecordFailure(code, 1, 2).retriable, code).toBe(true)
    }
    for (const code of ["KMSAccessDeniedException", "KMSDisabledException", "KMSNotFoundException", "AccessDeniedException"]) {
      const error = ErrorPolicy.fromRecordFailure(code, 3, 10)
      expect(error.retriable, code).toBe(false)
      expect(error.message).toContain("3 of 10 records failed")
    }
  })
})

describe("ErrorPolicy for PostgreSQL", () => {
  it.each([
    ["08006", "Connection", true],
    ["57P01", "Unavailable", true], // admin_shutdown: the server restarts
    ["57P03", "Unavailable", true], // cannot_connect_now: starting up
    ["53300", "Unavailable", true], // too_many_connections
    ["55006", "Unavailable", true], // object_in_use
    ["40P01", "Unavailable", true], // deadlock
    ["28P01", "Authentication", false],
    ["28000", "Authentication", false],
    ["3D000", "Statement", false], // the database does not exist
    ["42501", "Statement", false], // insufficient privilege
    ["42P01", "Statement", false]
  ] as const)("SQLSTATE %s → %s, retriable=%s", (code, reason, retriable) => {
    const error = ErrorPolicy.fromErrorResponse({ code, message: "m" } as Parameters<typeof ErrorPolicy.fromErrorResponse>[0])
    expect(error).toBeInstanceOf(PgError)
    expect(error).toMatchObject({ reason, code })
    expect(error.retriable).toBe(retriable)
  })

  it("turns object-in-use on a slot into SlotError Active with the pid, a missing plugin at creation into PluginUnavailable", () => {
    const options = { slot: "s", plugin: "wal2json" }
    const active = ErrorPolicy.slotErrorOf(
      options,
      new PgError({ reason: "Unavailable", code: "55006", message: `replication slot "s" is active for PID 4242` })
    )
    expect(active).toMatchObject({ _tag: "SlotError", reason: "Active", pid: 4242 })
    expect(active.retriable).toBe(true)
    const undefinedFile = new PgError({ reason: "Statement", code: "58P01", message: "could not access file" })
    const plugin = ErrorPolicy.slotErrorOf({ ...options, creating: true }, undefinedFile)
    expect(plugin).toMatchObject({ _tag: "SlotError", reason: "PluginUnavailable" })
    expect(plugin.retriable).toBe(false)
    // while streaming, 58P01 is also "requested WAL segment has already been removed": not a plugin matter
    expect(ErrorPolicy.slotErrorOf(options, undefinedFile)).toBe(undefinedFile)
    const other = new PgError({ reason: "Statement", code: "42601", message: "syntax" })
    expect(ErrorPolicy.slotErrorOf(options, other)).toBe(other)
  })

  it("every slot and decode reason but Active is fatal, and says what to do", () => {
    expect(SlotError.missing("s").retriable).toBe(false)
    expect(SlotError.missing("s").message).toContain("REPLICATION_SLOT_CREATE=true")
    expect(SlotError.pluginMismatch({ slot: "s", expected: "pgoutput", actual: "wal2json" }).message).toContain("REPLICATION_PLUGIN=wal2json")
    expect(SlotError.invalidated("o'x", "wal_removed").message).toContain(`pg_drop_replication_slot('o''x')`)
    expect(DecodeError.oversized({ lsn: 16n, table: "public.t", bytes: 2, limit: 1 }).message).toContain("OVERSIZED_RECORD_POLICY=drop")
    expect(DecodeError.malformed(16n, "x").retriable).toBe(false)
  })

  it("maps @effect/sql-pg's SqlError: authentication, TLS anywhere in the causes, a SQLSTATE, or the connection", () => {
    const sqlError = (reason: SqlError["reason"]) => new SqlError({ reason })
    const withCode = (message: string, code: string) => Object.assign(new Error(message), { code })
    expect(ErrorPolicy.fromSqlError(sqlError(new AuthenticationError({ cause: new Error("password authentication failed") }))))
      .toMatchObject({ reason: "Authentication" })
    const tls = ErrorPolicy.fromSqlError(sqlError(new ConnectionError({
      cause: withCode("Hostname/IP does not match certificate's altnames", "ERR_TLS_CERT_ALTNAME_INVALID")
    })))
    expect(tls).toMatchObject({ reason: "Tls" })
    expect(tls.message).toContain("ERR_TLS_CERT_ALTNAME_INVALID")
    const missingDb = ErrorPolicy.fromSqlError(sqlError(new UnknownError({ cause: withCode(`database "nope" does not exist`, "3D000") })))
    expect(missingDb).toMatchObject({ reason: "Statement", code: "3D000" })
    expect(missingDb.message).toContain(`database "nope" does not exist`)
    expect(ErrorPolicy.fromSqlError(sqlError(new ConnectionError({ cause: withCode("the database system is starting up", "57P03") }))))
      .toMatchObject({ reason: "Unavailable", retriable: true })
    expect(ErrorPolicy.fromSqlError(sqlError(new ConnectionError({ cause: withCode("connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED") }))))
      .toMatchObject({ reason: "Connection", retriable: true })
  })
})

import { describe, expect, it } from "@effect/vitest"
import { KinesisError } from "../../src/Errors.ts"
import { classify, recordFailureIsRetriable } from "../../src/kinesis/ErrorClassification.ts"

/** An SDK service exception as the SDK throws it: `name` is the code, `$metadata` the HTTP status. */
const sdkError = (name: string, httpStatusCode = 400, message = `${name} message`) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode } })

const socketError = (code: string, message = `connect ${code} 127.0.0.1:4567`) => Object.assign(new Error(message), { code })

const cases: ReadonlyArray<readonly [string, unknown, boolean]> = [
  // throttling: retriable
  ["ThrottlingException", sdkError("ThrottlingException"), true],
  ["ProvisionedThroughputExceededException", sdkError("ProvisionedThroughputExceededException"), true],
  ["LimitExceededException", sdkError("LimitExceededException"), true],
  ["RequestLimitExceeded", sdkError("RequestLimitExceeded"), true],
  ["KMSThrottlingException", sdkError("KMSThrottlingException"), true],
  // 5xx: retriable
  ["InternalFailure", sdkError("InternalFailure", 500), true],
  ["ServiceUnavailable", sdkError("ServiceUnavailable", 503), true],
  ["unknown code with HTTP 502", sdkError("SomethingOdd", 502), true],
  // network and timeouts: retriable
  ["ECONNREFUSED", socketError("ECONNREFUSED"), true],
  ["ECONNRESET", socketError("ECONNRESET"), true],
  ["ETIMEDOUT", socketError("ETIMEDOUT"), true],
  ["EPIPE", socketError("EPIPE"), true],
  ["socket hang up", new Error("socket hang up"), true],
  ["TimeoutError", sdkError("TimeoutError", undefined as unknown as number), true],
  ["RequestTimeout", sdkError("RequestTimeout"), true],
  // fatal
  ["ValidationException", sdkError("ValidationException"), false],
  ["ResourceNotFoundException", sdkError("ResourceNotFoundException"), false],
  ["AccessDeniedException", sdkError("AccessDeniedException"), false],
  ["KMSDisabledException", sdkError("KMSDisabledException"), false],
  ["KMSInvalidStateException", sdkError("KMSInvalidStateException"), false],
  ["KMSAccessDeniedException", sdkError("KMSAccessDeniedException"), false],
  ["KMSNotFoundException", sdkError("KMSNotFoundException"), false],
  ["KMSOptInRequired", sdkError("KMSOptInRequired"), false],
  ["InvalidArgumentException", sdkError("InvalidArgumentException"), false],
  ["UnrecognizedClientException", sdkError("UnrecognizedClientException"), false],
  ["InvalidSignatureException", sdkError("InvalidSignatureException", 403), false],
  ["ExpiredTokenException", sdkError("ExpiredTokenException", 403), false],
  ["unknown 4xx code", sdkError("BrandNewException", 400), false],
  ["a plain unknown Error", new Error("something else"), false]
]

describe("ErrorClassification.classify", () => {
  it.each(cases)("%s → retriable=%s", (_name, error, retriable) => {
    const classified = classify(error)
    expect(classified).toBeInstanceOf(KinesisError)
    expect(classified.retriable).toBe(retriable)
  })

  it("keeps the code and writes one line that says what to do", () => {
    const error = classify(sdkError("ResourceNotFoundException", 400, "Stream test under account 1 not found.\nmore detail"))
    expect(error.code).toBe("ResourceNotFoundException")
    expect(error.message).not.toContain("\n")
    expect(error.message).toContain("ResourceNotFoundException")
    expect(error.message).toContain("KINESIS_STREAM")
    const network = classify(socketError("ECONNREFUSED"))
    expect(network.code).toBe("ECONNREFUSED")
    expect(network.message).toContain("AWS_ENDPOINT_URL_KINESIS")
    expect(classify(sdkError("ExpiredTokenException", 403)).message).toContain("credentials")
  })

  it("names unknown status-only failures by their HTTP status", () => {
    const error = classify({ $metadata: { httpStatusCode: 503 } })
    expect(error.code).toBe("HTTP503")
    expect(error.retriable).toBe(true)
  })

  it("returns an already classified error unchanged", () => {
    const error = new KinesisError({ code: "X", retriable: true, message: "m" })
    expect(classify(error)).toBe(error)
  })

  it("retries every per-record failure code", () => {
    for (const code of ["ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException", "Whatever"]) {
      expect(recordFailureIsRetriable(code)).toBe(true)
    }
  })
})

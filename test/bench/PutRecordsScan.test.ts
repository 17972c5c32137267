/**
 * The endpoint's scan of PutRecords bodies against its JSON.parse path: for generated requests (bodies
 * written by the service's encoder and by JSON.stringify in either member order; keys with escapes,
 * unicode and control characters; records with and without commit times, anywhere in the body; backfill
 * rows; sizes at the limits) both give the same response text or error, counts, latency samples and
 * limit verdicts; and the scan does read the service's bodies.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { defaultEndpointOptions, makeEndpoint } from "../../bench/KinesisEndpoint.ts"
import type { EndpointOptions } from "../../bench/KinesisEndpoint.ts"
import { codePoints, defaultLimits, utf8Bytes } from "../../bench/KinesisLimits.ts"
import { decodeBase64Head, scanPutRecords } from "../../bench/PutRecordsScan.ts"
import { decodeOutput, encodeBody } from "../../src/kinesis/PutRecordsBody.ts"

const clock = 1_800_000_000_000.25

const pair = (options: Partial<EndpointOptions>) => {
  const base = { ...defaultEndpointOptions, streamName: "bench", shardCount: 3, now: () => clock, ...options }
  return { scan: makeEndpoint({ ...base, scan: true }), parse: makeEndpoint({ ...base, scan: false }) }
}

const outcome = async (run: Promise<string>): Promise<string> => {
  try {
    return `ok ${await run}`
  } catch (error) {
    return `error ${(error as { type?: string }).type} ${(error as Error).message}`
  }
}

/** Same answer and same counters (but the scan's own) from both endpoints. */
const same = async (endpoints: ReturnType<typeof pair>, body: Buffer): Promise<string> => {
  const a = await outcome(endpoints.scan.putRecordsBody(body))
  const b = await outcome(endpoints.parse.putRecordsBody(body))
  expect(a).toBe(b)
  const { scannedBodies: _s, fullDecodes: _f, ...scanStats } = endpoints.scan.stats()
  const { scannedBodies: _s2, fullDecodes: _f2, ...parseStats } = endpoints.parse.stats()
  expect(scanStats).toEqual(parseStats)
  return a
}

const timestamp = fc.tuple(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 999999 }), fc.constantFrom("+00", "-08", "+05:30", ""))
  .map(([s, us, zone]) => `2026-11-29 09:00:${String(s).padStart(2, "0")}.${String(us).padStart(6, "0")}${zone}`)

const filler = (n: number): string => "x".repeat(n)

/** Record bodies: wal2json-like (live or backfill), a commit time at any offset, none, odd values, raw bytes. */
const recordData: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(fc.constantFrom("I", "U", "D", "R"), timestamp, fc.nat(3000)).map(([action, ts, n]) =>
    Buffer.from(`{"commit_lsn":"0/16B3748","commit_idx":7,"action":"${action}","xid":712,"timestamp":"${ts}","columns":[{"name":"v","value":"${filler(n)}"}]}`)),
  fc.tuple(fc.nat(600), timestamp, fc.nat(100)).map(([before, ts, after]) =>
    Buffer.from(`{"before":"${filler(before)}","timestamp":"${ts}","after":"${filler(after)}"}`)),
  fc.tuple(fc.nat(600), fc.nat(80)).map(([before, n]) => Buffer.from(`{"a":"${filler(before)}","timestamp":"${filler(n)}`)),
  fc.tuple(fc.nat(600), fc.nat(60)).map(([before, n]) => Buffer.from(`{"a":"${filler(before)}","timestamp":"${filler(n)}"}`)),
  fc.nat(700).map((n) => Buffer.from(`{"op":"c","after":{"v":"${filler(n)}"},"source":{"ts_ms":1764406800000}}`)),
  fc.uint8Array({ maxLength: 40 })
)

const partitionKey = fc.oneof(
  { weight: 30, arbitrary: fc.string({ unit: fc.constantFrom("a", "Z", "0", ":", "[", "]", ".") as fc.Arbitrary<string>, minLength: 1, maxLength: 40 }) },
  fc.string({ unit: fc.constantFrom("a", "x") as fc.Arbitrary<string>, minLength: 250, maxLength: 262 }),
  fc.string({ unit: fc.constantFrom("a", "\\", "\"", "é", "\u0001", "😀", "\ud800", " ", "/") as fc.Arbitrary<string>, maxLength: 260 }),
  fc.string({ unit: "grapheme", minLength: 250, maxLength: 262 })
)

const request = fc.record({
  records: fc.array(fc.record({ body: recordData, partitionKey }), { minLength: 0, maxLength: 25 }),
  writer: fc.constantFrom("service", "stringify", "stringify-records-first"),
  stream: fc.constantFrom({ StreamName: "bench" }, { StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/bench" }, { StreamName: "other" })
})

const write = (r: { records: Array<{ body: Uint8Array; partitionKey: string }>; writer: string; stream: Record<string, string> }): Buffer => {
  if (r.writer === "service") return encodeBody(r.stream, r.records)
  const records = r.records.map((x) => ({ Data: Buffer.from(x.body).toString("base64"), PartitionKey: x.partitionKey }))
  return Buffer.from(JSON.stringify(r.writer === "stringify" ? { ...r.stream, Records: records } : { Records: records, ...r.stream }))
}

describe("the endpoint's scan of PutRecords bodies", () => {
  it("answers and counts generated requests as the JSON.parse path does", async () => {
    const limits = { ...defaultLimits, maxRecordsPerRequest: 20, maxRecordBytes: 2500, maxRequestBytes: 20_000, maxPartitionKeyChars: 256 }
    const endpoints = pair({ limits })
    let scanned = 0
    await fc.assert(fc.asyncProperty(request, fc.boolean(), async (r, failFirst) => {
      const key = failFirst ? r.records[0]?.partitionKey : undefined
      endpoints.scan.setFailKey(key)
      endpoints.parse.setFailKey(key)
      const before = endpoints.scan.stats().scannedBodies
      const answer = await same(endpoints, write(r))
      if (answer.startsWith("ok ")) {
        // the service reads the response (all accepted: without parsing it) as one result per record
        const results = decodeOutput(Buffer.from(answer.slice(3)))
        expect(results).toHaveLength(r.records.length)
        expect(results.filter((x) => x._tag === "Failed")).toHaveLength(r.records.filter((x) => x.partitionKey === key).length)
        for (const entry of (JSON.parse(answer.slice(3)) as { Records: Array<{ SequenceNumber?: string }> }).Records) {
          if (entry.SequenceNumber !== undefined) expect(entry.SequenceNumber).toMatch(/^49\d{45}$/)
        }
      }
      const plain = r.records.every((x) => /^[\x20-\x7e]*$/.test(x.partitionKey) && !/["\\]/.test(x.partitionKey))
      // the service's bodies with keys needing no escape are scanned, not parsed
      if (r.writer !== "stringify-records-first" && plain) {
        expect(endpoints.scan.stats().scannedBodies).toBe(before + 1)
        scanned++
      }
    }), { numRuns: 300 })
    expect(scanned).toBeGreaterThan(50)
    expect(endpoints.scan.stats().fullDecodes).toBeGreaterThan(0)
    expect(endpoints.scan.stats().latencyMs?.count).toBeGreaterThan(100)
    expect(endpoints.scan.stats().backfilledRecords).toBeGreaterThan(0)
  })

  it("gives the same verdicts at the size limits (each padding), and for damaged or unusual bodies", async () => {
    const endpoints = pair({})
    const maxRecordBytes = defaultLimits.maxRecordBytes
    for (const extra of [-2, -1, 0, 1]) {
      for (const key of ["k", "é", "😀x"]) {
        const data = Buffer.alloc(maxRecordBytes - utf8Bytes(key) + extra, 0x41)
        const answer = await same(endpoints, encodeBody({ StreamName: "bench" }, [{ body: data, partitionKey: key }]))
        expect(answer.startsWith(extra <= 0 ? "ok" : "error ValidationException")).toBe(true)
      }
    }
    const fiveMiB = defaultLimits.maxRequestBytes
    for (const extra of [0, 1]) {
      const sizes = [900_000, 900_000, 900_000, 900_000, 900_000, fiveMiB - 4_500_000 + extra]
      const records = sizes.map((size) => ({ body: Buffer.alloc(size - 1), partitionKey: "k" }))
      const answer = await same(endpoints, encodeBody({ StreamName: "bench" }, records))
      expect(answer.startsWith(extra === 0 ? "ok" : "error InvalidArgumentException")).toBe(true)
    }
    const good = encodeBody({ StreamName: "bench" }, [{ body: Buffer.from("hello"), partitionKey: "k" }]).toString("latin1")
    const damaged = [
      good.replace("aGVsbG8=", "aGVsbG8"), good.replace("aGVsbG8=", "aGVs bG8="), good.replace("aGVsbG8=", "aGVsbG8=="),
      good.replace("aGVsbG8=", "aGVsbG-_"), good + " ", " " + good, good.slice(0, -1), good.replace("\"k\"", "\"\\u006b\""),
      good.replace("\"k\"", "\"k\u0001\""), good.replace("\"k\"", "\"\""), good.replace("\"k\"", "5"), good.replace("{\"Data\"", "{\"Data\":\"\",\"Data\""),
      `{"StreamName":"bench","StreamName":"other","Records":[]}`, `{"StreamName":"bench","Records":[]}`, `{"Records":[{"Data":"","PartitionKey":"k"}]}`,
      `[]`, `{}`, ``
    ]
    for (const text of damaged) await same(endpoints, Buffer.from(text, "latin1"))
    expect(endpoints.scan.stats().scannedBodies).toBeGreaterThan(0)
  })

  it("measures Data that is not base64 by its length (its characters are not checked; no SDK writes such a body)", async () => {
    const endpoints = pair({})
    const body = Buffer.from(`{"StreamName":"bench","Records":[{"Data":"ab\u0001d","PartitionKey":"k"}]}`)
    expect(scanPutRecords(body)?.dataBytes).toEqual([3])
    expect(await outcome(endpoints.scan.putRecordsBody(body))).toMatch(/^ok /)
    expect(await outcome(endpoints.parse.putRecordsBody(body))).toMatch(/^error SerializationException/)
  })

  it("sizes records from their base64 and decodes a record's start exactly", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 3, max: 500 }), (data, max) => {
      const body = encodeBody({ StreamName: "s" }, [{ body: data, partitionKey: "k" }])
      const scanned = scanPutRecords(body)
      expect(scanned?.dataBytes).toEqual([data.length])
      const target = Buffer.alloc(max)
      const n = decodeBase64Head(body, scanned!.starts[0]!, scanned!.ends[0]!, target, max)
      expect(n).toBe(Math.min(data.length, Math.floor(max / 3) * 3))
      expect(target.subarray(0, n)).toEqual(Buffer.from(data).subarray(0, n))
    }))
  })

  it("counts key characters and bytes as spreading and Buffer.byteLength do", () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom("a", "é", "€", "😀", "\ud800", "\udc00") as fc.Arbitrary<string>, maxLength: 30 }), (key) => {
      expect(codePoints(key)).toBe([...key].length)
      expect(utf8Bytes(key)).toBe(Buffer.byteLength(key, "utf8"))
    }))
  })
})

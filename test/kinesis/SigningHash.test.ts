/**
 * SigningHash gives what node:crypto's SHA-256 and HMAC-SHA256 give, for keys given as text or
 * bytes, the same key used again (its imported KeyObject), and after a reset.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { createHash, createHmac } from "node:crypto"
import * as SigningHash from "../../src/kinesis/SigningHash.ts"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

describe("SigningHash", () => {
  it("hashes and HMACs as node:crypto does, a key used again or not", async () => {
    const Hash = SigningHash.make()
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), fc.string(), fc.uint8Array({ maxLength: 200 }), async (keyBytes, keyText, data) => {
      const plain = new Hash()
      plain.update(data)
      expect(hex(await plain.digest())).toBe(createHash("sha256").update(data).digest("hex"))
      for (let i = 0; i < 2; i++) {
        const byBytes = new Hash(keyBytes)
        byBytes.update(data)
        expect(hex(await byBytes.digest())).toBe(createHmac("sha256", keyBytes).update(data).digest("hex"))
      }
      const byText = new Hash(keyText)
      byText.update(data)
      const expected = keyText === "" ? createHash("sha256") : createHmac("sha256", keyText)
      expect(hex(await byText.digest())).toBe(expected.update(data).digest("hex"))
    }), { numRuns: 200 })
  })

  it("a reset starts over with the same key", async () => {
    const Hash = SigningHash.make()
    const key = new Uint8Array([1, 2, 3])
    const hmac = new Hash(key)
    hmac.update(Buffer.from("discarded"))
    hmac.reset()
    hmac.update(Buffer.from("kept"))
    expect(hex(await hmac.digest())).toBe(createHmac("sha256", key).update("kept").digest("hex"))
  })
})

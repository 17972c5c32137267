/**
 * The hash the PutRecords signer (@smithy/signature-v4) is given: SHA-256 and HMAC-SHA256 from
 * node:crypto, as the SDK's own, except that an HMAC key given as bytes is imported into a
 * `KeyObject` once per key. Node imports a key given as bytes on every `createHmac`, and first
 * tells it from a `KeyObject` by catching a thrown error: ~14 µs an HMAC against ~2.5 µs with the
 * `KeyObject` (measured). The signer keeps its derived signing key, the same bytes for a day, so
 * that key is imported once a day; keys given as text are used as they are.
 */
import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from "node:crypto"

type SourceData = string | ArrayBuffer | ArrayBufferView

/** A running hash or HMAC, as the signer uses it. */
export interface SigningHash {
  readonly digestLength: number
  update(data: SourceData): void
  digest(): Promise<Uint8Array>
  reset(): void
}

/** What the signer takes as its `sha256`. */
export type HashConstructor = new(secret?: SourceData) => SigningHash

const bytesOf = (data: ArrayBuffer | ArrayBufferView): Buffer =>
  ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data)

/** A hash constructor with its own imported keys (held weakly: a key the signer drops goes with it). */
export const make = (): HashConstructor => {
  const imported = new WeakMap<ArrayBuffer | ArrayBufferView, KeyObject>()
  const keyOf = (secret: ArrayBuffer | ArrayBufferView): KeyObject => {
    let key = imported.get(secret)
    if (key === undefined) {
      key = createSecretKey(bytesOf(secret))
      imported.set(secret, key)
    }
    return key
  }
  const start = (secret: SourceData | undefined): Hash | Hmac => {
    // as the SDK's: no secret, or an empty one, is a plain hash
    if (secret === undefined || secret === "") return createHash("sha256")
    return createHmac("sha256", typeof secret === "string" ? secret : keyOf(secret))
  }
  return class Sha256 implements SigningHash {
    readonly digestLength = 32
    private readonly secret: SourceData | undefined
    private hash: Hash | Hmac
    constructor(secret?: SourceData) {
      this.secret = secret
      this.hash = start(secret)
    }
    update(data: SourceData): void {
      this.hash.update(typeof data === "string" ? data : bytesOf(data))
    }
    digest(): Promise<Uint8Array> {
      const digest = this.hash.digest()
      return Promise.resolve(new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength))
    }
    reset(): void {
      this.hash = start(this.secret)
    }
  }
}

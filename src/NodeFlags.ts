/**
 * How the service is launched: the Node.js flags, compile cache and allocator setting it runs with,
 * for `npm start`, the container, and every launcher that runs the service as production does (the
 * tests', the benchmark's and the demo's). A test keeps package.json and the Dockerfile in step.
 *
 * A small young generation (2 MiB semi-spaces instead of 16) keeps peak RSS about 90 MiB lower
 * while a backlog drains, at no measured cost in throughput: most of what the hot path allocates
 * dies within one scavenge, and what survives is the queue's content, which is bounded anyway.
 * A fixed heap growing factor of 2 (V8 otherwise lets the old generation grow up to 4× its live
 * size before a full collection) keeps the garbage a drain leaves in the old generation small: in
 * paired drains of one backlog (the factor 2.5 beside it), peaks 8–45 MiB lower in every pair, at
 * about the same CPU per change with wal2json and 2–10% more with pgoutput (README, Performance).
 * `--expose-gc` gives src/observability/MemoryRelease.ts its one full collection when the service
 * turns idle after heavy work (followed by glibc's `malloc_trim`, HeapTrim.ts): an idle process
 * allocates too little for V8 to collect on its own, so what the work left behind (a stuck key's
 * minutes, a backlog) otherwise stays resident.
 *
 * Node's compile cache (NODE_COMPILE_CACHE) keeps the TypeScript sources stripped and compiled on
 * disk: a start that finds them there neither loads Node's TypeScript stripper (a WebAssembly module
 * and a 3.7 MB source) nor compiles again. Measured: 99 MiB instead of 139 MiB peak RSS for a start
 * that loads every module, 0.18 s instead of 0.35 s. Entries are keyed by Node version, V8 flags and
 * each file's contents, so a stale entry is never used; the container image is built with it filled.
 *
 * glibc's allocator (MALLOC_MMAP_THRESHOLD_): buffers of 64 KiB and more (the replication
 * connection's read buffers, the buffers a read's change bodies are written into, and PutRecords request bodies) are
 * mapped on their own instead of carved from the heap, so the memory of freed ones goes back to the
 * system instead of staying resident between fragments. Measured: about 20 MiB lower peak RSS while a
 * backlog drains, at the same throughput. A fresh mapping costs a page fault for every 4 KiB written,
 * so the PutRecords sender keeps a few request body buffers for later requests (kinesis/BodyBuffers).
 */
import * as Path from "node:path"

export const nodeFlags: ReadonlyArray<string> = ["--max-semi-space-size=2", "--heap-growing-percent=100", "--expose-gc"]

/** The compile cache's directory, relative to the repository (or to /app in the container). */
export const compileCacheDirectory = "node_modules/.cache/cdc-compile-cache"

/** The allocator setting, the same wherever the service runs. */
export const allocatorEnvironment: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: "65536" }

/** What a launcher adds to the service's environment, for a repository at `root`. */
export const launchEnvironment = (root: string): Readonly<Record<string, string>> => ({
  NODE_COMPILE_CACHE: Path.join(root, compileCacheDirectory),
  ...allocatorEnvironment
})

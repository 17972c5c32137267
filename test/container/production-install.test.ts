/**
 * What the container image relies on, checked without a Docker engine: the files the Dockerfile
 * copies, installed with the Dockerfile's own production-only install command, start the service
 * (which stops on missing configuration with the clean config error, not on a missing module).
 */
import { execFile as execFileCb } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { compileCacheDirectory, nodeFlags } from "../../src/NodeFlags.ts"

const execFile = promisify(execFileCb)
const root = Path.resolve(import.meta.dirname, "../..")
const dockerfile = Fs.readFileSync(Path.join(root, "Dockerfile"), "utf8")

/** The `npm ci …` command of the Dockerfile's install step. */
const installCommand = (): Array<string> => {
  const match = /RUN (npm ci[^\\&\n]*)/.exec(dockerfile)
  if (!match) throw new Error("the Dockerfile has no `RUN npm ci` step")
  return match[1]!.trim().split(/\s+/)
}

/** Sources the runtime stage copies from the build context (`COPY <src> ./<dest>`, not --from). */
const copiedSources = (): Array<string> =>
  [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).slice(0, -1))

describe("production install (what the Dockerfile builds)", () => {
  let dir: string
  beforeAll(async () => {
    dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-image-"))
    for (const source of new Set(copiedSources())) {
      Fs.cpSync(Path.join(root, source), Path.join(dir, source), { recursive: true })
    }
    const [npm, ...args] = installCommand()
    expect(npm).toBe("npm")
    expect(args).toContain("--omit=dev")
    await execFile("npm", args, { cwd: dir, env: { ...process.env, npm_config_loglevel: "error" }, maxBuffer: 64 * 1024 * 1024 })
  }, 300_000)
  afterAll(() => {
    if (dir) Fs.rmSync(dir, { recursive: true, force: true })
  })

  it("copies only package files and sources, and installs no dev dependency", () => {
    expect(new Set(copiedSources())).toEqual(new Set(["package.json", "package-lock.json", "src"]))
    const installed = Fs.readdirSync(Path.join(dir, "node_modules"))
    expect(installed).toContain("effect")
    // the optional dependency the idle memory release trims the C heap with (HeapTrim.ts), with its prebuilt binary
    expect(installed).toContain("koffi")
    expect(Fs.readdirSync(Path.join(dir, "node_modules", "@koromix"))).toContain(`koffi-${process.platform}-${process.arch}`)
    expect(installed).not.toContain("vitest")
    expect(installed).not.toContain("kinesalite")
    expect(installed).not.toContain("typescript")
  })

  it("starts the service, which stops on missing configuration with the clean error", async () => {
    const result = await execFile(process.execPath, ["src/main.ts"], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "", PGPASSWORD: "do-not-print-me" }
    }).then(
      () => ({ code: 0, stderr: "", stdout: "" }),
      (e: { code: number; stderr: string; stdout: string }) => e
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("invalid configuration")
    for (const name of ["PGHOST", "PGUSER", "PGDATABASE", "AWS_REGION", "KINESIS_STREAM"]) {
      expect(result.stderr).toContain(name)
    }
    expect(result.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/)
    expect(result.stderr).not.toMatch(/^\s+at /m)
    expect(result.stderr + result.stdout).not.toContain("do-not-print-me")
  })

  it("the image's compile-cache step fills the cache: a start then strips no TypeScript", async () => {
    const env = { PATH: process.env.PATH ?? "", NODE_COMPILE_CACHE: Path.join(dir, compileCacheDirectory) }
    const start = () =>
      execFile(process.execPath, [...nodeFlags, "src/main.ts"], { cwd: dir, env: { ...env, NODE_DEBUG_NATIVE: "COMPILE_CACHE" } }).then(
        () => ({ code: 0, stderr: "" }),
        (e: { code: number; stderr: string }) => e
      )
    // the Dockerfile's step: every module loaded, then exit 2 on the missing configuration
    const warm = await start()
    expect(warm.code).toBe(2)
    expect(warm.stderr).toContain("saving transpilation cache for StrippedTypeScript")
    const next = await start()
    expect(next.code).toBe(2)
    expect(next.stderr).toContain("retrieving transpile cache for StrippedTypeScript")
    expect(next.stderr).not.toContain("no transpile cache for StrippedTypeScript")
    expect(next.stderr).toContain("invalid configuration")
  })
})

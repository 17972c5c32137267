/**
 * The launchers' compile cache is hit: after `warmCompileCache` (the benchmark calls it before its
 * first measured start, as the container image fills its cache at build time), a start of the
 * service strips no TypeScript (Node's stripper, a WebAssembly module, is not loaded).
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { thisCheckout, warmCompileCache } from "../../support/ServiceProcess.ts"

/** The builtins a start of the service with no configuration (exit 2) loaded. */
const builtinsOfAStart = (): ReadonlyArray<string> => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-cache-test-"))
  try {
    const out = Path.join(dir, "builtins.json")
    const preload = Path.join(dir, "preload.mjs")
    Fs.writeFileSync(preload, `import * as Fs from "node:fs"
process.on("exit", () => Fs.writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)))\n`)
    const result = spawnSync(process.execPath, ["--import", preload, ...thisCheckout.nodeFlags, Path.join(thisCheckout.root, "src/main.ts")], {
      cwd: thisCheckout.root,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...thisCheckout.environment },
      stdio: "ignore"
    })
    expect(result.status).toBe(2)
    return JSON.parse(Fs.readFileSync(out, "utf8")) as ReadonlyArray<string>
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe("compile cache", () => {
  it("after warmCompileCache, a start of the service loads no TypeScript stripper", () => {
    warmCompileCache()
    const builtins = builtinsOfAStart()
    // the start did load modules (the check below could not pass for a process that loaded nothing)
    expect(builtins).toContain("NativeModule internal/modules/typescript")
    expect(builtins.filter((name) => name.includes("amaro"))).toEqual([])
  }, 120_000)
})

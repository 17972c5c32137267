import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "../../support/Paths.ts"

/**
 * What the service's modules load as they are imported, in a fresh process: every module of src/
 * but the entry points (which start the service or the CLI); and whether koffi's binary is mapped.
 */
const loaded = (): { readonly builtins: ReadonlyArray<string>; readonly koffiMapped: boolean } => {
  const files = Fs.readdirSync(Path.join(repoRoot, "src"), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts") && !file.endsWith("main.ts"))
    .map((file) => Path.join(repoRoot, "src", file))
  expect(files.length).toBeGreaterThan(50)
  const script = `for (const file of ${JSON.stringify(files)}) await import(file)
const maps = (await import("node:fs")).readFileSync("/proc/self/maps", "utf8")
process.stdout.write(JSON.stringify({ builtins: process.moduleLoadList, koffiMapped: maps.includes("koffi") }))`
  const output = execFileSync(process.execPath, ["--input-type=module", "--eval", script], { cwd: repoRoot, encoding: "utf8" })
  return JSON.parse(output) as { builtins: ReadonlyArray<string>; koffiMapped: boolean }
}

describe("startup modules", () => {
  it("no module loads Node's fetch implementation (undici): an ES import of node:http would, for its WebSocket getters", () => {
    const { builtins } = loaded()
    expect(builtins).toContain("NativeModule http")
    expect(builtins.filter((name) => name.includes("undici"))).toEqual([])
  }, 60_000)

  it("koffi's native binary is not loaded by any module: the idle memory release loads it at its first trim (HeapTrim.ts)", () => {
    expect(loaded().koffiMapped).toBe(false)
  }, 60_000)
})

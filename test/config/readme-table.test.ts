/**
 * README.md's configuration table and the variables the service reads (src/config/ServiceConfig.ts)
 * are the same set: no variable undocumented, none documented that the code does not read.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"

const root = Path.resolve(import.meta.dirname, "../..")

/** The keys of the `…Fields` records: each is one environment variable. */
const variablesInCode = (): Array<string> => {
  const source = Fs.readFileSync(Path.join(root, "src/config/ServiceConfig.ts"), "utf8")
  return [...source.matchAll(/^\s+([A-Z][A-Z0-9_]+): (?:Env\.|ms\()/gm)].map((m) => m[1]!).sort()
}

/** Variable names in the first column of the README's configuration table. */
const variablesInReadme = (): Array<string> => {
  const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Architecture"))
  return [...section.matchAll(/^\| (`[A-Z][A-Z0-9_]+`(?: \/ `[A-Z][A-Z0-9_]+`)*) \|/gm)]
    .flatMap((m) => [...m[1]!.matchAll(/`([A-Z0-9_]+)`/g)].map((n) => n[1]!))
    .sort()
}

describe("README configuration table", () => {
  it("lists exactly the variables the service reads", () => {
    const code = variablesInCode()
    expect(code.length).toBeGreaterThan(40)
    expect(variablesInReadme()).toEqual(code)
  })
})

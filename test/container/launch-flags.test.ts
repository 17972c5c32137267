/**
 * The service runs with the same Node.js flags however it is launched: `npm start`, the
 * container's CMD, and the launchers in the tests and the benchmark (which import the list).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { nodeFlags } from "../../src/NodeFlags.ts"

const root = Path.resolve(import.meta.dirname, "../..")

describe("launch flags", () => {
  it("npm start runs src/main.ts with exactly the flags of src/NodeFlags.ts", () => {
    const pkg = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }
    expect(pkg.scripts.start).toBe(["node", ...nodeFlags, "src/main.ts"].join(" "))
  })

  it("the Dockerfile's CMD runs src/main.ts with the same flags", () => {
    const dockerfile = Fs.readFileSync(Path.join(root, "Dockerfile"), "utf8")
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)
    expect(cmd).not.toBeNull()
    expect(JSON.parse(cmd![1]!)).toEqual(["node", ...nodeFlags, "src/main.ts"])
  })
})

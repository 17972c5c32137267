/**
 * The service runs with the same Node.js flags and compile cache however it is launched: `npm start`,
 * the container, and the launchers in the tests, the benchmark and the demo (which import
 * src/NodeFlags.ts).
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { allocatorEnvironment, compileCacheDirectory, launchEnvironment, nodeFlags } from "../../src/NodeFlags.ts"

const root = Path.resolve(import.meta.dirname, "../..")
const dockerfile = Fs.readFileSync(Path.join(root, "Dockerfile"), "utf8")

describe("launch flags", () => {
  it("npm start runs src/main.ts with exactly the flags, compile cache and allocator setting of src/NodeFlags.ts", () => {
    const pkg = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }
    const allocator = Object.entries(allocatorEnvironment).map(([name, value]) => `${name}=${value}`)
    expect(pkg.scripts.start).toBe(
      [`NODE_COMPILE_CACHE=${compileCacheDirectory}`, ...allocator, "node", ...nodeFlags, "src/main.ts"].join(" ")
    )
  })

  it("the Dockerfile's CMD runs src/main.ts with the same flags", () => {
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)
    expect(cmd).not.toBeNull()
    expect(JSON.parse(cmd![1]!)).toEqual(["node", ...nodeFlags, "src/main.ts"])
  })

  it("the image sets the same compile cache and fills it with the same flags before the CMD", () => {
    const workdir = /^WORKDIR (\S+)$/m.exec(dockerfile.slice(dockerfile.indexOf("AS runtime")))?.[1]
    expect(workdir).toBe("/app")
    expect(dockerfile).toMatch(new RegExp(`^ENV NODE_COMPILE_CACHE=/app/${compileCacheDirectory.replaceAll(".", "\\.")}$`, "m"))
    const warm = /^RUN (node .*src\/main\.ts) > \/dev\/null 2>&1; test \$\? -eq 2$/m.exec(dockerfile)
    expect(warm?.[1]).toBe(["node", ...nodeFlags, "src/main.ts"].join(" "))
    expect(dockerfile.indexOf(warm![0])).toBeGreaterThan(dockerfile.indexOf("COPY src ./src"))
  })

  it("the image fills its compile cache as the uid the service runs as (Node keeps a cache directory per uid)", () => {
    const user = /^USER (\d+):(\d+)$/m.exec(dockerfile)
    expect(user).not.toBeNull()
    const uid = user![1]!
    const warm = /^RUN node .*src\/main\.ts > \/dev\/null 2>&1; test \$\? -eq 2$/m.exec(dockerfile)
    expect(warm).not.toBeNull()
    // the only USER line, before the fill, and the cache directory the fill writes into is that uid's
    expect(dockerfile.match(/^USER /gm)).toHaveLength(1)
    expect(dockerfile.indexOf(user![0])).toBeLessThan(dockerfile.indexOf(warm![0]))
    const chown = new RegExp(`^RUN mkdir -p ${compileCacheDirectory.replaceAll(".", "\\.")} && chown ${uid}:${user![2]} ${compileCacheDirectory.replaceAll(".", "\\.")}$`, "m")
    expect(dockerfile).toMatch(chown)
    expect(dockerfile.search(chown)).toBeLessThan(dockerfile.indexOf(user![0]))
  })

  it("Node's compile cache keeps one directory per uid: a cache filled by another user is not read", () => {
    const cache = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-cache-uid-"))
    try {
      const result = spawnSync(process.execPath, ["--eval", "0"], { env: { ...process.env, NODE_COMPILE_CACHE: cache }, stdio: "ignore" })
      expect(result.status).toBe(0)
      expect(Fs.readdirSync(cache).map((dir) => dir.split("-").at(-1))).toEqual([String(process.getuid!())])
    } finally {
      Fs.rmSync(cache, { recursive: true, force: true })
    }
  })

  it("the image sets the same allocator setting", () => {
    for (const [name, value] of Object.entries(allocatorEnvironment)) {
      expect(dockerfile).toMatch(new RegExp(`^ENV ${name}=${value}$`, "m"))
    }
  })

  it("launchers put the compile cache under the repository and set the allocator", () => {
    expect(launchEnvironment("/repo")).toEqual({ NODE_COMPILE_CACHE: `/repo/${compileCacheDirectory}`, ...allocatorEnvironment })
  })
})

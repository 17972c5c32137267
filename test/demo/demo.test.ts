/**
 * `npm run demo -- --seconds 5` as a user runs it, with no configuration: it must exit 0 and report
 * that every change it wrote (more than none) arrived in the stream.
 */
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "../../bench/ServiceProcess.ts"

const demo = (args: ReadonlyArray<string>): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    // no PG* variables: the demo must bring its own PostgreSQL
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")))
    execFile("npm", ["run", "--silent", "demo", "--", ...args], {
      cwd: repoRoot,
      env: { ...env, PATH: `${Path.join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}` },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 110_000
    }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
  })

describe("npm run demo", () => {
  it("streams every change it writes for 5 s and says so", async () => {
    const { code, stdout, stderr } = await demo(["--seconds", "5"])
    expect(code, `demo failed:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`).toBe(0)
    const written = Number(/written: (\d+) changes/.exec(stdout)?.[1])
    const arrived = Number(/arrived: (\d+) of them read back from the stream \((\d+) missing/.exec(stdout)?.[1])
    const missing = Number(/\((\d+) missing/.exec(stdout)?.[1])
    expect(written).toBeGreaterThan(0)
    expect(arrived).toBe(written)
    expect(missing).toBe(0)
    expect(stdout).toContain(`RESULT: OK — every change written (${written}) arrived in the stream`)
    // a plain line per second when stdout is not a terminal
    expect(stdout).toMatch(/\[demo +\d+s\] written \d+ arrived \d+/)
  }, 120_000)
})

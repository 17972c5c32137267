/** Runs the operator CLI (`node src/cli/main.ts`) as an operator would, with only the given environment (plus PATH). */
import { execFile } from "node:child_process"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "..")
const node = Path.join(root, "node_modules", ".bin", "node")
const main = Path.join(root, "src", "cli", "main.ts")

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export const cli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>): Promise<Run> =>
  new Promise((resolve) => {
    execFile(node, [main, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
    })
  })

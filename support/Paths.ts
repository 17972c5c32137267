/** Where the repository is, for launching `src/main.ts` and running npm scripts from tests. */
import * as Path from "node:path"

export const repoRoot = Path.resolve(import.meta.dirname, "..")

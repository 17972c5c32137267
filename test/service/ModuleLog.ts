/**
 * Preloaded (`--import`) into a service process by the streaming-modules test: records the URL of
 * every module the process resolves (ES imports, `require`s and `import()`s alike) and writes them,
 * one a line, to the file named by MODULE_LOG_FILE when the process exits.
 */
import * as Fs from "node:fs"
import { registerHooks } from "node:module"

const file = process.env.MODULE_LOG_FILE
if (file !== undefined) {
  const urls = new Set<string>()
  registerHooks({
    resolve: (specifier, context, next) => {
      const resolved = next(specifier, context)
      urls.add(resolved.url)
      return resolved
    }
  })
  process.on("exit", () => Fs.writeFileSync(file, [...urls].join("\n") + "\n"))
}

/**
 * The bench's and the demo's command lines (effect/cli): the defaults a bare `npm run bench` and
 * `npm run demo` get, `--quick`, and bad values refused with exit code 2.
 */
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { parseArguments } from "../../bench/Arguments.ts"
import { parseOptions } from "../../scripts/demo/Options.ts"
import { repoRoot } from "../../support/Paths.ts"

describe("npm run bench arguments", () => {
  it("no arguments: a full run writing bench/results/latest.json", async () => {
    expect(await parseArguments([])).toEqual({
      _tag: "Parsed",
      value: {
        settings: { quick: false, changes: 500_000, latencyRate: 5_000, latencySeconds: 30, memoryQueueBytes: 16 * 1024 * 1024, stuckSeconds: 300, baselineCheckout: undefined, scaling: false, only: [] },
        resultsFile: Path.join(repoRoot, "bench", "results", "latest.json")
      }
    })
  })

  it("--quick: a small run that writes results only when asked", async () => {
    expect(await parseArguments(["--quick"])).toEqual({
      _tag: "Parsed",
      value: {
        settings: { quick: true, changes: 20_000, latencyRate: 1_000, latencySeconds: 5, memoryQueueBytes: 2 * 1024 * 1024, stuckSeconds: 10, baselineCheckout: undefined, scaling: false, only: [] },
        resultsFile: undefined
      }
    })
    const withFile = await parseArguments(["--quick", "--changes", "30000", "--results", "/tmp/x.json"])
    expect(withFile._tag === "Parsed" && [withFile.value.settings.changes, withFile.value.resultsFile]).toEqual([30_000, "/tmp/x.json"])
  })

  it("--only picks scenarios; --scaling or --only scaling adds the scaling table", async () => {
    const only = await parseArguments(["--only", "drains", "--only", "scaling"])
    expect(only._tag === "Parsed" && [only.value.settings.only, only.value.settings.scaling]).toEqual([["drains", "scaling"], true])
    const scaling = await parseArguments(["--scaling"])
    expect(scaling._tag === "Parsed" && [scaling.value.settings.only, scaling.value.settings.scaling]).toEqual([[], true])
    expect(await parseArguments(["--only", "everything"])).toEqual({ _tag: "Exit", code: 2 })
  })

  it("--baseline: a checkout that exists, as an absolute path", async () => {
    const parsed = await parseArguments(["--baseline", "."])
    expect(parsed._tag === "Parsed" && parsed.value.settings.baselineCheckout).toBe(Path.resolve("."))
    expect(await parseArguments(["--baseline", "/no/such/checkout"])).toEqual({ _tag: "Exit", code: 2 })
  })

  it("bad values exit 2", async () => {
    expect(await parseArguments(["--changes", "0"])).toEqual({ _tag: "Exit", code: 2 })
    expect(await parseArguments(["--latency-rate", "fast"])).toEqual({ _tag: "Exit", code: 2 })
    expect(await parseArguments(["--no-such-flag"])).toEqual({ _tag: "Exit", code: 2 })
  })
})

describe("npm run demo arguments", () => {
  it("no arguments: until Ctrl-C at 100 changes/s; --seconds and --rate", async () => {
    expect(await parseOptions([])).toEqual({ _tag: "Parsed", value: { seconds: undefined, rate: 100 } })
    expect(await parseOptions(["--seconds", "5", "--rate", "200"])).toEqual({ _tag: "Parsed", value: { seconds: 5, rate: 200 } })
  })

  it("bad values exit 2", async () => {
    expect(await parseOptions(["--seconds", "-1"])).toEqual({ _tag: "Exit", code: 2 })
    expect(await parseOptions(["--rate", "x"])).toEqual({ _tag: "Exit", code: 2 })
  })
})

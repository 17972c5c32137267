/**
 * What Linux's /proc says about a process: resident memory (VmRSS, VmHWM) and CPU time (user +
 * system), for a live child by pid, and for this process's reaped children together.
 */
import * as Fs from "node:fs"

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`; 100 on Linux). */
const CLOCK_TICKS = 100

export interface Memory {
  readonly peakRssBytes: number
  readonly rssBytes: number
  /** The anonymous part of rssBytes (heap, malloc, mapped buffers; not the binary's or libraries' pages). */
  readonly rssAnonBytes: number | undefined
}

const statusField = (status: string, field: string): number | undefined => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)
  return match === null ? undefined : Number(match[1]) * 1024
}

/** Peak and current resident set size of a live process, or undefined once it is gone. */
export const memoryOf = (pid: number): Memory | undefined => {
  try {
    const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const peak = statusField(status, "VmHWM")
    const rss = statusField(status, "VmRSS")
    return peak === undefined || rss === undefined ? undefined : { peakRssBytes: peak, rssBytes: rss, rssAnonBytes: statusField(status, "RssAnon") }
  } catch {
    return undefined
  }
}

/** The fields of /proc/<pid>/stat after the command name (field 3, the state, is index 0). */
const statFields = (pid: number | "self"): ReadonlyArray<string> | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** User + system CPU seconds a live process has used (utime + stime), or undefined once it is gone. */
export const cpuSecondsOf = (pid: number): number | undefined => {
  const fields = statFields(pid)
  return fields === undefined ? undefined : (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/**
 * User + system CPU seconds of this process's children that have exited and been waited for
 * (cutime + cstime). The difference around one child's run is that child's CPU time, provided no
 * other child exits meanwhile.
 */
export const reapedChildrenCpuSeconds = (): number => {
  const fields = statFields("self")
  return fields === undefined ? 0 : (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS
}

/** Typings for kinesalite (it ships none): a factory returning a plain Node HTTP server. */
declare module "kinesalite" {
  import type { Server } from "node:http"
  interface KinesaliteOptions {
    /** LevelDB path; in memory when omitted. */
    readonly path?: string
    readonly ssl?: boolean
    readonly createStreamMs?: number
    readonly deleteStreamMs?: number
    readonly updateStreamMs?: number
    readonly shardLimit?: number
  }
  function kinesalite(options?: KinesaliteOptions): Server
  export default kinesalite
}

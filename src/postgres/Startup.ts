/**
 * The start of a PostgreSQL session on our own protocol connection: the StartupMessage, then
 * authentication (trust, cleartext, MD5, SCRAM-SHA-256 with the server's signature checked) until
 * the first ReadyForQuery. Built on the pure codecs of `@effect/sql-pg` (PgProtocol, PgAuth).
 */
import * as PgAuth from "@effect/sql-pg/PgAuth"
import * as PgProtocol from "@effect/sql-pg/PgProtocol"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import type { PgConfig } from "../config/ServiceConfig.ts"
import { PgError } from "../Errors.ts"
import * as ErrorPolicy from "../ErrorPolicy.ts"

/** Backend messages as a connection's mailbox keeps them: DataRow values decoded as text. */
export type Inbound =
  | Exclude<PgProtocol.BackendMessage, PgProtocol.DataRow>
  | { readonly _tag: "Row"; readonly values: ReadonlyArray<string | null> }

/** What the server told about itself during startup. */
export interface ServerInfo {
  /** The backend's process id (from BackendKeyData). */
  readonly backendPid: number
  /** The server's major version, e.g. 15. */
  readonly serverMajorVersion: number
}

/**
 * Sends the StartupMessage with `parameters` (user and database come from `pg`) and answers the
 * server's authentication requests, reading messages with `next` and writing with `write`.
 * Succeeds at the first ReadyForQuery.
 */
export const authenticate = (
  pg: PgConfig,
  parameters: Readonly<Record<string, string>>,
  io: {
    readonly next: Effect.Effect<Inbound, PgError>
    readonly write: (bytes: Uint8Array) => boolean
  }
): Effect.Effect<ServerInfo, PgError> =>
  Effect.gen(function*() {
    const { next, write } = io
    write(PgProtocol.encodeStartupMessage({ user: pg.user, database: pg.database, ...parameters }))
    const password = (): Effect.Effect<string, PgError> =>
      pg.password === undefined
        ? Effect.fail(new PgError({ reason: "Authentication", message: `the server asks a password for user ${pg.user}, but PGPASSWORD is not set` }))
        : Effect.succeed(Redacted.value(pg.password))
    const authError = (error: PgAuth.AuthError) => new PgError({ reason: "Authentication", message: `authentication as ${pg.user} failed: ${error.message}` })

    let backendPid = 0
    let serverVersion = ""
    let scramFirst: PgAuth.ScramFirst | undefined
    let scramFinal: PgAuth.ScramFinal | undefined
    while (true) {
      const message = yield* next
      switch (message._tag) {
        case "AuthenticationOk":
          break
        case "AuthenticationCleartextPassword":
          write(PgProtocol.encodePasswordMessage({ password: yield* password() }))
          break
        case "AuthenticationMD5Password": {
          const hashed = yield* Effect.mapError(
            Effect.fromResult(PgAuth.md5Password({ user: pg.user, password: yield* password(), salt: message.salt })),
            authError
          )
          write(PgProtocol.encodePasswordMessage({ password: hashed }))
          break
        }
        case "AuthenticationSASL": {
          if (!message.mechanisms.includes(PgAuth.SCRAM_SHA_256)) {
            return yield* new PgError({ reason: "Authentication", message: `the server offers SASL mechanisms ${message.mechanisms.join(", ")}; only ${PgAuth.SCRAM_SHA_256} is supported`
            })
          }
          const first = yield* Effect.mapError(
            Effect.fromResult(PgAuth.scramInit({ password: yield* password(), nonce: randomBytes(18).toString("base64") })),
            authError
          )
          scramFirst = first.state
          write(PgProtocol.encodeSASLInitialResponse({ mechanism: PgAuth.SCRAM_SHA_256, initialResponse: first.response }))
          break
        }
        case "AuthenticationSASLContinue": {
          if (scramFirst === undefined) return yield* new PgError({ reason: "Authentication", message: "unexpected SASL challenge" })
          const final = yield* Effect.mapError(Effect.fromResult(PgAuth.scramContinue(scramFirst, message.data)), authError)
          scramFinal = final.state
          write(PgProtocol.encodeSASLResponse({ data: final.response }))
          break
        }
        case "AuthenticationSASLFinal":
          if (scramFinal === undefined) return yield* new PgError({ reason: "Authentication", message: "unexpected SASL final message" })
          // verifies the server's signature: the server knew the password too
          yield* Effect.mapError(Effect.fromResult(PgAuth.scramFinish(scramFinal, message.data)), authError)
          break
        case "AuthenticationUnsupported":
          return yield* new PgError({ reason: "Authentication", message: `the server asks for an unsupported authentication method (${message.method})` })
        case "ErrorResponse":
          // a refused login (28000, 28P01) is Authentication; a missing database a Statement error
          return yield* ErrorPolicy.fromErrorResponse(message.fields)
        case "BackendKeyData":
          backendPid = message.pid
          break
        case "ParameterStatus":
          if (message.name === "server_version") serverVersion = message.value
          break
        case "ReadyForQuery":
          return { backendPid, serverMajorVersion: Number(/^(\d+)/.exec(serverVersion)?.[1] ?? 0) }
        default:
          break // NoticeResponse, NegotiateProtocolVersion
      }
    }
  })

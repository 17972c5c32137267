/**
 * The publication pgoutput streams: made sure to exist before streaming starts (created FOR ALL
 * TABLES when the role may), and which tables it streams.
 * Runs its SQL through a query function, so it works on the replication connection too.
 */
import * as Effect from "effect/Effect"
import { type ServiceError, SlotError } from "../Errors.ts"
import * as Quote from "../postgres/Quote.ts"

/** Runs one SQL statement (simple query) and returns its rows as text. */
export type Query = (sql: string) => Effect.Effect<ReadonlyArray<ReadonlyArray<string | null>>, ServiceError>


/** The statement that creates the publication the service expects. */
export const createStatement = (publication: string): string => `CREATE PUBLICATION ${Quote.identifier(publication)} FOR ALL TABLES`

/**
 * Makes sure `publication` exists. When it is missing, creates it FOR ALL TABLES if the role is a
 * superuser (PostgreSQL requires that for FOR ALL TABLES); otherwise fails with SlotError (PluginUnavailable)
 * giving the statement to run. Returns whether it created the publication.
 */
export const ensure = (query: Query, publication: string): Effect.Effect<boolean, ServiceError> =>
  Effect.gen(function*() {
    const existing = yield* query(`SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = ${Quote.literal(publication)}`)
    if (existing.length > 0) return false
    const role = yield* query(`SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`)
    const [user, superuser] = role[0] ?? [null, null]
    if (superuser !== "t") {
      return yield* SlotError.pluginUnavailable(
        `publication ${Quote.identifier(publication)} does not exist and role ${Quote.identifier(user ?? "?")} may not create it ` +
          `(FOR ALL TABLES needs a superuser): as a superuser, run: ${createStatement(publication)};`
      )
    }
    yield* query(createStatement(publication))
    return true
  })

/**
 * Whether the publication streams a table (`pg_publication_tables`, read once): for naming the
 * published tables whose rows cannot be followed by key.
 */
export const tables = (
  query: Query,
  publication: string
): Effect.Effect<(schema: string, table: string) => boolean, ServiceError> =>
  Effect.map(
    query(`SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = ${Quote.literal(publication)}`),
    (rows) => {
      const names = new Set(rows.map(([schema, table]) => `${schema}.${table}`))
      return (schema, table) => names.has(`${schema}.${table}`)
    }
  )

/**
 * The publication pgoutput streams: made sure to exist before streaming starts (created FOR ALL
 * TABLES when the role may), and the primary keys of published tables for the pgoutput decoder.
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
 * The primary-key columns (in table order) of every table with one, keyed `schema.table`; the
 * pgoutput decoder's `primaryKey` option, for tables whose replica identity is not their key.
 */
export const primaryKeys = (query: Query): Effect.Effect<ReadonlyMap<string, ReadonlyArray<string>>, ServiceError> =>
  Effect.map(
    query(
      `SELECT n.nspname, c.relname, json_agg(a.attname ORDER BY a.attnum)::text
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
        WHERE i.indisprimary AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        GROUP BY n.nspname, c.relname`
    ),
    (rows) => {
      const keys = new Map<string, ReadonlyArray<string>>()
      for (const [schema, table, columns] of rows) {
        if (schema == null || table == null || columns == null) continue
        keys.set(`${schema}.${table}`, JSON.parse(columns) as ReadonlyArray<string>)
      }
      return keys
    }
  )

/** The pgoutput decoder's `primaryKey` option over keys loaded by `primaryKeys`. */
export const primaryKeyOf = (keys: ReadonlyMap<string, ReadonlyArray<string>>) =>
  (schema: string, table: string): ReadonlyArray<string> | undefined => keys.get(`${schema}.${table}`)

#!/usr/bin/env bash
#
# Creates (or brings up to date) the replication user of the dev database. Safe to run any number
# of times. Terraform runs it after the RDS instance is available; it can also be run by hand.
#
# Everything comes from the environment, nothing from the command line, so no password shows up
# in a process listing:
#   PGHOST, PGPORT, PGDATABASE     where to connect (PGPORT defaults to 5432)
#   PGUSER, PGPASSWORD             master (admin) credentials
#   REPLICATION_USERNAME           user to create or update
#   REPLICATION_PASSWORD           its password
# Optional:
#   PGSSLMODE                      libpq sslmode; default require (RDS); a local test may use disable
#   BOOTSTRAP_PSQL                 native | docker | auto (default): native psql needs version 15 or
#                                  newer (for \getenv); otherwise psql runs in the postgres:15 image
#   BOOTSTRAP_PSQL_IMAGE           image for the Docker fallback (default postgres:15)
#   BOOTSTRAP_CONNECT_ATTEMPTS     tries before giving up on connecting (default 30)
#   BOOTSTRAP_CONNECT_DELAY_SECONDS  pause between tries (default 10)
#
# What it does, in one psql session:
#   1. CREATE ROLE ... LOGIN PASSWORD, or ALTER ROLE ... LOGIN PASSWORD when the user exists;
#   2. GRANT rds_replication when that role exists (RDS), else ALTER ROLE ... REPLICATION;
#   3. GRANT CONNECT on the database.
# User names and passwords go into SQL only through psql variables (:"name" quotes an
# identifier, :'value' a literal), never through string interpolation.
# Written for any bash from 3.2 (the one macOS ships) on.

set -euo pipefail

die() {
  printf 'bootstrap_db: %s\n' "$*" >&2
  exit 1
}

log() {
  printf 'bootstrap_db: %s\n' "$*" >&2
}

: "${PGHOST:?PGHOST must be set}"
: "${PGDATABASE:?PGDATABASE must be set}"
: "${PGUSER:?PGUSER (the master user) must be set}"
: "${PGPASSWORD:?PGPASSWORD (the master password) must be set}"
: "${REPLICATION_USERNAME:?REPLICATION_USERNAME must be set}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"

export PGHOST PGDATABASE PGUSER PGPASSWORD REPLICATION_USERNAME REPLICATION_PASSWORD
export PGPORT="${PGPORT:-5432}"
export PGSSLMODE="${PGSSLMODE:-require}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"
export PGAPPNAME="${PGAPPNAME:-cdc-bootstrap-db}"

replication_user_lower="$(printf '%s' "${REPLICATION_USERNAME}" | tr '[:upper:]' '[:lower:]')"
master_user_lower="$(printf '%s' "${PGUSER}" | tr '[:upper:]' '[:lower:]')"
if [[ "${replication_user_lower}" == "${master_user_lower}" ]]; then
  die "REPLICATION_USERNAME must differ from the master user PGUSER"
fi

psql_mode="${BOOTSTRAP_PSQL:-auto}"
psql_image="${BOOTSTRAP_PSQL_IMAGE:-postgres:15}"
attempts="${BOOTSTRAP_CONNECT_ATTEMPTS:-30}"
delay="${BOOTSTRAP_CONNECT_DELAY_SECONDS:-10}"

[[ "${attempts}" =~ ^[1-9][0-9]*$ ]] || die "BOOTSTRAP_CONNECT_ATTEMPTS must be a positive integer"
[[ "${delay}" =~ ^[0-9]+$ ]] || die "BOOTSTRAP_CONNECT_DELAY_SECONDS must be a non-negative integer"

# The major version of the native psql, or 0 when there is none.
native_psql_major() {
  local version
  command -v psql >/dev/null 2>&1 || { printf '0'; return; }
  version="$(psql --version 2>/dev/null | sed -n 's/^psql (PostgreSQL) \([0-9][0-9]*\).*/\1/p')"
  printf '%s' "${version:-0}"
}

native_major="$(native_psql_major)"
case "${psql_mode}" in
  auto)
    if (( native_major >= 15 )); then
      psql_mode=native
    elif command -v docker >/dev/null 2>&1; then
      psql_mode=docker
    else
      die "need psql 15 or newer, or Docker to run it from the ${psql_image} image"
    fi
    ;;
  native)
    (( native_major >= 15 )) || die "BOOTSTRAP_PSQL=native needs psql 15 or newer on PATH"
    ;;
  docker)
    command -v docker >/dev/null 2>&1 || die "BOOTSTRAP_PSQL=docker needs docker on PATH"
    ;;
  *)
    die "BOOTSTRAP_PSQL must be auto, native or docker, not '${psql_mode}'"
    ;;
esac
log "using ${psql_mode} psql; connecting to ${PGHOST}:${PGPORT}/${PGDATABASE} as ${PGUSER} (sslmode=${PGSSLMODE})"

# Runs psql with the given arguments, reading SQL from standard input when no -c is given.
# `docker run -e NAME` copies NAME's value from this environment, so secrets stay off the command line.
run_psql() {
  if [[ "${psql_mode}" == native ]]; then
    psql --no-psqlrc --set=ON_ERROR_STOP=1 "$@"
  else
    docker run --rm -i \
      -e PGHOST -e PGPORT -e PGDATABASE -e PGUSER -e PGPASSWORD -e PGSSLMODE \
      -e PGCONNECT_TIMEOUT -e PGAPPNAME -e REPLICATION_USERNAME -e REPLICATION_PASSWORD \
      "${psql_image}" psql --no-psqlrc --set=ON_ERROR_STOP=1 "$@"
  fi
}

# A fresh instance can take a while to resolve in DNS or to accept connections: retry.
try=1
# shellcheck disable=SC2310 # a failed attempt must not end the script: that is what the loop is for
until run_psql --quiet --tuples-only --command='SELECT 1' >/dev/null; do
  if (( try >= attempts )); then
    die "could not connect after ${attempts} attempts"
  fi
  log "connection attempt ${try}/${attempts} failed; retrying in ${delay}s"
  sleep "${delay}"
  try=$((try + 1))
done

run_psql --quiet <<'SQL'
\getenv repl_user REPLICATION_USERNAME
\getenv repl_password REPLICATION_PASSWORD

SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'repl_user') AS repl_user_exists,
       EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rds_replication') AS has_rds_replication,
       current_database() AS target_database
\gset

\if :repl_user_exists
  \echo 'bootstrap_db: user exists; updating LOGIN and password'
  ALTER ROLE :"repl_user" WITH LOGIN PASSWORD :'repl_password';
\else
  \echo 'bootstrap_db: creating user'
  CREATE ROLE :"repl_user" WITH LOGIN PASSWORD :'repl_password';
\endif

\if :has_rds_replication
  -- RDS: the REPLICATION attribute cannot be granted there; membership in rds_replication is
  -- what allows replication connections and slot management.
  \echo 'bootstrap_db: granting rds_replication'
  GRANT rds_replication TO :"repl_user";
\else
  \echo 'bootstrap_db: no rds_replication role; setting the REPLICATION attribute'
  ALTER ROLE :"repl_user" WITH REPLICATION;
\endif

GRANT CONNECT ON DATABASE :"target_database" TO :"repl_user";
\echo 'bootstrap_db: done'
SQL

#!/usr/bin/env bash
# Create (idempotently) the Konstruct roles, database and extensions:
#
#   konstruct_owner  LOGIN CREATEDB, owns the database and every table
#                    (migrations and tests connect as it; tests create their
#                    own databases with it)
#   konstruct_app    LOGIN, owns nothing, cannot bypass RLS (the app's role)
#   konstruct        database owned by konstruct_owner
#   temporal         LOGIN CREATEDB, the role of the Temporal Server on
#                    PostgreSQL (TEMPORAL=server, scripts/temporal-server.sh,
#                    which creates its databases temporal and
#                    temporal_visibility with it); owns nothing of Konstruct
#   vector           extension in konstruct and in template1, so that every
#                    database created later (test databases) already has it:
#                    pgvector is not a trusted extension, only a superuser
#                    can create it.
#
# Environment (defaults): KONSTRUCT_DB_HOST (127.0.0.1), KONSTRUCT_DB_PORT
# (5432), KONSTRUCT_DB_NAME (konstruct), KONSTRUCT_DB_OWNER (konstruct_owner),
# KONSTRUCT_DB_OWNER_PASSWORD (konstruct), KONSTRUCT_DB_APP (konstruct_app),
# KONSTRUCT_DB_APP_PASSWORD (konstruct), KONSTRUCT_DB_SUPERUSER_URL (unset: try
# user postgres over TCP, then the postgres OS user over the socket).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DB_HOST="${KONSTRUCT_DB_HOST:-127.0.0.1}"
DB_PORT="${KONSTRUCT_DB_PORT:-5432}"
DB_NAME="${KONSTRUCT_DB_NAME:-konstruct}"
OWNER="${KONSTRUCT_DB_OWNER:-konstruct_owner}"
OWNER_PW="${KONSTRUCT_DB_OWNER_PASSWORD:-konstruct}"
APP="${KONSTRUCT_DB_APP:-konstruct_app}"
APP_PW="${KONSTRUCT_DB_APP_PASSWORD:-konstruct}"
# Fixed names: temporal-server.yaml and docker-compose.yml use them too.
TEMPORAL_ROLE=temporal
TEMPORAL_PW=temporal

have psql || die "psql not found: run scripts/postgres.sh first (or apt-get install postgresql-client-15)"

# --- how to reach the server as a superuser ---------------------------------
SUPER_MODE=""
super_psql_raw() { # DB ARGS...: psql as a superuser, no psqlrc, stop on error
	local db="$1"
	shift
	case "${SUPER_MODE}" in
	url) psql "${KONSTRUCT_DB_SUPERUSER_URL}" -X -w -v ON_ERROR_STOP=1 -q -At -c "\\c ${db}" "$@" ;;
	tcp) psql -h "${DB_HOST}" -p "${DB_PORT}" -U postgres -d "${db}" -X -w -v ON_ERROR_STOP=1 -q -At "$@" ;;
	peer) as_postgres psql -p "${DB_PORT}" -d "${db}" -X -w -v ON_ERROR_STOP=1 -q -At "$@" ;;
	*) die "internal: no superuser connection" ;;
	esac
}

is_superuser_with() {
	SUPER_MODE="$1"
	[[ "$(super_psql_raw postgres -c 'select rolsuper from pg_roles where rolname = current_user' 2>/dev/null)" == t ]]
}

find_superuser() {
	if [[ -n "${KONSTRUCT_DB_SUPERUSER_URL:-}" ]]; then
		is_superuser_with url && return 0
		die "KONSTRUCT_DB_SUPERUSER_URL does not connect as a superuser"
	fi
	is_superuser_with tcp && { log "connected as superuser postgres on ${DB_HOST}:${DB_PORT}"; return 0; }
	if id postgres >/dev/null 2>&1; then
		is_superuser_with peer && { log "connected as superuser postgres over the local socket"; return 0; }
	fi
	die "cannot connect to PostgreSQL as a superuser: tried 'psql -h ${DB_HOST} -p ${DB_PORT} -U postgres' and the postgres OS user over the socket; set KONSTRUCT_DB_SUPERUSER_URL or run scripts/postgres.sh"
}

# sql DB: run SQL from stdin with the role/database names bound as psql
# variables (:'owner' is a quoted literal; \gexec runs generated statements,
# so that nothing is executed unless it is missing).
sql() {
	local db="$1"
	super_psql_raw "${db}" \
		-v owner="${OWNER}" -v owner_pw="${OWNER_PW}" \
		-v app="${APP}" -v app_pw="${APP_PW}" -v db="${DB_NAME}" \
		-v temporal="${TEMPORAL_ROLE}" -v temporal_pw="${TEMPORAL_PW}" \
		-f -
}

# login_ok ROLE PASSWORD [DB]: a password login over TCP works.
login_ok() {
	PGPASSWORD="$2" psql "host=${DB_HOST} port=${DB_PORT} user=$1 dbname=${3:-${DB_NAME}} sslmode=disable connect_timeout=5" \
		-X -w -q -At -c 'select 1' >/dev/null 2>&1
}

find_superuser

# --- roles --------------------------------------------------------------------
log "ensuring roles ${OWNER} and ${APP}"
sql postgres <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS NOCREATEROLE PASSWORD %L', :'owner', :'owner_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD %L', :'app', :'app_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
-- Fix attributes only where they differ.
SELECT format('ALTER ROLE %I LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS NOCREATEROLE', rolname)
  FROM pg_roles WHERE rolname = :'owner'
   AND NOT (rolcanlogin AND rolcreatedb AND NOT rolsuper AND NOT rolbypassrls AND NOT rolcreaterole) \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', rolname)
  FROM pg_roles WHERE rolname = :'app'
   AND NOT (rolcanlogin AND NOT rolcreatedb AND NOT rolsuper AND NOT rolbypassrls AND NOT rolcreaterole) \gexec
-- A role without a password gets one.
SELECT format('ALTER ROLE %I PASSWORD %L', rolname, CASE WHEN rolname = :'owner' THEN :'owner_pw' ELSE :'app_pw' END)
  FROM pg_authid WHERE rolname IN (:'owner', :'app') AND rolpassword IS NULL \gexec
SQL
log "ensuring role ${TEMPORAL_ROLE} (Temporal Server on PostgreSQL)"
sql postgres <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD %L', :'temporal', :'temporal_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'temporal') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB NOSUPERUSER NOCREATEROLE', rolname)
  FROM pg_roles WHERE rolname = :'temporal'
   AND NOT (rolcanlogin AND rolcreatedb AND NOT rolsuper AND NOT rolcreaterole) \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', rolname, :'temporal_pw')
  FROM pg_authid WHERE rolname = :'temporal' AND rolpassword IS NULL \gexec
SQL

# --- database -----------------------------------------------------------------
log "ensuring database ${DB_NAME} owned by ${OWNER}"
sql postgres <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', datname, :'owner')
  FROM pg_database WHERE datname = :'db' AND pg_get_userbyid(datdba) <> :'owner' \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'app')
 WHERE NOT has_database_privilege(:'app', :'db', 'CONNECT')
    OR NOT EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a
                    WHERE d.datname = :'db' AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = :'app')
                      AND a.privilege_type = 'CONNECT') \gexec
SQL

# --- extension and schema, in the database and in template1 ------------------
ext_sql() {
	cat <<'SQL'
SELECT 'CREATE EXTENSION vector' WHERE NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') \gexec
SELECT 'ALTER EXTENSION vector UPDATE'
  FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
 WHERE e.extname = 'vector' AND e.extversion IS DISTINCT FROM a.default_version \gexec
SQL
}
for db in "${DB_NAME}" template1; do
	log "ensuring extension vector in ${db}"
	ext_sql | sql "${db}"
done
log "ensuring ${OWNER} can create in schema public of ${DB_NAME}"
sql "${DB_NAME}" <<'SQL'
-- PG15: public belongs to pg_database_owner (= the database owner) and
-- PUBLIC has no CREATE on it. Any other owner is replaced.
SELECT format('ALTER SCHEMA public OWNER TO %I', :'owner')
  FROM pg_namespace WHERE nspname = 'public'
   AND pg_get_userbyid(nspowner) NOT IN (:'owner', 'pg_database_owner') \gexec
SELECT format('GRANT USAGE, CREATE ON SCHEMA public TO %I', :'owner')
 WHERE NOT has_schema_privilege(:'owner', 'public', 'CREATE') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'app')
 WHERE NOT has_schema_privilege(:'app', 'public', 'USAGE') \gexec
SQL

# --- password logins over TCP -------------------------------------------------
set_password() { # ROLE PASSWORD
	super_psql_raw postgres -v r="$1" -v p="$2" -f - <<<"SELECT format('ALTER ROLE %I PASSWORD %L', :'r', :'p') \\gexec"
}
# ensure_pg_hba ROLES MARKER: allow password logins of ROLES (comma-separated)
# over TCP, once (MARKER names the entry in pg_hba.conf).
ensure_pg_hba() {
	local roles="$1" marker="# konstruct: $2" hba line
	hba="$(super_psql_raw postgres -c 'show hba_file')"
	line="host all ${roles} ${DB_HOST}/32 scram-sha-256"
	[[ "${DB_HOST}" == 127.0.0.1 ]] || die "password login to ${DB_HOST} fails; fix pg_hba.conf of that server by hand"
	[[ -f "${hba}" ]] || die "password login fails and pg_hba.conf (${hba}) is not on this machine; fix it by hand"
	if as_root grep -qF "${marker}" "${hba}"; then
		die "password login fails although ${hba} has the konstruct entry; check the server log"
	fi
	log "adding '${line}' at the top of ${hba} and reloading"
	as_root sed -i "1i ${marker} (scripts/db-setup.sh)\\
${line}\\
host all ${roles} ::1/128 scram-sha-256" "${hba}"
	super_psql_raw postgres -c 'select pg_reload_conf()' >/dev/null
	sleep 0.5
}
for pair in "${OWNER}:${OWNER_PW}" "${APP}:${APP_PW}"; do
	role="${pair%%:*}" pw="${pair#*:}"
	if ! login_ok "${role}" "${pw}"; then
		log "password login as ${role} failed; setting its password"
		set_password "${role}" "${pw}"
		if ! login_ok "${role}" "${pw}"; then
			ensure_pg_hba "${OWNER},${APP}" "password logins for the app roles"
			login_ok "${role}" "${pw}" || die "password login as ${role} on ${DB_HOST}:${DB_PORT} still fails"
		fi
	fi
done
if ! login_ok "${TEMPORAL_ROLE}" "${TEMPORAL_PW}" postgres; then
	log "password login as ${TEMPORAL_ROLE} failed; setting its password"
	set_password "${TEMPORAL_ROLE}" "${TEMPORAL_PW}"
	if ! login_ok "${TEMPORAL_ROLE}" "${TEMPORAL_PW}" postgres; then
		ensure_pg_hba "${TEMPORAL_ROLE}" "password logins for the Temporal Server role"
		login_ok "${TEMPORAL_ROLE}" "${TEMPORAL_PW}" postgres || die "password login as ${TEMPORAL_ROLE} on ${DB_HOST}:${DB_PORT} still fails"
	fi
fi

# --- report -------------------------------------------------------------------
version="$(PGPASSWORD="${OWNER_PW}" psql "host=${DB_HOST} port=${DB_PORT} user=${OWNER} dbname=${DB_NAME} sslmode=disable" \
	-X -w -q -At -c "select extversion from pg_extension where extname = 'vector'")"
log "database ${DB_NAME} ready (pgvector ${version})"
show_pw() { if [[ "$1" == konstruct ]]; then printf '%s' "$1"; else printf '****'; fi; }
log "owner URL: postgres://${OWNER}:$(show_pw "${OWNER_PW}")@${DB_HOST}:${DB_PORT}/${DB_NAME}?sslmode=disable"
log "app URL:   postgres://${APP}:$(show_pw "${APP_PW}")@${DB_HOST}:${DB_PORT}/${DB_NAME}?sslmode=disable"

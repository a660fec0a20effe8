#!/usr/bin/env bash
# Temporal Server on PostgreSQL (the production shape: several history
# shards, SQL persistence) and a Web UI for it, natively, BESIDE the dev
# server of scripts/temporal.sh: own ports (frontend 7243, UI 8243), own
# databases. Used by `make dev|test|bench TEMPORAL=server`.
#
#   scripts/temporal-server.sh [start]  install what is missing, create the
#                                       databases and set up / update their
#                                       schemas, start the server and the UI
#                                       unless they answer, make sure the
#                                       namespace and search attributes exist
#   scripts/temporal-server.sh install  only install the three binaries
#   scripts/temporal-server.sh stop     stop the server and UI this script started
#   scripts/temporal-server.sh status   print whether they answer
#   scripts/temporal-server.sh reset    stop them and DROP both databases (every
#                                       workflow in them): the only way to change
#                                       numHistoryShards
#
# Installs into .konstruct/bin (from the Go module proxy, several minutes the
# first time): temporal-server and temporal-sql-tool (go.temporal.io/server
# cmd/server and cmd/tools/sql at the version the CLI v1.5.1 embeds) and
# temporal-ui-server (github.com/temporalio/ui-server/v2 cmd/server at the UI
# version the CLI embeds; its module carries the built UI).
# Settings: temporal-server.yaml (server), scripts/temporal-server/
# dynamicconfig.yaml and ui.yaml; the namespace and the search attributes come
# from temporal-dev.yaml, so that both back ends have the same ones.
# Databases: temporal and temporal_visibility, owned by the role temporal
# (scripts/db-setup.sh creates it) on KONSTRUCT_DB_HOST:KONSTRUCT_DB_PORT.
# Files: .konstruct/temporal-server.{log,pid}, .konstruct/temporal-ui.{log,pid}.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/temporal-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/temporal-lib.sh"

# The versions inside the CLI v1.5.1 binary (`go version -m .konstruct/bin/temporal`):
# server and UI stay those the dev server runs, so both back ends behave alike.
SERVER_MODULE=go.temporal.io/server
SERVER_VERSION=v1.29.1
UI_MODULE=github.com/temporalio/ui-server/v2
UI_VERSION=v2.42.1

SERVER_BIN="${KONSTRUCT_BIN}/temporal-server"
SQL_TOOL="${KONSTRUCT_BIN}/temporal-sql-tool"
UI_BIN="${KONSTRUCT_BIN}/temporal-ui-server"
CONFIG="${KONSTRUCT_ROOT}/temporal-server.yaml"
UI_CONFIG="${KONSTRUCT_ROOT}/scripts/temporal-server/ui.yaml"
PIDFILE="${KONSTRUCT_STATE}/temporal-server.pid"
LOGFILE="${KONSTRUCT_STATE}/temporal-server.log"
UI_PIDFILE="${KONSTRUCT_STATE}/temporal-ui.pid"
UI_LOGFILE="${KONSTRUCT_STATE}/temporal-ui.log"
SQL_LOGFILE="${KONSTRUCT_STATE}/temporal-sql-tool.log"
START_TIMEOUT="${KONSTRUCT_TEMPORAL_START_TIMEOUT:-180}"

DB_HOST="${KONSTRUCT_DB_HOST:-127.0.0.1}"
DB_PORT="${KONSTRUCT_DB_PORT:-5432}"
DB_USER=temporal # as in temporal-server.yaml and scripts/db-setup.sh
DB_PW=temporal
DATABASES=(temporal:postgresql/v12/temporal temporal_visibility:postgresql/v12/visibility)
RETENTION=24h # of closed workflows in the namespace, as on the dev server

# The server reads temporal-server.yaml from its working directory's view of
# --root/--config; dynamicConfigClient.filepath is relative to it too.
cd "${KONSTRUCT_ROOT}"
SERVER_ARGS=(--root "${KONSTRUCT_ROOT}" --config . --env temporal-server --allow-no-auth)

# --- install -------------------------------------------------------------------

# has_module BIN MODULE VERSION: BIN exists and was built from MODULE@VERSION.
has_module() {
	[[ -x "$1" ]] &&
		go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]*mod[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)"
}

# install_pkgs MODULE VERSION NAME=PKG...: go install MODULE/PKG@VERSION for
# each pair in one build and put each binary into .konstruct/bin as NAME
# (the packages are all called "server" or "sql" upstream).
install_pkgs() {
	local module="$1" version="$2" spec tmp t0=${SECONDS} pkgs=()
	shift 2
	ensure_go
	ensure_state_dirs
	for spec in "$@"; do pkgs+=("${module}/${spec#*=}@${version}"); done
	tmp="$(mktemp -d "${KONSTRUCT_STATE}/gobin.XXXXXX")"
	log "go install ${pkgs[*]} (the first time takes minutes)"
	# Outside the repo, so that the project's go.mod does not take part.
	if ! (cd / && GOBIN="${tmp}" go install "${pkgs[@]}"); then
		rm -rf "${tmp}"
		die "go install ${pkgs[*]} failed"
	fi
	for spec in "$@"; do
		mv -f "${tmp}/$(basename "${spec#*=}")" "${KONSTRUCT_BIN}/${spec%%=*}" ||
			die "go install did not produce ${spec#*=}"
	done
	rm -rf "${tmp}"
	log "installed $* (${module}@${version}) in $((SECONDS - t0))s"
}

ensure_tools() {
	ensure_cli
	ensure_args_tool
	if ! has_module "${SERVER_BIN}" "${SERVER_MODULE}" "${SERVER_VERSION}" ||
		! has_module "${SQL_TOOL}" "${SERVER_MODULE}" "${SERVER_VERSION}"; then
		install_pkgs "${SERVER_MODULE}" "${SERVER_VERSION}" temporal-server=cmd/server temporal-sql-tool=cmd/tools/sql
	fi
	if ! has_module "${UI_BIN}" "${UI_MODULE}" "${UI_VERSION}"; then
		install_pkgs "${UI_MODULE}" "${UI_VERSION}" temporal-ui-server=cmd/server
	fi
	# The pins above must stay the versions the CLI embeds.
	local embedded
	embedded="$(go version -m "${TEMPORAL}" | awk -v m="${SERVER_MODULE}" '$1 == "dep" && $2 == m {print $3}')"
	if [[ -n "${embedded}" && "${embedded}" != "${SERVER_VERSION}" ]]; then
		warn "the CLI embeds ${SERVER_MODULE} ${embedded} but this script pins ${SERVER_VERSION}; update SERVER_VERSION"
	fi
}

# --- settings ------------------------------------------------------------------

# yaml_value a.b.c: the scalar at that path of the YAML on stdin (block
# mappings only, as the server's render-config prints them).
yaml_value() {
	awk -v want="$1" '
		match($0, /^ *[A-Za-z0-9_-]+:/) {
			len = RLENGTH
			indent = match($0, /[^ ]/) - 1
			key = substr($0, indent + 1, len - indent - 1)
			value = substr($0, len + 1)
			sub(/^ +/, "", value)
			while (depth > 0 && indents[depth] >= indent) depth--
			depth++
			indents[depth] = indent
			keys[depth] = key
			path = keys[1]
			for (i = 2; i <= depth; i++) path = path "." keys[i]
			if (path == want && value != "") { gsub(/^["]|["]$/, "", value); print value; exit }
		}'
}

# load_settings: the frontend address and shard count from temporal-server.yaml
# as the server itself renders it (its own loader, templates applied), the UI
# address from ui.yaml, namespace and search attributes from temporal-dev.yaml.
load_settings() {
	local rendered line key value
	[[ -f "${CONFIG}" ]] || die "${CONFIG} not found"
	rendered="$("${SERVER_BIN}" "${SERVER_ARGS[@]}" render-config 2>/dev/null)" ||
		die "temporal-server.yaml is invalid: $("${SERVER_BIN}" "${SERVER_ARGS[@]}" render-config 2>&1 | tail -n 1)"
	T_PORT="$(yaml_value services.frontend.rpc.grpcPort <<<"${rendered}")"
	T_IP="$(yaml_value services.frontend.rpc.bindOnIP <<<"${rendered}")"
	T_SHARDS="$(yaml_value persistence.numHistoryShards <<<"${rendered}")"
	[[ "${T_PORT}" =~ ^[0-9]+$ ]] || die "temporal-server.yaml: services.frontend.rpc.grpcPort not found"
	[[ -n "${T_IP}" ]] || T_IP=127.0.0.1
	T_ADDRESS="${T_IP}:${T_PORT}"
	UI_HOST="$(sed -n 's/^host:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "${UI_CONFIG}")"
	UI_PORT="$(sed -n 's/^port:[[:space:]]*\([0-9]*\).*/\1/p' "${UI_CONFIG}")"
	[[ "${UI_PORT}" =~ ^[0-9]+$ ]] || die "${UI_CONFIG}: port not found"
	: "${UI_HOST:=127.0.0.1}"
	local ui_target
	ui_target="$(sed -n 's/^temporalGrpcAddress:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "${UI_CONFIG}")"
	[[ "${ui_target}" == "${T_ADDRESS}" ]] ||
		warn "${UI_CONFIG#"${KONSTRUCT_ROOT}"/} points the UI at ${ui_target}, the server's frontend is ${T_ADDRESS}"

	T_NAMESPACE="${KONSTRUCT_TEMPORAL_NAMESPACE:-}"
	T_SEARCH_ATTRS=()
	while IFS= read -r line; do
		key="${line%%=*}" value="${line#*=}"
		case "${key}" in
		namespace) [[ -n "${T_NAMESPACE}" ]] || T_NAMESPACE="${value}" ;;
		search_attribute) T_SEARCH_ATTRS+=("${value}") ;;
		esac
	done < <("${ARGS_TOOL}" -root "${KONSTRUCT_ROOT}" env || die "temporal-dev.yaml is invalid (see above)")
	[[ -n "${T_NAMESPACE}" ]] || T_NAMESPACE=default
	T_RESET_HINT="scripts/temporal-server.sh reset drops the server's databases to start afresh"
}

# --- databases -----------------------------------------------------------------

sqltool() {
	"${SQL_TOOL}" --plugin postgres12 --ep "${DB_HOST}" --port "${DB_PORT}" \
		--user "${DB_USER}" --password "${DB_PW}" "$@" >>"${SQL_LOGFILE}" 2>&1
}

# tpsql DB SQL: one value from PostgreSQL as the temporal role.
tpsql() {
	PGPASSWORD="${DB_PW}" psql "host=${DB_HOST} port=${DB_PORT} user=${DB_USER} dbname=$1 sslmode=disable connect_timeout=5" \
		-X -w -q -At -v ON_ERROR_STOP=1 -c "$2"
}

schema_version() { # DB: the version recorded by the SQL tool, empty if none
	tpsql "$1" "select curr_version from schema_version where version_partition = 0 and db_name = '$1'" 2>/dev/null || true
}

ensure_databases() {
	local spec db schema before after
	have psql || die "psql not found: run scripts/postgres.sh first"
	tpsql postgres 'select 1' >/dev/null 2>&1 ||
		die "cannot log in to PostgreSQL on ${DB_HOST}:${DB_PORT} as role ${DB_USER}: run scripts/db-setup.sh (it creates the role)"
	: >"${SQL_LOGFILE}"
	for spec in "${DATABASES[@]}"; do
		db="${spec%%:*}" schema="${spec#*:}"
		if [[ "$(tpsql postgres "select count(*) from pg_database where datname = '${db}'")" != 1 ]]; then
			log "creating database ${db}"
			sqltool --db "${db}" create-database || die "creating database ${db} failed (log: ${SQL_LOGFILE#"${KONSTRUCT_ROOT}"/})"
		fi
		before="$(schema_version "${db}")"
		if [[ -z "${before}" ]]; then
			log "setting up the schema of ${db}"
			sqltool --db "${db}" setup-schema -v 0.0 || die "setup-schema of ${db} failed (log: ${SQL_LOGFILE#"${KONSTRUCT_ROOT}"/})"
		fi
		# Applies only the versions newer than the recorded one (none on a
		# second run); the schemas are embedded in the tool.
		sqltool --db "${db}" update-schema --schema-name "${schema}" ||
			die "update-schema of ${db} failed (log: ${SQL_LOGFILE#"${KONSTRUCT_ROOT}"/})"
		after="$(schema_version "${db}")"
		if [[ "${before}" == "${after}" ]]; then
			log "database ${db}: schema ${after} (up to date)"
		else
			log "database ${db}: schema ${before:-none} -> ${after}"
		fi
	done
}

# --- server, namespace, UI -----------------------------------------------------

show_log_tail() { # LOGFILE
	if [[ -s "$1" ]]; then
		log "last lines of ${1#"${KONSTRUCT_ROOT}"/}:"
		tail -n 30 "$1" >&2
	fi
}

start_server() {
	if healthy; then
		log "Temporal Server answers on ${T_ADDRESS} (left as it runs)"
		return 0
	fi
	if tcp_open "${T_IP}" "${T_PORT}"; then
		die "something listens on ${T_ADDRESS} but is not a healthy Temporal frontend; stop it or change the ports in temporal-server.yaml"
	fi
	start_background "Temporal Server" "${PIDFILE}" "${LOGFILE}" "${SERVER_BIN}" "${SERVER_ARGS[@]}" start
	local deadline=$((SECONDS + START_TIMEOUT))
	until healthy; do
		if ! pid_alive "${PIDFILE}"; then
			show_log_tail "${LOGFILE}"
			die "the Temporal Server exited during start-up (log above)"
		fi
		if ((SECONDS >= deadline)); then
			show_log_tail "${LOGFILE}"
			die "the Temporal Server did not answer on ${T_ADDRESS} within ${START_TIMEOUT}s (log above; stop it with scripts/temporal-server.sh stop)"
		fi
		sleep 0.5
	done
	log "Temporal Server answers on ${T_ADDRESS} (pid $(cat "${PIDFILE}"))"
}

namespace_ready() {
	tctl operator namespace describe --namespace "${T_NAMESPACE}" &&
		tctl workflow count --namespace "${T_NAMESPACE}"
}

ensure_namespace() {
	if ! tctl operator namespace describe --namespace "${T_NAMESPACE}" >/dev/null 2>&1; then
		log "creating namespace ${T_NAMESPACE} (retention ${RETENTION})"
		local out
		# A second frontend may have created it meanwhile: "already exists" is fine.
		out="$(tctl operator namespace create --namespace "${T_NAMESPACE}" --retention "${RETENTION}" 2>&1)" ||
			grep -qi 'already' <<<"${out}" || die "creating namespace ${T_NAMESPACE} failed: ${out}"
	fi
	# The frontends learn a new namespace when their namespace cache reloads.
	wait_until 60 "namespace ${T_NAMESPACE}" namespace_ready ||
		die "namespace ${T_NAMESPACE} is not usable on ${T_ADDRESS} after 60s"
}

# check_shards: the count the cluster runs with is the one recorded at its
# first start; a later change in temporal-server.yaml is ignored by the server.
check_shards() {
	local running
	running="$(tctl operator cluster describe -o json | sed -n 's/.*"historyShardCount":[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1)"
	if [[ -n "${running}" && -n "${T_SHARDS}" && "${running}" != "${T_SHARDS}" ]]; then
		warn "the cluster runs with ${running} history shards, recorded at its first start; numHistoryShards: ${T_SHARDS} in temporal-server.yaml is ignored. It can never change: scripts/temporal-server.sh reset drops the databases (all workflows) to start afresh with it"
	else
		log "history shards: ${running:-?}"
	fi
}

start_ui() {
	if tcp_open "${UI_HOST}" "${UI_PORT}"; then
		log "Temporal Web UI answers on http://${UI_HOST}:${UI_PORT} (left as it runs)"
		return 0
	fi
	start_background "Temporal Web UI" "${UI_PIDFILE}" "${UI_LOGFILE}" \
		"${UI_BIN}" --root "${KONSTRUCT_ROOT}" --config scripts/temporal-server --env ui start
	if ! wait_until 30 "Temporal Web UI" tcp_open "${UI_HOST}" "${UI_PORT}"; then
		show_log_tail "${UI_LOGFILE}"
		warn "the Temporal Web UI does not answer on http://${UI_HOST}:${UI_PORT} (log above)"
		return 0
	fi
	log "Temporal Web UI on http://${UI_HOST}:${UI_PORT} (pid $(cat "${UI_PIDFILE}"))"
}

# --- commands ------------------------------------------------------------------

cmd_start() {
	ensure_tools
	load_settings
	ensure_databases
	start_server
	ensure_namespace
	ensure_search_attrs
	check_shards
	start_ui
}

cmd_stop() {
	stop_pidfile "Temporal Web UI" "${UI_PIDFILE}" "${UI_BIN}"
	stop_pidfile "Temporal Server" "${PIDFILE}" "${SERVER_BIN}"
}

cmd_status() {
	local bin
	for bin in "${TEMPORAL}" "${ARGS_TOOL}" "${SERVER_BIN}" "${SQL_TOOL}" "${UI_BIN}"; do
		[[ -x "${bin}" ]] || die "${bin#"${KONSTRUCT_ROOT}"/} is not installed (scripts/temporal-server.sh install)"
	done
	load_settings
	local rc=0
	if healthy; then
		log "Temporal Server answers on ${T_ADDRESS}, namespace ${T_NAMESPACE}"
		if pid_alive "${PIDFILE}" "${SERVER_BIN}"; then log "started by this script (pid $(cat "${PIDFILE}"))"; fi
	else
		log "Temporal Server does not answer on ${T_ADDRESS}"
		rc=1
	fi
	if tcp_open "${UI_HOST}" "${UI_PORT}"; then
		log "Temporal Web UI answers on http://${UI_HOST}:${UI_PORT}"
	else
		log "Temporal Web UI does not answer on http://${UI_HOST}:${UI_PORT}"
		rc=1
	fi
	return "${rc}"
}

cmd_reset() {
	ensure_tools
	load_settings
	cmd_stop
	if healthy; then
		die "a Temporal Server not started by this script still answers on ${T_ADDRESS}: stop it first"
	fi
	local spec db
	: >"${SQL_LOGFILE}"
	for spec in "${DATABASES[@]}"; do
		db="${spec%%:*}"
		if [[ "$(tpsql postgres "select count(*) from pg_database where datname = '${db}'")" == 1 ]]; then
			log "dropping database ${db}"
			sqltool --db "${db}" drop-database --force || die "dropping ${db} failed (log: ${SQL_LOGFILE#"${KONSTRUCT_ROOT}"/})"
		fi
	done
	log "done: the next start sets the databases up afresh"
}

case "${1:-start}" in
start) cmd_start ;;
install) ensure_tools ;;
stop) cmd_stop ;;
status) cmd_status ;;
reset) cmd_reset ;;
*) die "usage: $0 [start|install|stop|status|reset]" ;;
esac

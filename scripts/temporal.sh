#!/usr/bin/env bash
# Temporal dev server (CLI v1.5.1: Server 1.29, Web UI 2.42) for development
# and tests, configured by temporal-dev.yaml (the single source of its
# settings, read through scripts/temporalargs).
#
#   scripts/temporal.sh [start]   install the CLI if missing, start the server
#                                 unless something already answers on its
#                                 port, make sure the search attributes exist
#   scripts/temporal.sh stop      stop the server this script started
#   scripts/temporal.sh status    print whether it answers
#
# Files: .konstruct/bin/temporal, .konstruct/temporal.log, .konstruct/temporal.pid
# and the SQLite file named in temporal-dev.yaml (.konstruct/temporal.db).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLI_MODULE=github.com/temporalio/cli
CLI_VERSION=v1.5.1 # later tags cannot be `go install`ed
TEMPORAL="${KONSTRUCT_BIN}/temporal"
ARGS_TOOL="${KONSTRUCT_BIN}/temporalargs"
CONFIG="${KONSTRUCT_ROOT}/temporal-dev.yaml"
PIDFILE="${KONSTRUCT_STATE}/temporal.pid"
LOGFILE="${KONSTRUCT_STATE}/temporal.log"
START_TIMEOUT="${KONSTRUCT_TEMPORAL_START_TIMEOUT:-120}"

ensure_cli() {
	if [[ -x "${TEMPORAL}" ]] &&
		go version -m "${TEMPORAL}" 2>/dev/null | grep -qE "^[[:space:]]*mod[[:space:]]+${CLI_MODULE}[[:space:]]+${CLI_VERSION}([[:space:]]|$)"; then
		return 0
	fi
	go_install "${CLI_MODULE}/cmd/temporal@${CLI_VERSION}" temporal
}

# ensure_args_tool: (re)build scripts/temporalargs when missing or outdated.
ensure_args_tool() {
	local src="${KONSTRUCT_ROOT}/scripts/temporalargs/main.go"
	if [[ -x "${ARGS_TOOL}" && "${ARGS_TOOL}" -nt "${src}" ]]; then
		return 0
	fi
	ensure_go
	ensure_state_dirs
	log "building scripts/temporalargs"
	(cd "${KONSTRUCT_ROOT}" && go build -o "${ARGS_TOOL}" ./scripts/temporalargs) ||
		die "building scripts/temporalargs failed"
}

# load_settings: read temporal-dev.yaml into T_* variables and START_ARGS.
load_settings() {
	local out line key value
	[[ -f "${CONFIG}" ]] || die "${CONFIG} not found"
	ensure_args_tool
	out="$("${ARGS_TOOL}" -root "${KONSTRUCT_ROOT}" -config "${CONFIG}" env)" ||
		die "temporal-dev.yaml is invalid (see above)"
	T_SEARCH_ATTRS=()
	while IFS= read -r line; do
		key="${line%%=*}" value="${line#*=}"
		case "${key}" in
		ip) T_IP="${value}" ;;
		port) T_PORT="${value}" ;;
		ui_port) T_UI_PORT="${value}" ;;
		namespace) T_NAMESPACE="${value}" ;;
		db_filename) T_DB="${value}" ;;
		search_attribute) T_SEARCH_ATTRS+=("${value}") ;;
		esac
	done <<<"${out}"
	out="$("${ARGS_TOOL}" -root "${KONSTRUCT_ROOT}" -config "${CONFIG}" args)" ||
		die "temporal-dev.yaml is invalid (see above)"
	mapfile -t START_ARGS <<<"${out}"
	T_ADDRESS="${T_IP}:${T_PORT}"
	if [[ "${T_IP}" == *:* ]]; then T_ADDRESS="[${T_IP}]:${T_PORT}"; fi
}

tctl() { # temporal CLI against the configured server, no env/config files
	"${TEMPORAL}" --disable-config-file --disable-config-env --color never \
		--command-timeout 10s "$@" --address "${T_ADDRESS}"
}

healthy() {
	tctl operator cluster health >/dev/null 2>&1
}

show_log_tail() {
	if [[ -s "${LOGFILE}" ]]; then
		log "last lines of ${LOGFILE#"${KONSTRUCT_ROOT}"/}:"
		tail -n 30 "${LOGFILE}" >&2
	fi
}

# existing_search_attrs: "Name=INDEXED_VALUE_TYPE_X" for each custom search
# attribute of the namespace.
existing_search_attrs() {
	tctl operator search-attribute list --namespace "${T_NAMESPACE}" -o json |
		sed -n '/"customAttributes"/,/}/s/^[[:space:]]*"\([A-Za-z_][A-Za-z0-9_]*\)"[[:space:]]*:[[:space:]]*"\([A-Z_]*\)".*/\1=\2/p'
}

# search_attrs_usable NAME...: true when a visibility query naming every NAME
# is accepted (the query fails with "not a valid search attribute" until the
# server's namespace cache knows them).
search_attrs_usable() {
	local q="" name
	for name in "$@"; do q+="${q:+ AND }${name} IS NULL"; done
	tctl workflow count --namespace "${T_NAMESPACE}" --query "${q}"
}

# api_type Keyword -> INDEXED_VALUE_TYPE_KEYWORD, KeywordList -> ..._KEYWORD_LIST
api_type() {
	# shellcheck disable=SC2001 # a regex with back-references, not a literal
	printf 'INDEXED_VALUE_TYPE_%s' "$(sed 's/\([a-z]\)\([A-Z]\)/\1_\2/g' <<<"$1" | tr '[:lower:]' '[:upper:]')"
}

ensure_search_attrs() {
	local existing sa name type have missing=()
	existing="$(existing_search_attrs)" ||
		die "cannot list search attributes of namespace ${T_NAMESPACE} on ${T_ADDRESS}"
	for sa in "${T_SEARCH_ATTRS[@]}"; do
		name="${sa%%=*}" type="${sa#*=}"
		have="$(sed -n "s/^${name}=//p" <<<"${existing}")"
		if [[ -z "${have}" ]]; then
			missing+=("${sa}")
		elif [[ "${have}" != "$(api_type "${type}")" ]]; then
			die "search attribute ${name} exists as ${have}, temporal-dev.yaml wants ${type}; delete ${T_DB#"${KONSTRUCT_ROOT}"/} (after scripts/temporal.sh stop) to start afresh"
		fi
	done
	if [[ "${#missing[@]}" -gt 0 ]]; then
		for sa in "${missing[@]}"; do
			name="${sa%%=*}" type="${sa#*=}"
			log "creating search attribute ${name} (${type}) in namespace ${T_NAMESPACE}"
			tctl operator search-attribute create --namespace "${T_NAMESPACE}" --name "${name}" --type "${type}" >/dev/null ||
				die "creating search attribute ${name} failed"
		done
		existing="$(existing_search_attrs)"
		for sa in "${missing[@]}"; do
			name="${sa%%=*}"
			grep -q "^${name}=" <<<"${existing}" || die "search attribute ${name} is still missing after creating it"
		done
		# temporal-dev.yaml turns system.forceSearchAttributesCacheRefreshOnRead
		# off, so the server maps a new attribute only once its namespace cache
		# has reloaded (about 2 s): wait for that, so that nothing started after
		# this script is refused with "no mapping defined for search attribute".
		local names=()
		for sa in "${missing[@]}"; do names+=("${sa%%=*}"); done
		wait_until 60 "new search attributes" search_attrs_usable "${names[@]}" ||
			die "search attributes ${names[*]} exist but the server does not accept them after 60s"
	fi
	log "search attributes in namespace ${T_NAMESPACE}: ${T_SEARCH_ATTRS[*]}"
}

cmd_start() {
	ensure_cli
	load_settings
	if healthy; then
		log "Temporal answers on ${T_ADDRESS} (left as it runs)"
	else
		if tcp_open "${T_IP}" "${T_PORT}"; then
			die "something listens on ${T_ADDRESS} but is not a healthy Temporal frontend; stop it or change port in temporal-dev.yaml"
		fi
		ensure_state_dirs
		mkdir -p "$(dirname "${T_DB}")"
		start_background "Temporal dev server" "${PIDFILE}" "${LOGFILE}" \
			"${TEMPORAL}" server start-dev "${START_ARGS[@]}"
		local deadline=$((SECONDS + START_TIMEOUT))
		until healthy; do
			if ! pid_alive "${PIDFILE}"; then
				show_log_tail
				die "the Temporal dev server exited during start-up (log above)"
			fi
			if ((SECONDS >= deadline)); then
				show_log_tail
				die "the Temporal dev server did not answer on ${T_ADDRESS} within ${START_TIMEOUT}s (log above; stop it with scripts/temporal.sh stop)"
			fi
			sleep 0.5
		done
		log "Temporal answers on ${T_ADDRESS} (pid $(cat "${PIDFILE}"))"
		if [[ "${T_UI_PORT}" != 0 ]] && ! wait_until 30 "Temporal Web UI" tcp_open "${T_IP}" "${T_UI_PORT}"; then
			warn "the Temporal Web UI does not answer on ${T_IP}:${T_UI_PORT}"
		fi
	fi
	ensure_search_attrs
}

cmd_stop() {
	stop_pidfile "Temporal dev server" "${PIDFILE}" "${TEMPORAL}"
}

cmd_status() {
	ensure_cli
	load_settings
	if healthy; then
		log "Temporal answers on ${T_ADDRESS}, namespace ${T_NAMESPACE}, Web UI http://${T_IP}:${T_UI_PORT}"
		if pid_alive "${PIDFILE}"; then log "started by this script (pid $(cat "${PIDFILE}"))"; fi
	else
		log "Temporal does not answer on ${T_ADDRESS}"
		return 1
	fi
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) die "usage: $0 [start|stop|status]" ;;
esac

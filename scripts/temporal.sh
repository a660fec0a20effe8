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
# shellcheck source=scripts/temporal-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/temporal-lib.sh"

CONFIG="${KONSTRUCT_ROOT}/temporal-dev.yaml"
PIDFILE="${KONSTRUCT_STATE}/temporal.pid"
LOGFILE="${KONSTRUCT_STATE}/temporal.log"
START_TIMEOUT="${KONSTRUCT_TEMPORAL_START_TIMEOUT:-120}"

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
	T_RESET_HINT="delete ${T_DB#"${KONSTRUCT_ROOT}"/} (after scripts/temporal.sh stop) to start afresh"
}

show_log_tail() {
	if [[ -s "${LOGFILE}" ]]; then
		log "last lines of ${LOGFILE#"${KONSTRUCT_ROOT}"/}:"
		tail -n 30 "${LOGFILE}" >&2
	fi
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

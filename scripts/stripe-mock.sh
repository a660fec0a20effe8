#!/usr/bin/env bash
# stripe-mock (github.com/stripe/stripe-mock v0.203.0): a local Stripe API
# for tests, on 127.0.0.1:12111 (HTTP) and 127.0.0.1:12112 (HTTPS).
#
#   scripts/stripe-mock.sh [start]   install if missing, start unless it answers
#   scripts/stripe-mock.sh stop      stop the stripe-mock this script started
#
# Environment: KONSTRUCT_STRIPE_MOCK_HTTP_PORT (12111),
# KONSTRUCT_STRIPE_MOCK_HTTPS_PORT (12112).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/stripe/stripe-mock
VERSION=v0.203.0
BIN="${KONSTRUCT_BIN}/stripe-mock"
HOST=127.0.0.1
HTTP_PORT="${KONSTRUCT_STRIPE_MOCK_HTTP_PORT:-12111}"
HTTPS_PORT="${KONSTRUCT_STRIPE_MOCK_HTTPS_PORT:-12112}"
PIDFILE="${KONSTRUCT_STATE}/stripe-mock.pid"
LOGFILE="${KONSTRUCT_STATE}/stripe-mock.log"

# answers: stripe-mock serves the API (any key is accepted).
answers() {
	if have curl; then
		curl -fsS -o /dev/null --max-time 2 -u sk_test_konstruct: "http://${HOST}:${HTTP_PORT}/v1/customers"
	else
		tcp_open "${HOST}" "${HTTP_PORT}"
	fi
}

ensure_binary() {
	if [[ -x "${BIN}" ]] &&
		go version -m "${BIN}" 2>/dev/null | grep -qE "^[[:space:]]*mod[[:space:]]+${MODULE}[[:space:]]+${VERSION}([[:space:]]|$)"; then
		return 0
	fi
	go_install "${MODULE}@${VERSION}" stripe-mock
}

cmd_start() {
	if answers 2>/dev/null; then
		log "stripe-mock answers on http://${HOST}:${HTTP_PORT} (left as it runs)"
		return 0
	fi
	if tcp_open "${HOST}" "${HTTP_PORT}"; then
		die "something listens on ${HOST}:${HTTP_PORT} but does not answer like stripe-mock; stop it first"
	fi
	ensure_binary
	ensure_state_dirs
	start_background stripe-mock "${PIDFILE}" "${LOGFILE}" \
		"${BIN}" -http-addr "${HOST}:${HTTP_PORT}" -https-addr "${HOST}:${HTTPS_PORT}"
	local deadline=$((SECONDS + 60))
	until answers 2>/dev/null; do
		if ! pid_alive "${PIDFILE}" || ((SECONDS >= deadline)); then
			tail -n 20 "${LOGFILE}" >&2 || true
			die "stripe-mock did not come up on ${HOST}:${HTTP_PORT} (log above: ${LOGFILE})"
		fi
		sleep 0.25
	done
	log "stripe-mock answers on http://${HOST}:${HTTP_PORT} and https://${HOST}:${HTTPS_PORT} (pid $(cat "${PIDFILE}"))"
}

case "${1:-start}" in
start) cmd_start ;;
stop) stop_pidfile stripe-mock "${PIDFILE}" "${BIN}" ;;
*) die "usage: $0 [start|stop]" ;;
esac

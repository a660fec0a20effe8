#!/usr/bin/env bash
# Ensure Redis answers PING on 127.0.0.1:6379: install Debian's redis-server
# if needed and start it (no persistence: it is a cache and a dedupe store for
# development and tests).
#
# Environment: KONSTRUCT_REDIS_HOST (127.0.0.1), KONSTRUCT_REDIS_PORT (6379).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REDIS_HOST="${KONSTRUCT_REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${KONSTRUCT_REDIS_PORT:-6379}"

# redis_ping: true when the server answers +PONG (no redis-cli needed).
redis_ping() (
	reply=""
	exec 3<>"/dev/tcp/${REDIS_HOST}/${REDIS_PORT}" || exit 1
	printf 'PING\r\n' >&3
	read -r -t 2 reply <&3 || true
	[[ "${reply}" == "+PONG"* ]]
)

if redis_ping 2>/dev/null; then
	log "Redis answers on ${REDIS_HOST}:${REDIS_PORT}"
	exit 0
fi

if ! have redis-server; then
	apt_install redis-server
	# The package starts its own service where systemd runs.
	if wait_until 5 Redis redis_ping; then
		log "Redis answers on ${REDIS_HOST}:${REDIS_PORT}"
		exit 0
	fi
fi

ensure_state_dirs
log "starting redis-server on ${REDIS_HOST}:${REDIS_PORT} (log: .konstruct/redis.log)"
redis-server --daemonize yes --bind "${REDIS_HOST}" -::1 --port "${REDIS_PORT}" \
	--save "" --appendonly no --dir "${KONSTRUCT_STATE}" --logfile "${KONSTRUCT_STATE}/redis.log" \
	--pidfile "${KONSTRUCT_STATE}/redis.pid" ||
	die "redis-server did not start; see ${KONSTRUCT_STATE}/redis.log"
if ! wait_until 15 Redis redis_ping; then
	tail -n 20 "${KONSTRUCT_STATE}/redis.log" >&2 || true
	die "Redis does not answer on ${REDIS_HOST}:${REDIS_PORT} (log above: ${KONSTRUCT_STATE}/redis.log)"
fi
log "Redis answers on ${REDIS_HOST}:${REDIS_PORT}"

#!/usr/bin/env bash
# Start every service Konstruct needs for `make dev` and `make test`, natively:
# PostgreSQL 15 + pgvector 0.8, the konstruct roles and database, Redis, the
# Temporal dev server (with its Web UI) and stripe-mock; Chromium too with
# --with-browser. Each step installs what is missing, starts what is not
# running and leaves alone what already runs, so a second run takes seconds.
# With KONSTRUCT_TEMPORAL_BACKEND=server (`make ... TEMPORAL=server`) the
# Temporal Server on PostgreSQL and its Web UI (scripts/temporal-server.sh)
# replace the dev server; whatever already runs is left alone either way.
#
#   scripts/services.sh [--with-browser]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

with_browser=0
for arg in "$@"; do
	case "${arg}" in
	--with-browser) with_browser=1 ;;
	-h | --help)
		sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument ${arg} (usage: $0 [--with-browser])" ;;
	esac
done

here="$(dirname "${BASH_SOURCE[0]}")"
case "${KONSTRUCT_TEMPORAL_BACKEND:-dev}" in
dev) temporal_step=temporal ;;
server) temporal_step=temporal-server ;;
*) die "KONSTRUCT_TEMPORAL_BACKEND (make's TEMPORAL) is dev or server, not '${KONSTRUCT_TEMPORAL_BACKEND}'" ;;
esac
steps=(postgres db-setup redis "${temporal_step}" stripe-mock)
[[ "${with_browser}" -eq 1 ]] && steps+=(chromium)

start=${SECONDS}
for step in "${steps[@]}"; do
	t0=${SECONDS}
	bash "${here}/${step}.sh" || die "${step} failed: run scripts/${step}.sh to see why"
	if ((SECONDS - t0 > 2)); then log "${step} took $((SECONDS - t0))s"; fi
done

# Summary, from the same settings the scripts used.
db="${KONSTRUCT_DB_HOST:-127.0.0.1}:${KONSTRUCT_DB_PORT:-5432}/${KONSTRUCT_DB_NAME:-konstruct}"
t_ip=127.0.0.1 t_port=7233 t_ui=8233 t_ns=default
while IFS='=' read -r key value; do
	case "${key}" in
	ip) t_ip="${value}" ;;
	port) t_port="${value}" ;;
	ui_port) t_ui="${value}" ;;
	namespace) t_ns="${value}" ;;
	esac
done < <("${KONSTRUCT_BIN}/temporalargs" -root "${KONSTRUCT_ROOT}" env 2>/dev/null || true)
t_name="Temporal frontend" t_addr="${t_ip}:${t_port}" t_ui_url="http://${t_ip}:${t_ui}"
if [[ "${temporal_step}" == temporal-server ]]; then
	# What the app is pointed at (scripts/env.sh), i.e. temporal-server.yaml's ports.
	t_name="Temporal Server (PostgreSQL)"
	read -r t_addr t_ui_url < <(
		# shellcheck source=scripts/env.sh
		source "${here}/env.sh" && echo "${KONSTRUCT_TEMPORAL_ADDRESS} ${KONSTRUCT_TEMPORAL_UI_URL}"
	)
fi
{
	echo "[services] all services are up ($((SECONDS - start))s):"
	echo "  PostgreSQL 15 + pgvector 0.8  ${db}"
	echo "      owner (migrations): postgres://${KONSTRUCT_DB_OWNER:-konstruct_owner}@${db}"
	echo "      app (RLS applies):  postgres://${KONSTRUCT_DB_APP:-konstruct_app}@${db}"
	echo "  Redis                         redis://${KONSTRUCT_REDIS_HOST:-127.0.0.1}:${KONSTRUCT_REDIS_PORT:-6379}/0"
	printf '  %-30s%s\n' "${t_name}" "${t_addr}  namespace ${t_ns}"
	echo "  Temporal Web UI               ${t_ui_url}"
	echo "  stripe-mock                   http://127.0.0.1:${KONSTRUCT_STRIPE_MOCK_HTTP_PORT:-12111}  https://127.0.0.1:${KONSTRUCT_STRIPE_MOCK_HTTPS_PORT:-12112}"
	if [[ "${with_browser}" -eq 1 ]]; then
		echo "  Chromium                      /usr/bin/chromium"
	fi
	echo "  Variables: source scripts/env.sh. Logs and pids: .konstruct/. Stop: make stop."
} >&2

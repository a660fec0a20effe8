# shellcheck shell=bash
# Shared helpers for the scripts in scripts/. Sourced, never executed.
#
# Conventions: every script is idempotent (install what is missing, start what
# is not running, leave alone what already runs), logs one clear line per step
# to stderr, and uses sudo only when it is not root and a step needs root.

# Repository root (the directory above scripts/), and the local state dir.
KONSTRUCT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KONSTRUCT_STATE="${KONSTRUCT_ROOT}/.konstruct"
KONSTRUCT_BIN="${KONSTRUCT_STATE}/bin"

_konstruct_script="$(basename "${0:-konstruct}" .sh)"

log() { printf '[%s] %s\n' "${_konstruct_script}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${_konstruct_script}" "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "${_konstruct_script}" "$*" >&2
	exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# as_root CMD...: run CMD as root (directly when root, else through sudo).
as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif have sudo; then
		sudo "$@"
	else
		die "need root for: $* (run as root or install sudo)"
	fi
}

# as_postgres CMD...: run CMD as the postgres OS user (from / so that it can
# always change into its working directory).
as_postgres() {
	if [[ "$(id -un)" == postgres ]]; then
		(cd / && "$@")
	elif [[ "$(id -u)" -eq 0 ]] && have runuser; then
		(cd / && runuser -u postgres -- "$@")
	elif have sudo; then
		(cd / && sudo -u postgres -- "$@")
	else
		die "cannot run as the postgres user (need root, runuser or sudo)"
	fi
}

ensure_state_dirs() {
	mkdir -p "${KONSTRUCT_BIN}"
}

# apt_install PKG...: install the packages that are missing. Runs
# `apt-get update` only when the package lists are missing or stale (the
# install fails), then retries once.
_apt_updated=0
apt_update() {
	if [[ "${_apt_updated}" -eq 0 ]]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
			die "apt-get update failed"
		_apt_updated=1
	fi
}

pkg_installed() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

apt_install() {
	local missing=() p
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[[ "${#missing[@]}" -eq 0 ]] && return 0
	have apt-get || die "apt-get not found: install ${missing[*]} by hand"
	log "apt-get install ${missing[*]}"
	local cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
		"${missing[@]}")
	# Without package lists (fresh image), update first; with stale ones the
	# install fails, and is retried once after an update.
	if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
		apt_update
	fi
	ensure_state_dirs
	local aptlog="${KONSTRUCT_STATE}/apt.log"
	if ! as_root "${cmd[@]}" >>"${aptlog}" 2>&1; then
		if [[ "${_apt_updated}" -eq 1 ]]; then
			tail -n 20 "${aptlog}" >&2
			die "apt-get install ${missing[*]} failed (full log: ${aptlog})"
		fi
		warn "install failed, refreshing package lists and retrying"
		apt_update
		if ! as_root "${cmd[@]}" >>"${aptlog}" 2>&1; then
			tail -n 20 "${aptlog}" >&2
			die "apt-get install ${missing[*]} failed (full log: ${aptlog})"
		fi
	fi
	log "installed ${missing[*]}"
}

# tcp_open HOST PORT: true when something accepts TCP connections there.
tcp_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_until TIMEOUT_SECONDS DESCRIPTION CMD...: poll CMD every 0.25s
# (DESCRIPTION documents the call site; callers print their own errors).
wait_until() {
	local timeout="$1" deadline
	shift 2
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			return 1
		fi
		sleep 0.25
	done
}

# pid_alive PIDFILE [COMMAND_SUBSTRING]: true when PIDFILE names a running
# process (whose command line contains COMMAND_SUBSTRING, when given, so that
# a recycled pid is never mistaken for ours).
pid_alive() {
	local pid cmdline
	[[ -s "$1" ]] || return 1
	pid="$(cat "$1")"
	[[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null || return 1
	if [[ -n "${2:-}" && -r "/proc/${pid}/cmdline" ]]; then
		cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline")"
		[[ "${cmdline}" == *"$2"* ]] || return 1
	fi
}

# stop_pidfile NAME PIDFILE COMMAND_SUBSTRING: stop the process a script
# started (by its recorded pid, after checking it is still that program).
stop_pidfile() {
	local name="$1" pidfile="$2" expect="$3" pid
	if ! pid_alive "${pidfile}" "${expect}"; then
		log "${name} is not running (no live pid in ${pidfile#"${KONSTRUCT_ROOT}"/})"
		rm -f "${pidfile}"
		return 0
	fi
	pid="$(cat "${pidfile}")"
	log "stopping ${name} (pid ${pid})"
	kill -TERM "${pid}" 2>/dev/null || true
	for _ in $(seq 1 40); do
		kill -0 "${pid}" 2>/dev/null || break
		sleep 0.25
	done
	if kill -0 "${pid}" 2>/dev/null; then
		warn "${name} (pid ${pid}) did not stop after 10s, sending SIGKILL"
		kill -KILL "${pid}" 2>/dev/null || true
	fi
	rm -f "${pidfile}"
}

# start_background NAME PIDFILE LOGFILE CMD...: start CMD detached from this
# shell (own session, stdin closed, output to LOGFILE) and record its pid.
start_background() {
	local name="$1" pidfile="$2" logfile="$3"
	shift 3
	log "starting ${name}: $* (log: ${logfile#"${KONSTRUCT_ROOT}"/})"
	: >"${logfile}"
	# setsid does not fork when the caller is not a group leader (a background
	# job of a non-interactive shell), so $! is the server's own pid.
	setsid nohup "$@" >>"${logfile}" 2>&1 </dev/null &
	echo "$!" >"${pidfile}"
}

# ensure_go: make sure `go` is on PATH.
ensure_go() {
	if ! have go; then
		if [[ -x /usr/local/go/bin/go ]]; then
			export PATH="/usr/local/go/bin:${PATH}"
		else
			die "go not found on PATH (install Go 1.26 from go.dev/dl)"
		fi
	fi
}

# go_install MODULE@VERSION BINARY: go install into .konstruct/bin.
go_install() {
	local module="$1" binary="$2"
	ensure_go
	ensure_state_dirs
	log "go install ${module} -> ${KONSTRUCT_BIN#"${KONSTRUCT_ROOT}"/}/${binary} (first time takes minutes)"
	# Run outside the repo so the project's go.mod does not take part.
	(cd / && GOBIN="${KONSTRUCT_BIN}" go install "${module}") ||
		die "go install ${module} failed"
	[[ -x "${KONSTRUCT_BIN}/${binary}" ]] || die "go install ${module} did not produce ${binary}"
}

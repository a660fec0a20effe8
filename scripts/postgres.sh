#!/usr/bin/env bash
# Ensure PostgreSQL 15 is installed and running on 127.0.0.1:5432, with the
# pgvector 0.8 extension available.
#
# pgvector 0.8 is not packaged for bookworm's PostgreSQL 15, so it is built
# from Debian's source package `pgvector` of the trixie suite: a deb-src-only
# entry is added (binary packages never come from trixie), `apt-get source`
# fetches it and it is built against postgresql-server-dev-15.
#
# Environment: KONSTRUCT_PG_MAJOR (15), KONSTRUCT_PG_CLUSTER (main),
# KONSTRUCT_DB_HOST (127.0.0.1), KONSTRUCT_DB_PORT (5432).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_MAJOR="${KONSTRUCT_PG_MAJOR:-15}"
PG_CLUSTER="${KONSTRUCT_PG_CLUSTER:-main}"
PG_HOST="${KONSTRUCT_DB_HOST:-127.0.0.1}"
PG_PORT="${KONSTRUCT_DB_PORT:-5432}"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
PGVECTOR_WANT="0.8" # major.minor that must be installed
VECTOR_CONTROL="/usr/share/postgresql/${PG_MAJOR}/extension/vector.control"
TRIXIE_SOURCES=/etc/apt/sources.list.d/konstruct-trixie-src.sources
TRIXIE_PIN=/etc/apt/preferences.d/konstruct-no-trixie-binaries

pg_ready() {
	if have pg_isready; then
		pg_isready -q -h "${PG_HOST}" -p "${PG_PORT}" -t 2
	else
		tcp_open "${PG_HOST}" "${PG_PORT}"
	fi
}

# cluster_status: prints "online", "down" or "missing" for PG_MAJOR/PG_CLUSTER.
cluster_status() {
	local line
	if ! have pg_lsclusters; then
		echo missing
		return
	fi
	line="$(pg_lsclusters --no-header 2>/dev/null | awk -v v="${PG_MAJOR}" -v c="${PG_CLUSTER}" '$1 == v && $2 == c {print $4}')"
	case "${line}" in
	online*) echo online ;;
	"") echo missing ;;
	*) echo down ;;
	esac
}

ensure_server() {
	local status
	status="$(cluster_status)"
	if [[ "${status}" == online ]]; then
		log "PostgreSQL ${PG_MAJOR}/${PG_CLUSTER} is running"
	else
		if ! pkg_installed "postgresql-${PG_MAJOR}"; then
			if pg_ready; then
				# Something else (not Debian's package) serves the port: use it.
				log "PostgreSQL answers on ${PG_HOST}:${PG_PORT} (not a Debian cluster); using it"
				return 0
			fi
			apt_install "postgresql-${PG_MAJOR}" postgresql-client-"${PG_MAJOR}"
			status="$(cluster_status)"
		fi
		if [[ "${status}" == missing ]]; then
			log "creating cluster ${PG_MAJOR}/${PG_CLUSTER}"
			as_root pg_createcluster "${PG_MAJOR}" "${PG_CLUSTER}" --port "${PG_PORT}"
			status="$(cluster_status)"
		fi
		if [[ "${status}" != online ]]; then
			# systemd may be absent (containers, CI): start the cluster directly.
			log "starting PostgreSQL ${PG_MAJOR}/${PG_CLUSTER}"
			as_root pg_ctlcluster --skip-systemctl-redirect "${PG_MAJOR}" "${PG_CLUSTER}" start ||
				die "could not start PostgreSQL ${PG_MAJOR}/${PG_CLUSTER}; see /var/log/postgresql/postgresql-${PG_MAJOR}-${PG_CLUSTER}.log"
		fi
	fi
	wait_until 30 "PostgreSQL" pg_ready ||
		die "PostgreSQL does not answer on ${PG_HOST}:${PG_PORT}; see /var/log/postgresql/postgresql-${PG_MAJOR}-${PG_CLUSTER}.log"
}

# installed_vector_version: default_version from vector.control, or empty.
installed_vector_version() {
	[[ -f "${VECTOR_CONTROL}" ]] || return 0
	sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "${VECTOR_CONTROL}"
}

ensure_trixie_deb_src() {
	if [[ ! -f "${TRIXIE_SOURCES}" ]]; then
		log "adding deb-src entry for Debian trixie (source packages only): ${TRIXIE_SOURCES}"
		as_root tee "${TRIXIE_SOURCES}" >/dev/null <<-'EOF'
			# Added by konstruct scripts/postgres.sh to build pgvector 0.8 from
			# Debian's source package. Source packages only (Types: deb-src):
			# no binary package is ever installed or upgraded from trixie.
			Types: deb-src
			URIs: http://deb.debian.org/debian
			Suites: trixie
			Components: main
			Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
		_apt_updated=0 # the new source needs an update even if lists exist
	fi
	if [[ ! -f "${TRIXIE_PIN}" ]]; then
		# Belt and braces: should anyone add a binary trixie entry later, never
		# pick binary packages from it.
		as_root tee "${TRIXIE_PIN}" >/dev/null <<-'EOF'
			# Added by konstruct scripts/postgres.sh: trixie is configured for
			# source packages only; never install binary packages from it.
			Package: *
			Pin: release n=trixie
			Pin-Priority: -1
		EOF
	fi
	if ! compgen -G '/var/lib/apt/lists/*trixie*Sources*' >/dev/null; then
		apt_update
	fi
}

build_pgvector() {
	local work src
	apt_install build-essential dpkg-dev "postgresql-server-dev-${PG_MAJOR}"
	ensure_trixie_deb_src
	work="$(mktemp -d /tmp/konstruct-pgvector.XXXXXX)"
	# Let apt's sandbox user write the download there (else apt warns and
	# downloads unsandboxed as root).
	chmod 0755 "${work}"
	if [[ "$(id -u)" -eq 0 ]] && id _apt >/dev/null 2>&1; then
		chown _apt "${work}"
	fi
	# shellcheck disable=SC2064
	trap "rm -rf '${work}'" EXIT
	log "apt-get source pgvector (trixie) in ${work}"
	(cd "${work}" && apt-get source -qq pgvector) >&2 ||
		die "apt-get source pgvector failed (is deb.debian.org reachable?)"
	src="$(find "${work}" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n1)"
	[[ -n "${src}" ]] || die "apt-get source pgvector produced no source tree in ${work}"
	case "$(basename "${src}")" in
	pgvector-"${PGVECTOR_WANT}".*) ;;
	*) die "Debian trixie offers $(basename "${src}"), not pgvector ${PGVECTOR_WANT}.x" ;;
	esac
	log "building $(basename "${src}") against PostgreSQL ${PG_MAJOR}"
	make -C "${src}" -s -j"$(nproc)" PG_CONFIG="${PG_CONFIG}" OPTFLAGS="" >&2 ||
		die "building pgvector failed"
	log "installing $(basename "${src}")"
	as_root make -C "${src}" -s PG_CONFIG="${PG_CONFIG}" OPTFLAGS="" install >&2 ||
		die "installing pgvector failed"
	rm -rf "${work}"
	trap - EXIT
}

ensure_pgvector() {
	local have_version
	have_version="$(installed_vector_version)"
	case "${have_version}" in
	"${PGVECTOR_WANT}".*)
		log "pgvector ${have_version} is installed"
		return 0
		;;
	"") log "pgvector is not installed for PostgreSQL ${PG_MAJOR}" ;;
	*) log "pgvector ${have_version} is installed; ${PGVECTOR_WANT}.x is needed" ;;
	esac
	if [[ ! -x "${PG_CONFIG}" ]] && ! pkg_installed "postgresql-${PG_MAJOR}"; then
		die "PostgreSQL ${PG_MAJOR} is not installed here (the running server is not Debian's); install pgvector ${PGVECTOR_WANT} into it by hand"
	fi
	build_pgvector
	have_version="$(installed_vector_version)"
	case "${have_version}" in
	"${PGVECTOR_WANT}".*) log "pgvector ${have_version} installed" ;;
	*) die "after the build, vector.control says version '${have_version}', not ${PGVECTOR_WANT}.x" ;;
	esac
}

ensure_server
ensure_pgvector

# shellcheck shell=bash
# Helpers shared by scripts/temporal.sh (dev server) and
# scripts/temporal-server.sh (Temporal Server on PostgreSQL). Sourced after
# scripts/lib.sh, never executed.
#
# Callers set T_ADDRESS (frontend host:port), T_NAMESPACE, T_SEARCH_ATTRS
# (NAME=Type items) and T_RESET_HINT (how to start afresh when an attribute
# exists with another type).

CLI_MODULE=github.com/temporalio/cli
CLI_VERSION=v1.5.1 # later tags cannot be `go install`ed
TEMPORAL="${KONSTRUCT_BIN}/temporal"
ARGS_TOOL="${KONSTRUCT_BIN}/temporalargs"

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

tctl() { # temporal CLI against T_ADDRESS, no env/config files
	"${TEMPORAL}" --disable-config-file --disable-config-env --color never \
		--command-timeout 10s "$@" --address "${T_ADDRESS}"
}

healthy() {
	tctl operator cluster health >/dev/null 2>&1
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
			die "search attribute ${name} exists as ${have}, temporal-dev.yaml wants ${type}; ${T_RESET_HINT}"
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
		# Both servers run with system.forceSearchAttributesCacheRefreshOnRead
		# off, so a new attribute is mapped only once the namespace cache has
		# reloaded (a few seconds): wait for that, so that nothing started
		# after this script is refused with "no mapping defined for search
		# attribute".
		local names=()
		for sa in "${missing[@]}"; do names+=("${sa%%=*}"); done
		wait_until 60 "new search attributes" search_attrs_usable "${names[@]}" ||
			die "search attributes ${names[*]} exist but the server does not accept them after 60s"
	fi
	log "search attributes in namespace ${T_NAMESPACE}: ${T_SEARCH_ATTRS[*]}"
}

#!/usr/bin/env bash
# Run every Go fuzz target of the repository for a bounded time, one at a time
# (`go test -fuzz` accepts one target of one package per run).
#
#   FUZZTIME=20s scripts/fuzz.sh [PACKAGE_PATTERN...]   (default ./...)
#
# Targets are found with `go test -list '^Fuzz'` in each package whose test
# files declare a `func Fuzz...` (a grep narrows the packages first, so that
# not every test binary of the module is built just to list nothing).
# New crashers are written by Go to testdata/fuzz/<Target>/ in the package.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FUZZTIME="${FUZZTIME:-20s}"
ensure_go
cd "${KONSTRUCT_ROOT}"

patterns=("$@")
[[ "${#patterns[@]}" -gt 0 ]] || patterns=(./...)

# Packages (import paths and dirs) matching the patterns.
mapfile -t pkgs < <(go list -f '{{.ImportPath}} {{.Dir}}' "${patterns[@]}")

declare -a targets=() # "importpath name"
for entry in "${pkgs[@]}"; do
	pkg="${entry%% *}" dir="${entry#* }"
	compgen -G "${dir}/*_test.go" >/dev/null || continue
	grep -qE '^func Fuzz[^a-z]' "${dir}"/*_test.go || continue
	list="$(go test -list '^Fuzz' "${pkg}")" || die "go test -list failed for ${pkg}"
	while IFS= read -r name; do
		[[ "${name}" =~ ^Fuzz ]] && targets+=("${pkg} ${name}")
	done <<<"${list}"
done

if [[ "${#targets[@]}" -eq 0 ]]; then
	log "no fuzz targets found in ${patterns[*]}"
	exit 0
fi

log "${#targets[@]} fuzz target(s), ${FUZZTIME} each"
failed=()
for t in "${targets[@]}"; do
	pkg="${t%% *}" name="${t#* }"
	log "fuzzing ${pkg} ${name} for ${FUZZTIME}"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME}" "${pkg}"; then
		failed+=("${pkg} ${name}")
	fi
done

if [[ "${#failed[@]}" -gt 0 ]]; then
	log "failing fuzz targets (inputs saved under each package's testdata/fuzz/):"
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
log "all ${#targets[@]} fuzz target(s) passed"

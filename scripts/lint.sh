#!/usr/bin/env bash
# Static checks: `go vet ./...` and Temporal's workflowcheck over the workflow
# packages (non-deterministic calls in workflow code: time.Now, map range,
# goroutines, I/O...).
#
#   scripts/lint.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORKFLOWCHECK_MODULE=go.temporal.io/sdk/contrib/tools/workflowcheck
WORKFLOWCHECK_VERSION=v0.6.0
WORKFLOWCHECK="${KONSTRUCT_BIN}/workflowcheck"

ensure_go
cd "${KONSTRUCT_ROOT}"

status=0
log "go vet ./..."
go vet ./... || status=1

if [[ ! -x "${WORKFLOWCHECK}" ]] ||
	! go version -m "${WORKFLOWCHECK}" 2>/dev/null | grep -qE "^[[:space:]]*mod[[:space:]]+${WORKFLOWCHECK_MODULE}[[:space:]]+${WORKFLOWCHECK_VERSION}([[:space:]]|$)"; then
	go_install "${WORKFLOWCHECK_MODULE}@${WORKFLOWCHECK_VERSION}" workflowcheck
fi
if compgen -G "workflows/*.go" >/dev/null || [[ -n "$(find workflows -name '*.go' -print -quit 2>/dev/null)" ]]; then
	log "workflowcheck ./workflows/..."
	"${WORKFLOWCHECK}" ./workflows/... || status=1
else
	log "no Go code under workflows/ yet; workflowcheck skipped"
fi

if [[ "${status}" -ne 0 ]]; then
	die "lint found problems (above)"
fi
log "lint passed"

#!/usr/bin/env bash
# Debian's Chromium for the portal's browser tests (chromedp drives it
# headless with --no-sandbox). Installs the `chromium` package when
# /usr/bin/chromium is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHROMIUM=/usr/bin/chromium

if [[ ! -x "${CHROMIUM}" ]]; then
	apt_install chromium
	[[ -x "${CHROMIUM}" ]] || die "the chromium package did not install ${CHROMIUM}"
	# Smoke test once, right after the install: render a blank page headless.
	log "checking that headless Chromium starts"
	profile="$(mktemp -d)"
	timeout 60 "${CHROMIUM}" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="${profile}" --dump-dom about:blank >/dev/null 2>&1 ||
		warn "headless Chromium did not render about:blank (browser tests may fail)"
	rm -rf "${profile}"
fi
log "Chromium: ${CHROMIUM} ($("${CHROMIUM}" --version 2>/dev/null | head -n1 || echo 'version unknown'))"

#!/usr/bin/env bash
# Docker HEALTHCHECK of loomworks/erp (and Compose's): readiness = loomworks_health's
# /web/health answers 200 after a real database round trip (503 while the database is
# unreachable or the registry loads). Exit 0 when ready; else one line saying why.
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"

# Odoo's HTTP port is fixed in the rendered configuration (http_port = 8069).
readonly URL=http://127.0.0.1:8069/web/health

main() {
	local err
	# Within the HEALTHCHECK's 5 s timeout, so a slow answer is reported, not killed.
	if ! err=$(curl -fsS -o /dev/null --max-time 4 "$URL" 2>&1); then
		die "GET $URL: ${err#curl: }"
	fi
}

main "$@"

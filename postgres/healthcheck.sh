#!/usr/bin/env bash
# pg-healthcheck: Docker HEALTHCHECK of loomworks/postgres. Healthy = the server accepts
# connections on its socket (pg_isready) AND answers a real query as POSTGRES_USER.
set -Eeuo pipefail
LOG_PREFIX=pg-healthcheck
# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"

main() {
	local bin=/usr/lib/postgresql/15/bin sock=/var/run/postgresql user=${POSTGRES_USER:-postgres} out
	"$bin/pg_isready" -q -h "$sock" -U "$user" -d postgres -t 5 || die "pg_isready: server not accepting connections"
	out=$(PGCONNECT_TIMEOUT=5 "$bin/psql" -h "$sock" -U "$user" -d postgres -XAtq \
		-c "SET statement_timeout = '5s'" -c "SELECT 1 FROM pg_database WHERE datname = current_database()") ||
		die "query as $user failed"
	[[ $out == 1 ]] || die "unexpected query result '$out'"
}

main "$@"

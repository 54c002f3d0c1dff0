#!/usr/bin/env bash
# Docker HEALTHCHECK of loomworks/postgres (and Compose's). Healthy = the server accepts
# connections on its socket (pg_isready) AND answers a real query as POSTGRES_USER.
#   docker-healthcheck.sh backup|filestore|walstream   the stack's service of that name instead:
#   healthy unless its last cycle failed (the status its loop records, lib/pg.sh check_status).
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"
# shellcheck source=postgres/lib/pg.sh
. "$(lib_path pg.sh)"

main() {
	case ${1:-} in
	backup | filestore | walstream)
		check_status "$1"
		return
		;;
	"") ;;
	*) die "usage: docker-healthcheck.sh [backup | filestore | walstream]" ;;
	esac
	local sock=/var/run/postgresql user out
	defaults
	pg_bin
	user=$POSTGRES_USER
	"$PGBIN/pg_isready" -q -h "$sock" -U "$user" -d postgres -t 5 || die "pg_isready: server not accepting connections"
	out=$(PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -h "$sock" -U "$user" -d postgres -XAtq \
		-c "SET statement_timeout = '5s'" -c "SELECT 1 FROM pg_database WHERE datname = current_database()") ||
		die "query as $user failed"
	[[ $out == 1 ]] || die "unexpected query result '$out'"
}

main "$@"

#!/usr/bin/env bash
# Docker HEALTHCHECK of loomworks/redis (and Compose's): an authenticated PING. The
# password comes from the file the entrypoint rendered (REDISCLI_AUTH in this process's
# environment, never argv). Prints PONG when healthy; else one line saying why.
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"
# shellcheck source=redis/lib/redis.sh
. "$(lib_path redis.sh)"

main() {
	local dir port reply
	defaults
	dir=$REDIS_RUN_DIR
	[[ -r $dir/auth && -r $dir/port ]] || die "$dir/auth not rendered yet"
	port=$(<"$dir/port")
	REDISCLI_AUTH=$(<"$dir/auth")
	export REDISCLI_AUTH
	if ! reply=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$port" ping 2>&1) || [[ $reply != PONG ]]; then
		die "PING answered '$reply'"
	fi
	echo PONG
}

main "$@"

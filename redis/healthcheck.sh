#!/usr/bin/env bash
# Docker HEALTHCHECK: an authenticated PING. The password comes from the file the
# entrypoint rendered (REDISCLI_AUTH in this process's environment, never argv).
set -Eeuo pipefail

RUN_DIR=${REDIS_RUN_DIR:-/run/redis}

main() {
	local port reply
	[[ -r $RUN_DIR/auth && -r $RUN_DIR/port ]] || {
		echo "redis-healthcheck: $RUN_DIR/auth not rendered yet" >&2
		exit 1
	}
	port=$(<"$RUN_DIR/port")
	REDISCLI_AUTH=$(<"$RUN_DIR/auth")
	export REDISCLI_AUTH
	reply=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$port" ping 2>&1) || true
	[[ $reply == PONG ]] || {
		echo "redis-healthcheck: PING answered '$reply'" >&2
		exit 1
	}
	echo PONG
}

main "$@"

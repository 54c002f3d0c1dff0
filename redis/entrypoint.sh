#!/usr/bin/env bash
# Loomworks Redis entrypoint: validates the environment, renders a private config
# (password included, never on the command line), then execs redis-server.
# Any other command (redis-cli, bash) runs as given. Defaults: `defaults` in lib/redis.sh.
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"
# shellcheck source=redis/lib/redis.sh
. "$(lib_path redis.sh)"

load_settings() {
	defaults
	RUN_DIR=$REDIS_RUN_DIR CONF=$REDIS_RUN_DIR/redis.conf AUTH_FILE=$REDIS_RUN_DIR/auth
	file_env REDIS_PASSWORD
	[[ -n $REDIS_PASSWORD ]] || die "REDIS_PASSWORD (or REDIS_PASSWORD_FILE) is required: Redis never runs without a password"
	[[ $REDIS_PASSWORD != *[[:cntrl:]]* ]] || die "REDIS_PASSWORD must not contain control characters (newline, tab, ...)"
	require_port REDIS_PORT
	require_enum REDIS_APPENDFSYNC always everysec no
	[[ $REDIS_MAXMEMORY =~ ^[0-9]+([kKmMgG][bB]?)?$ ]] ||
		die "REDIS_MAXMEMORY must be a size like 0, 256mb or 1gb, got '$REDIS_MAXMEMORY'"
	require_enum REDIS_MAXMEMORY_POLICY noeviction allkeys-lru allkeys-lfu allkeys-random \
		volatile-lru volatile-lfu volatile-random volatile-ttl
	require_enum REDIS_LOG_LEVEL debug verbose notice warning
}

# quote VALUE: a double-quoted Redis config string (backslash and quote escaped).
quote() {
	local s=${1//\\/\\\\}
	printf '"%s"' "${s//\"/\\\"}"
}

check_data_dir() {
	[[ -d /data && -w /data ]] ||
		die "/data is not writable by $(id -un) (uid $(id -u)); chown the volume to that uid or use a named volume"
}

render_config() {
	[[ -d $RUN_DIR && -w $RUN_DIR ]] || die "$RUN_DIR is not writable by $(id -un); mount a tmpfs there"
	umask 077
	local tmp
	tmp=$(mktemp "$RUN_DIR/.redis.conf.XXXXXX")
	{
		printf '%s\n' "# Rendered by the entrypoint at start; private to the redis user."
		printf 'bind * -::*\nprotected-mode yes\nport %s\n' "$REDIS_PORT"
		printf 'daemonize no\nsupervised no\npidfile ""\nlogfile ""\nloglevel %s\n' "$REDIS_LOG_LEVEL"
		printf 'dir /data\n'
		# AOF is the persistence (RDB preamble for fast loads); no separate RDB snapshots.
		printf 'appendonly yes\nappendfsync %s\naof-use-rdb-preamble yes\nsave ""\n' "$REDIS_APPENDFSYNC"
		printf 'maxmemory %s\nmaxmemory-policy %s\n' "$REDIS_MAXMEMORY" "$REDIS_MAXMEMORY_POLICY"
		printf 'enable-debug-command no\nenable-module-command no\nenable-protected-configs no\n'
		printf 'requirepass %s\n' "$(quote "$REDIS_PASSWORD")"
	} >"$tmp"
	mv -f "$tmp" "$CONF"
	# For the health check: redis-cli reads it via REDISCLI_AUTH, never argv.
	tmp=$(mktemp "$RUN_DIR/.auth.XXXXXX")
	printf '%s' "$REDIS_PASSWORD" >"$tmp"
	mv -f "$tmp" "$AUTH_FILE"
	printf '%s\n' "$REDIS_PORT" >"$RUN_DIR/port"
}

main() {
	if [[ ${1:-} == redis-server && $# -eq 1 ]]; then
		load_settings
		check_data_dir
		render_config
		unset REDIS_PASSWORD
		log "starting redis-server on port $REDIS_PORT (AOF appendfsync=$REDIS_APPENDFSYNC)"
		exec redis-server "$CONF"
	fi
	exec "$@"
}

main "$@"

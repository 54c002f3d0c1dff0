# shellcheck shell=bash
# Settings of loomworks/redis, shared by its entrypoint and its health check. Sourced
# after common.sh:   . "$(lib_path redis.sh)"

# The default of every setting of the image, in one place (an empty value counts as unset).
defaults() {
	: "${REDIS_PORT:=6379}"
	: "${REDIS_APPENDFSYNC:=everysec}"
	: "${REDIS_MAXMEMORY:=0}"
	: "${REDIS_MAXMEMORY_POLICY:=noeviction}"
	: "${REDIS_LOG_LEVEL:=notice}"
	# Where the entrypoint renders the config and the health check's password and port
	# (a tmpfs on a read-only root; Compose mounts one there).
	: "${REDIS_RUN_DIR:=/run/redis}"
}

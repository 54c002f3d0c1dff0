#!/usr/bin/env bash
# Entrypoint of loomworks/postgres (runs under dumb-init, which turns SIGTERM into SIGINT =
# PostgreSQL's fast shutdown).
#
#   postgres [-c name=value ...]   (default) initialise an empty PGDATA once (never over an
#                                  existing WAL archive or backups: that is a restore), then run
#   backup                         base backup into /backups/<UTC timestamp> (pg-backup)
#   verify-archive                 check /wal_archive (pg-verify-archive)
#   restore [options]              point-in-time restore in place, the old cluster kept (pg-restore)
#   prune [--dry-run]              retention: old base backups and the WAL before them (pg-prune)
#   backup-scheduler               the backup service: scheduled base backups and retention
#   wal-stream                     the walstream service: synchronous WAL receiver (WAL_STREAM)
#   sync-filestore                 copy new Odoo filestore files into the archive (filestore-archive)
#   restore-filestore [options]    copy archived filestore files back (filestore-archive)
#   anything else                  exec'd as given (e.g. bash, psql)
#
# Started as root, it fixes the ownership of the volumes and re-executes itself as the
# postgres user (uid/gid 999) with setpriv; started as postgres it skips that step.
# Every variable is documented in postgres/README.md; defaults: `defaults` in lib/pg.sh.
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"
# shellcheck source=postgres/lib/pg.sh
. "$(lib_path pg.sh)"

SOCKET_DIR=/var/run/postgresql
NAME_RE='^[a-z_][a-z0-9_]{0,62}$'

# The volumes' paths (Dockerfile ENV) are set.
require_layout() {
	local var
	for var in PGDATA WAL_ARCHIVE_DIR BACKUP_DIR; do require_nonempty "$var"; done
}

# As root: own the volumes (only what is not ours yet), then continue as postgres.
drop_privileges() {
	local d vol
	vol=$(data_volume)
	for d in "$vol" "$WAL_ARCHIVE_DIR" "$BACKUP_DIR" "$SOCKET_DIR"; do
		mkdir -p "$d"
		find "$d" \! -user postgres -exec chown postgres:postgres {} +
	done
	chmod 700 "$vol" "$WAL_ARCHIVE_DIR" "$BACKUP_DIR"
	chmod 2775 "$SOCKET_DIR"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
}

# Names of the application login before it shared Odoo's names; they still work.
deprecated_names() {
	renamed APP_DB_USER DB_USER
	renamed APP_DB_PASSWORD DB_PASSWORD
	renamed APP_DB_PASSWORD_FILE DB_PASSWORD_FILE
}

# Validate the environment; passwords come from VAR or VAR_FILE and are never printed.
load_env() {
	deprecated_names
	defaults
	[[ $POSTGRES_USER =~ $NAME_RE ]] ||
		die "POSTGRES_USER must be a lower-case SQL name ([a-z_][a-z0-9_]*, max 63), got '$POSTGRES_USER'"
	[[ $POSTGRES_DB =~ $NAME_RE ]] ||
		die "POSTGRES_DB must be a lower-case SQL name ([a-z_][a-z0-9_]*, max 63), got '$POSTGRES_DB'"
	file_env POSTGRES_PASSWORD
	file_env DB_PASSWORD
	normalize_bool ALLOW_NEW_CLUSTER
	if [[ -n ${DB_USER:-} ]]; then
		[[ $DB_USER =~ $NAME_RE ]] ||
			die "DB_USER must be a lower-case SQL name ([a-z_][a-z0-9_]*, max 63), got '$DB_USER'"
		[[ $DB_USER != "$POSTGRES_USER" ]] || die "DB_USER must differ from POSTGRES_USER ($POSTGRES_USER)"
	fi
	export POSTGRES_USER POSTGRES_DB
}

require_init_env() {
	require_nonempty POSTGRES_PASSWORD
	if [[ -n ${DB_USER:-} ]]; then
		[[ -n ${DB_PASSWORD:-} ]] || die "DB_PASSWORD (or DB_PASSWORD_FILE) is required when DB_USER is set"
	elif [[ -n ${DB_PASSWORD:-} ]]; then
		die "DB_PASSWORD is set but DB_USER is empty; set both or neither"
	fi
}

write_hba() {
	cat >"$PGDATA/pg_hba.conf" <<-'HBA'
		# Loomworks: written by the entrypoint at init.
		# Unix socket inside the container only: trust (entrypoint, healthcheck, `docker exec`;
		# whoever can exec into the container already owns the data).
		local   all             all                                     trust
		local   replication     all                                     trust
		# Every TCP client (the compose network, published ports): SCRAM passwords.
		host    all             all             0.0.0.0/0               scram-sha-256
		host    all             all             ::/0                    scram-sha-256
		host    replication     all             0.0.0.0/0               scram-sha-256
		host    replication     all             ::/0                    scram-sha-256
	HBA
}

ensure_include() {
	local conf=$PGDATA/postgresql.conf
	grep -qxF "include '/etc/postgresql/loomworks.conf'" "$conf" ||
		printf "\n# Loomworks settings (image)\ninclude '/etc/postgresql/loomworks.conf'\n" >>"$conf"
}

# Roles and database, created by a temporary server that listens on no TCP port and on a
# private socket directory (so neither clients nor the healthcheck mistake it for the real one).
create_objects() {
	local sock
	sock=$(mktemp -d)
	"$PGBIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$sock" \
		-w -t 60 -l "$PGDATA/init.log" start >/dev/null
	local psql=("$PGBIN/psql" -h "$sock" -U "$POSTGRES_USER" -d postgres -XAtq -v ON_ERROR_STOP=1)
	if [[ $POSTGRES_DB != postgres ]]; then
		"${psql[@]}" -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
	fi
	if [[ -n ${DB_USER:-} ]]; then
		# \getenv keeps the password out of argv (ps) and out of any file.
		"${psql[@]}" -v role="$DB_USER" <<-'SQL'
			\getenv pw DB_PASSWORD
			CREATE ROLE :"role" LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION PASSWORD :'pw';
		SQL
	fi
	"$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
	rm -rf "$PGDATA/init.log" "$sock"
}

# An empty PGDATA next to a WAL archive or base backups that already hold a cluster's data
# is a restore situation, never a first start: refuse, naming the restore command. With
# ALLOW_NEW_CLUSTER=true the old archive and backups are moved aside (kept) instead.
refuse_blank_start() {
	local wal backups stamp moved dir
	wal=$(archive_wal_files)
	backups=$(backup_count)
	((wal + backups > 0)) || return 0
	if [[ $ALLOW_NEW_CLUSTER != True ]]; then
		die "$PGDATA is empty but $WAL_ARCHIVE_DIR holds $wal WAL file(s) and $BACKUP_DIR $backups base backup(s) of an existing cluster; restore it with: docker compose run --rm postgres restore --latest (or set ALLOW_NEW_CLUSTER=true to start a new, empty cluster: the old archive and backups are then moved aside into previous-<time> folders, kept)"
	fi
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	for dir in "$WAL_ARCHIVE_DIR" "$BACKUP_DIR"; do
		moved=$(move_aside "$dir" "$stamp")
		[[ -z $moved ]] || log "ALLOW_NEW_CLUSTER=true: moved the old contents of $dir aside into $moved (kept)"
	done
}

init_cluster() {
	require_init_env
	refuse_blank_start
	if [[ -n $(ls -A "$PGDATA") ]]; then
		die "PGDATA $PGDATA is not empty but holds no cluster (no PG_VERSION); refusing to initialise over it"
	fi
	log "initialising a new cluster in $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB, data checksums on)"
	"$PGBIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--auth-local=trust --auth-host=scram-sha-256 --data-checksums -E UTF8 --locale=C.UTF-8 >/dev/null
	write_hba
	ensure_include
	create_objects
	[[ -z ${DB_USER:-} ]] || log "created login role $DB_USER (LOGIN CREATEDB NOSUPERUSER)"
	log "initialisation complete"
}

run_server() {
	load_env
	pg_bin
	if [[ -s $PGDATA/PG_VERSION ]]; then
		local v
		v=$(<"$PGDATA/PG_VERSION")
		[[ $v == "$PG_MAJOR" ]] || die "PGDATA $PGDATA holds a PostgreSQL $v cluster; this image runs $PG_MAJOR (upgrade with pg_upgrade first)"
		log "existing cluster in $PGDATA; skipping initialisation"
	else
		init_cluster
	fi
	ensure_include
	unset POSTGRES_PASSWORD DB_PASSWORD
	normalize_bool WAL_STREAM
	if [[ $WAL_STREAM == True ]]; then
		# commits wait until the walstream service (wal-stream) has flushed them
		log "WAL_STREAM is on: commits are acknowledged once the WAL receiver loomworks_walstream has them"
		set -- -c synchronous_standby_names=loomworks_walstream "$@"
	fi
	exec "$PGBIN/postgres" -D "$PGDATA" "$@"
}

main() {
	if [[ ${1:-} == -* || $# -eq 0 ]]; then set -- postgres "$@"; fi
	case $1 in
	postgres | backup | verify-archive | restore | prune | backup-scheduler | wal-stream)
		require_layout
		if [[ $(id -u) == 0 ]]; then drop_privileges "$@"; fi
		[[ $(id -un) == postgres ]] || die "must run as root or as the postgres user, not $(id -un)"
		;;
	# as the filestore's owner (Odoo's user; started as root, filestore-archive switches to it)
	sync-filestore) exec filestore-archive sync "${@:2}" ;;
	restore-filestore) exec filestore-archive restore "${@:2}" ;;
	*) exec "$@" ;;
	esac
	local cmd=$1
	shift
	case $cmd in
	postgres)
		prepare_pgdata
		run_server "$@"
		;;
	backup) exec pg-backup "$@" ;;
	verify-archive) exec pg-verify-archive "$@" ;;
	restore)
		prepare_pgdata
		exec pg-restore "$@"
		;;
	prune) exec pg-prune "$@" ;;
	backup-scheduler) exec backup-scheduler "$@" ;;
	wal-stream) exec wal-stream "$@" ;;
	esac
}

main "$@"

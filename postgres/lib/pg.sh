# shellcheck shell=bash
# Helpers shared by the loomworks/postgres programs (entrypoint, health check, archive-wal,
# restore-wal, pg-backup, pg-restore, pg-verify-archive). Sourced after common.sh:
#   . "$(lib_path pg.sh)"
# PGDATA, WAL_ARCHIVE_DIR, BACKUP_DIR (the volumes) and PG_MAJOR are the image's own
# (Dockerfile ENV).

# The default of every setting of the image, in one place (an empty value counts as unset).
defaults() {
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${BACKUP_PORT:=5432}"
	: "${RESTORE_TIMEOUT:=3600}"
	: "${WAL_GZIP_LEVEL:=1}"
	: "${WAL_SEGMENT_MB:=16}"
}

# pg_bin: sets PGBIN, the directory of PostgreSQL's programs (initdb, pg_ctl, postgres,
# pg_basebackup, ...) of the image's major version.
pg_bin() {
	require_nonempty PG_MAJOR
	PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
	[[ -x $PGBIN/postgres ]] || die "PG_MAJOR=$PG_MAJOR: no PostgreSQL programs in $PGBIN"
}

# gz_program: the compressor of the WAL archive: pigz when installed (the same gzip
# format, multi-threaded, faster at one thread too), else gzip. Any gzip reads the archive.
gz_program() {
	if command -v pigz >/dev/null; then echo pigz; else echo gzip; fi
}

# newest_backup DIR: the newest complete base backup in DIR (pg-backup's <UTC timestamp>
# directories; an unfinished one is still called .partial-<ts>), or nothing.
newest_backup() {
	local dir=$1
	[[ -d $dir && -r $dir ]] || return 0
	find "$dir" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' | sort | tail -n1
}

# shellcheck shell=bash
# Helpers shared by the loomworks/postgres programs (entrypoint, health check, archive-wal,
# restore-wal, pg-backup, pg-restore, pg-verify-archive). Sourced after common.sh:
#   . "$(lib_path pg.sh)"
# PGDATA (a directory inside the data volume), WAL_ARCHIVE_DIR, BACKUP_DIR (volumes) and
# PG_MAJOR are the image's own (Dockerfile ENV).

# The default of every setting of the image, in one place (an empty value counts as unset).
defaults() {
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${BACKUP_PORT:=5432}"
	: "${RESTORE_TIMEOUT:=3600}"
	: "${WAL_GZIP_LEVEL:=1}"
	: "${WAL_SEGMENT_MB:=16}"
	: "${ALLOW_NEW_CLUSTER:=false}"
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

# data_volume: the data volume's mount point, PGDATA's parent. The cluster lives in PGDATA
# (a directory of the volume), so `restore` can move it aside inside the volume (a rename,
# no copy) and keep it next to the restored one.
data_volume() { printf '%s\n' "${PGDATA%/*}"; }

# prepare_pgdata: PGDATA exists (0700). A volume written by an earlier image holds its
# cluster at the volume root: it is moved into PGDATA first, by renames inside the volume
# (through VOLUME/.pgdata.moving, so an interrupted move resumes on the next start).
prepare_pgdata() {
	local vol moving entry name
	vol=$(data_volume)
	moving=$vol/.pgdata.moving
	if [[ -e $vol/PG_VERSION || -d $moving ]]; then
		[[ ! -e $PGDATA/PG_VERSION ]] ||
			die "both $vol and $PGDATA hold a cluster; move one of them out of the data volume"
		log "moving the cluster at the root of the data volume $vol into $PGDATA (the image's layout)"
		[[ -d $moving ]] || mkdir -m 700 -- "$moving"
		for entry in "$vol"/* "$vol"/.[!.]*; do
			[[ -e $entry ]] || continue
			name=${entry##*/}
			case $name in .pgdata.moving | "${PGDATA##*/}" | "${PGDATA##*/}".* | lost+found) continue ;; esac
			mv -- "$entry" "$moving/"
		done
		[[ ! -d $PGDATA ]] || rmdir -- "$PGDATA"
		mv -- "$moving" "$PGDATA"
	fi
	[[ -d $PGDATA ]] || mkdir -m 700 -- "$PGDATA"
	chmod 700 -- "$PGDATA"
}

# archive_wal_files: how many WAL files (segments, history, .partial, .backup) the archive holds.
archive_wal_files() {
	find "$WAL_ARCHIVE_DIR" -mindepth 1 -maxdepth 1 -type f -name '[0-9A-F]*.gz' 2>/dev/null | wc -l
}

# backup_count: how many base backups (complete or partial) BACKUP_DIR holds.
backup_count() {
	find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d \( -name '[0-9]*T[0-9]*Z' -o -name '.partial-*' \) 2>/dev/null | wc -l
}

# move_aside DIR STAMP: move everything at the top of DIR (but earlier previous-* folders)
# into DIR/previous-STAMP (renames inside the volume; nothing is deleted); prints its path
# when something moved.
move_aside() {
	local dir=$1 stamp=$2 dest entry moved=0
	dest=$dir/previous-$stamp
	for entry in "$dir"/* "$dir"/.[!.]*; do
		[[ -e $entry ]] || continue
		case ${entry##*/} in previous-* | lost+found) continue ;; esac
		[[ -d $dest ]] || mkdir -m 700 -- "$dest"
		mv -- "$entry" "$dest/"
		moved=1
	done
	((moved == 0)) || {
		sync -- "$dir"
		printf '%s\n' "$dest"
	}
}

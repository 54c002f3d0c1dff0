# shellcheck shell=bash
# Helpers shared by the loomworks/postgres programs (entrypoint, health check, archive-wal,
# restore-wal, pg-backup, pg-restore, pg-verify-archive). Sourced after common.sh:
#   . "$(lib_path pg.sh)"
# PGDATA (a directory inside the data volume), WAL_ARCHIVE_DIR, BACKUP_DIR (volumes),
# FILESTORE_ARCHIVE_DIR, ODOO_DATA_DIR and PG_MAJOR are the image's own (Dockerfile ENV).

# The default of every setting of the image, in one place (an empty value counts as unset).
defaults() {
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${BACKUP_PORT:=5432}"
	: "${RESTORE_TIMEOUT:=3600}"
	: "${WAL_GZIP_LEVEL:=1}"
	: "${WAL_SEGMENT_MB:=16}"
	: "${ALLOW_NEW_CLUSTER:=false}"
	: "${BACKUP_SCHEDULE:=daily}"
	: "${BACKUP_RETENTION:=7}"
	: "${FILESTORE_SYNC_INTERVAL:=5m}"
	: "${WAL_STREAM:=off}"
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

# backups DIR: the complete base backups in DIR, oldest first (full paths, one a line).
backups() {
	local dir=$1
	[[ -d $dir && -r $dir ]] || return 0
	find "$dir" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' | sort
}

# backup_start_file BACKUP: the WAL file the base backup starts in (its backup_label).
backup_start_file() {
	local line
	line=$(grep -m1 '^START WAL LOCATION:' "$1/backup_label") || die "$1/backup_label: no START WAL LOCATION"
	[[ $line =~ \(file\ ([0-9A-F]{24})\) ]] || die "$1/backup_label: cannot parse '$line'"
	echo "${BASH_REMATCH[1]}"
}

# backup_start_epoch BACKUP: when the base backup started (START TIME of its backup_label).
backup_start_epoch() {
	local t
	t=$(sed -n 's/^START TIME: //p' "$1/backup_label")
	[[ -n $t ]] || die "$1/backup_label: no START TIME"
	date -d "$t" +%s
}

# wal_segno NAME: the position of a WAL file (segment, .partial, .backup) in the WAL stream,
# regardless of its timeline: the 16 hex digits after the timeline, as one number.
wal_segno() { echo $((0x${1:8:8} * 0x100000000 + 0x${1:16:8})); }

# interval_seconds VAR: VAR's value N[s|m|h|d] (or hourly, daily, weekly) in seconds, or die.
interval_seconds() {
	local var=$1 val=${!1-}
	case $val in
	hourly) echo 3600 ;;
	daily) echo 86400 ;;
	weekly) echo 604800 ;;
	*)
		[[ $val =~ ^([1-9][0-9]{0,6})([smhd])$ ]] ||
			die "$var must be an interval N followed by s, m, h or d (e.g. 30s, 15m, 6h, 1d), or hourly, daily, weekly; got '$val'"
		local n=${BASH_REMATCH[1]}
		case ${BASH_REMATCH[2]} in
		s) echo "$n" ;;
		m) echo $((n * 60)) ;;
		h) echo $((n * 3600)) ;;
		d) echo $((n * 86400)) ;;
		esac
		;;
	esac
}

# pgpass_env HOST PORT USER PASSWORD: a private passfile for libpq (PGPASSFILE, PGHOST, PGPORT,
# PGUSER exported), so that the password is in no process's environment or argv. Sets
# PGPASS_TMP (the caller removes it).
pgpass_env() {
	local pw=${4//\\/\\\\}
	pw=${pw//:/\\:}
	PGPASS_TMP=$(mktemp)
	chmod 0600 "$PGPASS_TMP"
	printf '*:*:*:%s:%s\n' "${3//:/\\:}" "$pw" >"$PGPASS_TMP"
	export PGHOST=$1 PGPORT=$2 PGUSER=$3 PGPASSFILE=$PGPASS_TMP
}

# The status files of the stack's backup and filestore services (container-local, /tmp), which
# their health checks read (healthcheck.sh backup|filestore).
status_file() { echo "/tmp/loomworks-$1.status"; }

# set_status SERVICE STATE MESSAGE: record the service's state (starting, ok, failed).
set_status() {
	local f
	f=$(status_file "$1")
	printf 'state=%s\nat=%s\nmessage=%s\n' "$2" "$(date -u '+%Y-%m-%d %H:%M:%S+00')" "$3" >"$f.tmp"
	mv -f -- "$f.tmp" "$f"
}

# check_status SERVICE: one line; exit 1 (die) when the service has not started or its last
# cycle failed.
check_status() {
	local f state at message
	f=$(status_file "$1")
	[[ -r $f ]] || die "the $1 service has not started (no $f)"
	state=$(sed -n 's/^state=//p' "$f")
	at=$(sed -n 's/^at=//p' "$f")
	message=$(sed -n 's/^message=//p' "$f")
	[[ $state != failed ]] || die "$1: last cycle FAILED at $at: $message"
	echo "$1: $state since $at: $message"
}

# shellcheck shell=bash
# Helpers shared by the loomworks/postgres programs (entrypoint, health check, archive-wal,
# restore-wal, pg-backup, pg-restore, pg-verify-archive). Sourced after common.sh:
#   . "$(lib_path pg.sh)"
# PGDATA, WAL_ARCHIVE_DIR, BACKUP_DIR (the volumes), FILESTORE_ARCHIVE_DIR, ODOO_DATA_DIR
# and PG_MAJOR are the image's own (Dockerfile ENV).

# The default of every setting of the image, in one place (an empty value counts as unset).
defaults() {
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${BACKUP_PORT:=5432}"
	: "${RESTORE_TIMEOUT:=3600}"
	: "${WAL_GZIP_LEVEL:=1}"
	: "${WAL_SEGMENT_MB:=16}"
	: "${BACKUP_SCHEDULE:=daily}"
	: "${BACKUP_RETENTION:=7}"
	: "${FILESTORE_SYNC_INTERVAL:=5m}"
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

# as_user USER COMMAND...: run COMMAND as USER (name or uid:gid): directly when already that
# user, through setpriv when root.
as_user() {
	local who=$1 uid gid
	shift
	if [[ $who == *:* ]]; then uid=${who%%:*} gid=${who#*:}; else uid=$(id -u "$who") gid=$(id -g "$who"); fi
	if [[ $(id -u) == "$uid" ]]; then
		"$@"
	elif [[ $(id -u) == 0 ]]; then
		setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
	else
		die "must run as root or as uid $uid to run $1, not as $(id -un)"
	fi
}

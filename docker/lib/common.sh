# shellcheck shell=bash
# Shared shell helpers for every Loomworks script and container entrypoint.
# Sourced, never executed, the same way everywhere (callers run under `set -Eeuo pipefail`):
#   . "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"    (images; tests point
#   LOOMWORKS_LIB at the repository's docker/lib; host scripts default to it)

# The log prefix is the program's own name without a leading "docker-" and a trailing
# ".sh": every entrypoint logs "entrypoint: ...", every health check "healthcheck: ...",
# archive-wal "archive-wal: ...". Scripts never set it themselves.
LOG_PREFIX=${0##*/}
LOG_PREFIX=${LOG_PREFIX#docker-}
LOG_PREFIX=${LOG_PREFIX%.sh}

# log MESSAGE...: one line on stderr, prefixed with the program's name.
log() { printf '%s: %s\n' "$LOG_PREFIX" "$*" >&2; }

# die MESSAGE...: one clear line on stderr, then exit 1.
die() {
	log "error: $*"
	exit 1
}

# file_env VAR [DEFAULT]: set VAR from VAR or from the file named by VAR_FILE
# (Docker/Compose secrets); both set is an error; the value is never printed.
file_env() {
	local var=$1 def=${2:-}
	local fvar="${var}_FILE"
	local val=$def
	if [[ -n ${!var:-} && -n ${!fvar:-} ]]; then
		die "both $var and $fvar are set; use one of them"
	fi
	if [[ -n ${!var:-} ]]; then
		val=${!var}
	elif [[ -n ${!fvar:-} ]]; then
		[[ -r ${!fvar} ]] || die "$fvar: cannot read file ${!fvar}"
		val=$(<"${!fvar}")
	fi
	export "$var"="$val"
	unset "$fvar"
}

# renamed OLD NEW: OLD is a deprecated name of the setting NEW. A non-empty OLD still
# works (its value becomes NEW's when NEW is empty), with one warning line; OLD is unset.
renamed() {
	local old=$1 new=$2
	[[ -n ${!old:-} ]] || {
		unset "$old"
		return 0
	}
	if [[ -n ${!new:-} ]]; then
		log "warning: $old is deprecated and ignored ($new is set); use $new"
	else
		log "warning: $old is deprecated; use $new"
		printf -v "$new" '%s' "${!old}"
		export "${new?}"
	fi
	unset "$old"
}

# require_uint VAR [MIN [MAX]]: VAR holds a decimal integer within bounds.
require_uint() {
	local var=$1 min=${2:-0} max=${3:-}
	local val=${!var-}
	[[ $val =~ ^[0-9]+$ ]] || die "$var must be a non-negative integer, got '${val}'"
	((10#$val >= min)) || die "$var must be >= $min, got '$val'"
	[[ -z $max ]] || ((10#$val <= max)) || die "$var must be <= $max, got '$val'"
}

# require_port VAR: a TCP port number.
require_port() { require_uint "$1" 1 65535; }

# normalize_bool VAR: accepts true/false/yes/no/1/0/on/off (any case) and rewrites
# VAR to True or False (Odoo's spelling); anything else is an error.
normalize_bool() {
	local var=$1
	local val=${!var-}
	case ${val,,} in
	true | yes | 1 | on) printf -v "$var" True ;;
	false | no | 0 | off) printf -v "$var" False ;;
	*) die "$var must be a boolean (true/false), got '$val'" ;;
	esac
	export "${var?}"
}

# require_enum VAR CHOICE...: VAR is one of the choices.
require_enum() {
	local var=$1
	shift
	local val=${!var-} c
	for c in "$@"; do [[ $val == "$c" ]] && return 0; done
	die "$var must be one of: $*; got '$val'"
}

# require_nonempty VAR: VAR is set and not empty.
require_nonempty() { [[ -n ${!1:-} ]] || die "$1 is required but empty or unset"; }

# wait_until DESCRIPTION DEADLINE_SECONDS COMMAND...: poll COMMAND with exponential
# backoff (0.25 s doubling to 8 s) until it succeeds or the budget is spent.
# Logs each failed attempt; returns 1 on timeout.
wait_until() {
	local what=$1 budget=$2
	shift 2
	local start=$SECONDS delay=0.25 attempt=1
	until "$@"; do
		local spent=$((SECONDS - start))
		if ((spent >= budget)); then
			return 1
		fi
		# never sleep past the budget: the last wait is clamped to the time left
		delay=$(awk -v d="$delay" -v left=$((budget - spent)) 'BEGIN { print (d < left ? d : left) }')
		log "waiting for $what (attempt $attempt, ${spent}s of ${budget}s, retry in ${delay}s)"
		sleep "$delay"
		delay=$(awk -v d="$delay" 'BEGIN { d *= 2; if (d > 8) d = 8; print d }')
		attempt=$((attempt + 1))
	done
}

# lib_path NAME: the path of an image's own shell library NAME (e.g. pg.sh), to source
# after this file: beside common.sh in an image (LOOMWORKS_LIB), else in the repository's
# <image>/lib/ next to the calling program (<image>/entrypoint.sh, <image>/bin/X).
lib_path() {
	local name=$1 dir
	# builtins only: archive-wal must still reach its exit trap when PATH is broken
	for dir in "${BASH_SOURCE[0]%/*}" "${0%/*}/lib" "${0%/*}/../lib"; do
		[[ -r $dir/$name ]] && {
			printf '%s\n' "$dir/$name"
			return 0
		}
	done
	die "shell library $name not found (LOOMWORKS_LIB=${LOOMWORKS_LIB:-unset})"
}

# host_mirror: the first Debian mirror URL in this host's apt sources (empty if none).
host_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
		[[ -r $f ]] || continue
		uri=$(awk '$1 == "URIs:" || $1 == "deb" { print $2; exit }' "$f")
		[[ -z $uri ]] || { printf '%s\n' "$uri"; return 0; }
	done
}

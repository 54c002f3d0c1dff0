#!/usr/bin/env bash
# Loomworks ERP container entrypoint (runs under tini as PID 1, as the odoo user).
#   (no args) | odoo [OPTIONS] | -OPTIONS  -> validate env, render /run/odoo/odoo.conf,
#       wait for PostgreSQL, initialise DB_NAME when needed, migrate, exec the server.
#   odoo SUBCOMMAND ...  -> render the config, then run it as given (odoo shell, ...).
#   check-config         -> validate env and render the config, then exit (0 when valid).
#   migrate              -> wait for PostgreSQL, initialise DB_NAME when needed, migrate every
#                           database and install INSTALL_ADDONS, then exit (a one-off task
#                           before replicas with AUTO_MIGRATE=false roll).
#   tenant ...           -> render the config, wait for PostgreSQL, run docker/bin/tenant.
#   anything else        -> run as given (bash, odoo --version, ...).
# Every variable is documented in docker/README.md; its default is in `defaults` below.
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"

readonly CONF=${ODOO_RC:-/run/odoo/odoo.conf}
readonly RUN_DIR=${CONF%/*} # the rendered config and the pgpass file
readonly DATA_DIR=/var/lib/odoo
readonly ADDONS_DIR=/opt/loomworks/addons
readonly PGPASS_FILE=$RUN_DIR/pgpass
LAST_DB_ERROR=

drop_root() {
	if [[ $(id -u) == 0 ]]; then
		exec setpriv --reuid=odoo --regid=odoo --init-groups "$0" "$@"
	fi
}

# Names used by the Compose stack's .env before the image's own names; they still work.
deprecated_names() {
	renamed ODOO_WORKERS WORKERS
	renamed ODOO_MAX_CRON_THREADS MAX_CRON_THREADS
	renamed ODOO_LIMIT_TIME_CPU LIMIT_TIME_CPU
	renamed ODOO_LIMIT_TIME_REAL LIMIT_TIME_REAL
	renamed ODOO_LIMIT_MEMORY_SOFT LIMIT_MEMORY_SOFT
	renamed ODOO_LIMIT_MEMORY_HARD LIMIT_MEMORY_HARD
	renamed ODOO_LOG_LEVEL LOG_LEVEL
}

# The image's default of every setting (an empty value counts as unset), in one place.
defaults() {
	: "${DB_HOST:=postgres}" "${DB_PORT:=5432}" "${DB_USER:=odoo}" "${DB_NAME:=}"
	: "${DB_SSLMODE:=prefer}" "${PROXY_MODE:=false}" "${DBFILTER:=}"
	if [[ -n $DB_NAME ]]; then : "${LIST_DB:=false}"; else : "${LIST_DB:=true}"; fi
	: "${WORKERS:=2}" "${MAX_CRON_THREADS:=1}"
	: "${LIMIT_TIME_CPU:=60}" "${LIMIT_TIME_REAL:=120}"
	: "${LIMIT_MEMORY_SOFT:=2147483648}" "${LIMIT_MEMORY_HARD:=2684354560}"
	: "${LOG_LEVEL:=info}" "${DB_WAIT_TIMEOUT:=60}" "${AUTO_MIGRATE:=true}"
	: "${GRACEFUL_TIMEOUT:=30}" "${LISTEN_BACKLOG:=1024}" "${SHUTDOWN_DELAY:=0}"
	: "${HEALTH_CONNECT_TIMEOUT:=2}" "${HEALTH_STATEMENT_TIMEOUT:=2}"
	: "${ODOO_DEV_MODE:=}" "${DEBUGPY_PORT:=}" "${SESSION_STORE:=file}"
	: "${ADDONS_PATH:=}" "${INSTALL_ADDONS:=}"
}

load_env() {
	deprecated_names
	defaults
	file_env DB_PASSWORD
	file_env ODOO_ADMIN_PASSWD
	file_env ADMIN_PASSWORD
}

require_single_line() {
	local var
	for var in "$@"; do
		[[ ${!var} != *$'\n'* && ${!var} != *$'\r'* ]] || die "$var must be a single line"
	done
}

validate_env() {
	require_nonempty DB_HOST
	[[ $DB_HOST =~ ^[A-Za-z0-9._:-]+$ ]] || die "DB_HOST must be a host name or address, got '$DB_HOST'"
	require_port DB_PORT
	require_nonempty DB_USER
	[[ -z $DB_NAME || $DB_NAME =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
		die "DB_NAME may hold letters, digits, '_', '.', '-' only, got '$DB_NAME'"
	require_enum DB_SSLMODE disable allow prefer require verify-ca verify-full
	normalize_bool PROXY_MODE
	normalize_bool LIST_DB
	normalize_bool AUTO_MIGRATE
	require_uint WORKERS 0 1024
	((10#$WORKERS != 1)) ||
		die "WORKERS must be 0 (threaded, development) or >= 2: with 1 worker Odoo refuses to print PDF reports"
	require_uint MAX_CRON_THREADS 0 64
	require_uint LIMIT_TIME_CPU 1
	require_uint LIMIT_TIME_REAL 1
	require_uint LIMIT_MEMORY_SOFT 1
	require_uint LIMIT_MEMORY_HARD 1
	((10#$LIMIT_MEMORY_HARD >= 10#$LIMIT_MEMORY_SOFT)) ||
		die "LIMIT_MEMORY_HARD must be >= LIMIT_MEMORY_SOFT ($LIMIT_MEMORY_SOFT), got '$LIMIT_MEMORY_HARD'"
	require_enum LOG_LEVEL debug info warn error critical debug_sql debug_rpc debug_rpc_answer notset
	require_uint DB_WAIT_TIMEOUT 1 3600
	require_uint GRACEFUL_TIMEOUT 1 3600
	require_uint LISTEN_BACKLOG 1 65535
	require_uint SHUTDOWN_DELAY 0 600
	require_uint HEALTH_CONNECT_TIMEOUT 1 60
	require_uint HEALTH_STATEMENT_TIMEOUT 1 60
	[[ -z $DEBUGPY_PORT ]] || require_port DEBUGPY_PORT
	require_enum SESSION_STORE file db
	[[ $SESSION_STORE == file || -n $DB_NAME ]] ||
		die "SESSION_STORE=db keeps sessions in DB_NAME's database: set DB_NAME"
	[[ $ODOO_DEV_MODE =~ ^[a-z,]*$ ]] || die "ODOO_DEV_MODE must be a comma-separated list like 'reload,qweb', got '$ODOO_DEV_MODE'"
	require_single_line DB_USER DB_PASSWORD DBFILTER ODOO_ADMIN_PASSWD ADMIN_PASSWORD
	if ((10#$WORKERS == 0)); then
		log "warning: WORKERS=0 runs the threaded server: in-flight requests are cut on shutdown"
	fi
}

check_data_dir() {
	[[ -w $DATA_DIR ]] && return 0
	local owner
	owner=$(stat -c %u "$DATA_DIR")
	if [[ $owner == "$(id -u)" ]]; then
		die "$DATA_DIR is on a read-only filesystem: mount a volume at $DATA_DIR"
	fi
	die "$DATA_DIR is not writable by uid $(id -u) (owner uid $owner): use a named volume or chown the mounted directory to $(id -u):$(id -g)"
}

server_wide_modules() {
	local mods=base,web
	[[ -f $ADDONS_DIR/loomworks_health/__manifest__.py ]] && mods+=,loomworks_health
	[[ $SESSION_STORE == db ]] && mods+=,session_db
	printf '%s' "$mods"
}

master_password_hash() {
	if [[ -z $ODOO_ADMIN_PASSWD ]]; then
		log "ODOO_ADMIN_PASSWD not set: the database manager gets a random master password"
		ODOO_ADMIN_PASSWD=$(head -c 32 /dev/urandom | base64)
	fi
	loomworks-db hash <<<"$ODOO_ADMIN_PASSWD"
}

# pgpass line: host:port:db:user:password with ':' and '\' escaped.
write_pgpass() {
	local pw=${DB_PASSWORD//\\/\\\\}
	pw=${pw//:/\\:}
	printf '%s:%s:*:%s:%s\n' "$DB_HOST" "$DB_PORT" "${DB_USER//:/\\:}" "$pw" >"$PGPASS_FILE"
	export PGHOST=$DB_HOST PGPORT=$DB_PORT PGUSER=$DB_USER PGPASSFILE=$PGPASS_FILE
	export PGSSLMODE=$DB_SSLMODE PGCONNECT_TIMEOUT=5
	# session_db (SESSION_STORE=db): a URI without the password, which libpq takes from PGPASSFILE.
	if [[ $SESSION_STORE == db ]]; then
		export SESSION_DB_URI="postgresql://${DB_USER}@${DB_HOST}:${DB_PORT}/${DB_NAME}"
	fi
}

render_config() {
	local hash
	hash=$(master_password_hash)
	umask 077
	: >"$CONF"
	chmod 0600 "$CONF"
	cat >"$CONF" <<CONF
[options]
data_dir = $DATA_DIR
http_port = 8069
gevent_port = 8072
db_host = $DB_HOST
db_port = $DB_PORT
db_user = $DB_USER
db_password = $DB_PASSWORD
db_name = $DB_NAME
db_sslmode = $DB_SSLMODE
admin_passwd = $hash
proxy_mode = $PROXY_MODE
dbfilter = $DBFILTER
list_db = $LIST_DB
workers = $WORKERS
max_cron_threads = $MAX_CRON_THREADS
limit_time_cpu = $LIMIT_TIME_CPU
limit_time_real = $LIMIT_TIME_REAL
limit_memory_soft = $LIMIT_MEMORY_SOFT
limit_memory_hard = $LIMIT_MEMORY_HARD
log_level = $LOG_LEVEL
without_demo = all
server_wide_modules = $(server_wide_modules)
health_connect_timeout = $HEALTH_CONNECT_TIMEOUT
health_statement_timeout = $HEALTH_STATEMENT_TIMEOUT
CONF
	# addons_path, conf.d fragments and ODOO_<OPTION> variables, each checked
	loomworks-db config "$CONF"
	write_pgpass
}

# True when waiting cannot help: the server answered and refused this login (wrong
# password, missing role, no pg_hba.conf entry, SSL required but not offered). A refused
# connection, an unknown host or "the database system is starting up" are worth a retry.
login_refused() {
	case $1 in
	*"the database system is"*) return 1 ;;
	*"authentication failed"* | *"role \""*"\" does not exist"* | *"no pg_hba.conf entry"* | \
		*"pg_hba.conf rejects"* | *"no password supplied"* | *"does not support SSL"* | \
		*"database \""*"\" does not exist"*) return 0 ;;
	*) return 1 ;;
	esac
}

db_login() {
	local err
	if err=$(psql -X -q -t -d postgres -c 'SELECT 1' 2>&1 >/dev/null); then
		return 0
	fi
	LAST_DB_ERROR=$(printf '%s' "$err" | tr '\n' ' ' | sed 's/  */ /g; s/ $//')
	if login_refused "$LAST_DB_ERROR"; then
		die "PostgreSQL at $DB_HOST:$DB_PORT refused the login of $DB_USER (not retried): $LAST_DB_ERROR"
	fi
	return 1
}

wait_for_db() {
	log "connecting to PostgreSQL at $DB_HOST:$DB_PORT as $DB_USER (budget ${DB_WAIT_TIMEOUT}s)"
	if ! wait_until "PostgreSQL at $DB_HOST:$DB_PORT" "$DB_WAIT_TIMEOUT" db_login; then
		die "PostgreSQL at $DB_HOST:$DB_PORT not ready after ${DB_WAIT_TIMEOUT}s (DB_WAIT_TIMEOUT): ${LAST_DB_ERROR:-no answer}"
	fi
	log "PostgreSQL at $DB_HOST:$DB_PORT accepts logins"
}

prepare_databases() {
	local args=(--modules "$INSTALL_ADDONS")
	[[ -n $DB_NAME ]] && args+=(--init "$DB_NAME")
	if [[ $AUTO_MIGRATE == True ]]; then
		args+=(--migrate)
		[[ -n $DB_NAME ]] && args+=("$DB_NAME")
	else
		log "migration: disabled (AUTO_MIGRATE=false): no update, no module install at start"
	fi
	loomworks-db prepare "${args[@]}" <<<"$ADMIN_PASSWORD"
}

# The secrets, and every ODOO_<OPTION>(_FILE) variable (now in the 0600 config), leave the
# environment before Odoo starts.
forget_secrets() {
	unset DB_PASSWORD ODOO_ADMIN_PASSWD ADMIN_PASSWORD
	local var
	for var in $(compgen -e ODOO_); do
		[[ $var == ODOO_RC || $var == ODOO_DEV_MODE ]] || unset "$var"
	done
}

configure() {
	load_env
	validate_env
	check_data_dir
	render_config
}

# One warning line at start when the image renders PDFs with Debian's wkhtmltopdf (built with
# PDF_RENDERER=debian; the image records its renderer in this file and in its label).
PDF_RENDERER_FILE=/usr/local/share/loomworks/pdf-renderer
warn_pdf_renderer() {
	[[ -r $PDF_RENDERER_FILE && $(<"$PDF_RENDERER_FILE") == debian ]] || return 0
	log "warning: PDF reports print WITHOUT company header and footer: this image has Debian's wkhtmltopdf (unpatched Qt), built with PDF_RENDERER=debian; rebuild with the default PDF_RENDERER=wkhtmltox for complete reports"
}

run_server() {
	configure
	warn_pdf_renderer
	wait_for_db
	prepare_databases
	forget_secrets
	log "starting Odoo: workers=$WORKERS, graceful shutdown ${GRACEFUL_TIMEOUT}s"
	# Read by the odoo script (docker/bin/odoo) in the prefork master.
	export GRACEFUL_TIMEOUT LISTEN_BACKLOG SHUTDOWN_DELAY
	# With DEBUGPY_PORT set (dev image), the odoo script itself starts debugpy.
	[[ -z $DEBUGPY_PORT ]] || export DEBUGPY_PORT
	# Odoo reads dev_mode from its command line only (a config value is overwritten).
	local args=("$@")
	[[ -z $ODOO_DEV_MODE ]] || args+=("--dev=$ODOO_DEV_MODE")
	exec odoo "${args[@]}"
}

# True when `odoo ARGS` starts the server (no subcommand, not --version/--help).
is_server() {
	(($# == 0)) && return 0
	case $1 in
	--version | -h | --help) return 1 ;;
	server) return 0 ;;
	-*) return 0 ;;
	*) return 1 ;;
	esac
}

main() {
	drop_root "$@"
	(($#)) || set -- odoo
	if [[ $1 == check-config ]]; then
		configure
		log "configuration OK: $CONF"
		exit 0
	fi
	if [[ $1 == tenant ]]; then
		configure
		wait_for_db
		forget_secrets
		exec "$@"
	fi
	if [[ $1 == migrate ]]; then
		configure
		wait_for_db
		AUTO_MIGRATE=True prepare_databases
		log "migration done"
		exit 0
	fi
	[[ $1 == -* ]] && set -- odoo "$@"
	if [[ $1 == odoo ]] && is_server "${@:2}"; then
		shift
		[[ ${1:-} == server ]] && shift
		run_server "$@"
	fi
	if [[ $1 == odoo && ${2:-} != --version && ${2:-} != -h && ${2:-} != --help ]]; then
		configure
		forget_secrets
	fi
	exec "$@"
}

main "$@"

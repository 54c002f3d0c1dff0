#!/usr/bin/env bash
# Loomworks nginx entrypoint: validate the environment, pick (or generate) the
# TLS certificate, render the configuration templates, run `nginx -t`, then
# exec nginx in the foreground.
#
#   entrypoint.sh            prepare and run nginx
#   entrypoint.sh check      prepare and run `nginx -t` only (exit status = result)
#   entrypoint.sh CMD...     run CMD as is (debugging: bash, nginx -V, ...)
#
# Every setting's default, and the image's paths (LW_*), are in `defaults` (lib/nginx.sh).
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"
# shellcheck source=nginx/lib/nginx.sh
. "$(lib_path nginx.sh)"

# Only these names are substituted in the templates; nginx's $variables stay.
RENDER_VARS=(LOOMWORKS_DOMAIN LOOMWORKS_DOMAIN_REGEX ODOO_HOST ODOO_HTTP_PORT ODOO_WS_PORT
	ALLOW_DATABASE_MANAGER NGINX_HTTP_LISTEN NGINX_HTTPS_LISTEN NGINX_LOCAL_LISTEN
	LW_HTTPS_PORT_SUFFIX RESOLVER SSL_CERT SSL_KEY LW_CONF_DIR LW_RUN_DIR LW_CACHE_DIR LW_HTML_DIR
	NGINX_STATIC_CACHE_SIZE NGINX_STATIC_CACHE_VALID)

# A DNS name: lower-case labels of letters, digits and inner hyphens.
HOSTNAME_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'
IPV4_RE='^([0-9]{1,3}\.){3}[0-9]{1,3}$'

require_hostname() {
	local var=$1
	local val=${!var-}
	[[ $val =~ $HOSTNAME_RE && ${#val} -le 253 ]] ||
		die "$var must be a DNS name (letters, digits, hyphens, dots), got '$val'"
}

# require_listen VAR: "PORT" or "IPV4:PORT".
require_listen() {
	local var=$1
	local val=${!var-}
	[[ $val =~ ^(([0-9]{1,3}\.){3}[0-9]{1,3}:)?([0-9]+)$ ]] ||
		die "$var must be PORT or IPV4:PORT, got '$val'"
	local port=${BASH_REMATCH[3]}
	((10#$port >= 1 && 10#$port <= 65535)) || die "$var: port must be 1-65535, got '$val'"
}

# The image's former name of HTTPS_PORT (the name the stack's .env always used); it still works.
deprecated_names() {
	renamed PUBLIC_HTTPS_PORT HTTPS_PORT
}

validate_env() {
	LOOMWORKS_DOMAIN=${LOOMWORKS_DOMAIN,,}
	require_hostname LOOMWORKS_DOMAIN
	export LOOMWORKS_DOMAIN_REGEX=${LOOMWORKS_DOMAIN//./\\.}

	[[ $ODOO_HOST =~ $IPV4_RE ]] || require_hostname ODOO_HOST
	require_port ODOO_HTTP_PORT
	require_port ODOO_WS_PORT

	normalize_bool ALLOW_DATABASE_MANAGER

	require_listen NGINX_HTTP_LISTEN
	require_listen NGINX_HTTPS_LISTEN
	require_listen NGINX_LOCAL_LISTEN

	require_port HTTPS_PORT
	export LW_HTTPS_PORT_SUFFIX=""
	[[ $HTTPS_PORT == 443 ]] || LW_HTTPS_PORT_SUFFIX=":$HTTPS_PORT"

	[[ $RESOLVER =~ ^[][0-9a-fA-F.:]+( [][0-9a-fA-F.:]+)*$ ]] ||
		die "RESOLVER must be space-separated IP addresses, got '$RESOLVER'"

	[[ $NGINX_STATIC_CACHE_SIZE =~ ^[1-9][0-9]*[kKmMgG]$ ]] ||
		die "NGINX_STATIC_CACHE_SIZE must be a size such as 64m or 1g (digits, then k, m or g), got '$NGINX_STATIC_CACHE_SIZE'"
	[[ $NGINX_STATIC_CACHE_VALID =~ ^[1-9][0-9]*[smhd]$ ]] ||
		die "NGINX_STATIC_CACHE_VALID must be a duration such as 30s, 10m, 1h or 1d, got '$NGINX_STATIC_CACHE_VALID'"
	export "${RENDER_VARS[@]}"
}

# cert_matches CERT HOST: the certificate is valid for HOST (wildcards included).
cert_matches() {
	openssl x509 -in "$1" -noout -checkhost "$2" 2>/dev/null | grep -q 'does match'
}

# check_certificate CERT KEY: readable PEM pair, key matches, not expired, and
# valid for LOOMWORKS_DOMAIN. Never prints the key.
check_certificate() {
	local cert=$1 key=$2 enddate
	[[ -r $cert ]] || die "$cert: not readable by uid $(id -u)"
	[[ -r $key ]] || die "$key: not readable by uid $(id -u)"
	openssl x509 -in "$cert" -noout 2>/dev/null || die "$cert: not a PEM certificate"
	openssl pkey -in "$key" -noout 2>/dev/null || die "$key: not an unencrypted PEM private key"
	[[ $(openssl x509 -in "$cert" -noout -pubkey) == "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]] ||
		die "$key: private key does not match the certificate $cert"
	enddate=$(openssl x509 -in "$cert" -noout -enddate)
	enddate=${enddate#notAfter=}
	openssl x509 -in "$cert" -noout -checkend 0 >/dev/null ||
		die "$cert: certificate expired on $enddate"
	cert_matches "$cert" "$LOOMWORKS_DOMAIN" ||
		die "$cert: certificate is not valid for LOOMWORKS_DOMAIN=$LOOMWORKS_DOMAIN"
	cert_matches "$cert" "tenant.$LOOMWORKS_DOMAIN" ||
		log "warning: $cert does not cover *.$LOOMWORKS_DOMAIN; tenant subdomains will get TLS errors"
	openssl x509 -in "$cert" -noout -checkend $((14 * 86400)) >/dev/null ||
		log "warning: $cert expires soon ($enddate)"
}

# A generated certificate is reused while it matches the domain and has more
# than 30 days left; otherwise it is replaced.
self_signed_usable() {
	local cert=$1 key=$2
	[[ -s $cert && -s $key ]] &&
		openssl x509 -in "$cert" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 &&
		cert_matches "$cert" "$LOOMWORKS_DOMAIN" &&
		cert_matches "$cert" "tenant.$LOOMWORKS_DOMAIN" &&
		[[ $(openssl x509 -in "$cert" -noout -pubkey) == "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]]
}

generate_self_signed() {
	local dir=$1 tmp
	[[ -d $dir && -w $dir ]] || die "$dir: self-signed certificate directory missing or not writable by uid $(id -u)"
	tmp=$(mktemp -d "$dir/.new.XXXXXX")
	(
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
			-subj "/CN=$LOOMWORKS_DOMAIN" \
			-addext "subjectAltName=DNS:$LOOMWORKS_DOMAIN,DNS:*.$LOOMWORKS_DOMAIN" \
			-addext "basicConstraints=critical,CA:FALSE" \
			-addext "keyUsage=critical,digitalSignature" \
			-addext "extendedKeyUsage=serverAuth" \
			-keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2>/dev/null
	) || {
		rm -rf "$tmp"
		die "openssl could not generate a self-signed certificate in $dir"
	}
	chmod 0644 "$tmp/fullchain.pem"
	# Key first: a crash between the renames leaves a pair that fails the match check.
	mv -f "$tmp/privkey.pem" "$dir/privkey.pem"
	mv -f "$tmp/fullchain.pem" "$dir/fullchain.pem"
	rmdir "$tmp"
}

# Sets SSL_CERT/SSL_KEY: the mounted pair when present, else the generated one.
choose_certificate() {
	local cert=$LW_CERT_DIR/fullchain.pem key=$LW_CERT_DIR/privkey.pem
	if [[ -e $cert || -e $key ]]; then
		[[ -e $cert ]] || die "$cert: missing ($key is mounted; both are needed)"
		[[ -e $key ]] || die "$key: missing ($cert is mounted; both are needed)"
		check_certificate "$cert" "$key"
		log "using mounted certificate $cert"
	else
		cert=$LW_SELF_SIGNED_DIR/fullchain.pem key=$LW_SELF_SIGNED_DIR/privkey.pem
		if self_signed_usable "$cert" "$key"; then
			log "reusing self-signed certificate $cert"
		else
			generate_self_signed "$LW_SELF_SIGNED_DIR"
			log "generated a self-signed certificate for $LOOMWORKS_DOMAIN and *.$LOOMWORKS_DOMAIN" \
				"in $LW_SELF_SIGNED_DIR (browsers will warn; mount real ones on $LW_CERT_DIR)"
		fi
		check_certificate "$cert" "$key"
	fi
	SSL_CERT=$cert SSL_KEY=$key
	export SSL_CERT SSL_KEY
}

# The writable paths (tmpfs on a read-only root): checked before any work.
require_writable_dirs() {
	local dir
	for dir in LW_CONF_DIR LW_RUN_DIR LW_CACHE_DIR; do
		if ! mkdir -p "${!dir}" 2>/dev/null || [[ ! -w ${!dir} ]]; then
			die "$dir=${!dir} is not writable by uid $(id -u) (a tmpfs there needs uid=$(id -u) or mode=1777)"
		fi
	done
}

# Render every template file into LW_CONF_DIR with envsubst, restricted to
# RENDER_VARS; a leftover ${NAME} means a template typo.
render_templates() {
	local shell_format src dst
	# shellcheck disable=SC2016 # literal ${NAME} list for envsubst
	shell_format=$(printf '${%s} ' "${RENDER_VARS[@]}")
	[[ -f $LW_TEMPLATE_DIR/nginx.conf ]] || die "LW_TEMPLATE_DIR=$LW_TEMPLATE_DIR: no nginx.conf template"
	while IFS= read -r -d '' src; do
		dst=$LW_CONF_DIR/${src#"$LW_TEMPLATE_DIR"/}
		mkdir -p "${dst%/*}"
		envsubst "$shell_format" <"$src" >"$dst.tmp"
		# shellcheck disable=SC2016 # a literal ${NAME} left in the output
		if grep -n '\${[A-Z_]*}' "$dst.tmp" >&2; then
			die "$src: unknown template variable(s) above"
		fi
		mv -f "$dst.tmp" "$dst"
	done < <(find "$LW_TEMPLATE_DIR" -type f -name '*.conf' -print0)
}

check_config() {
	"$NGINX_BIN" -t -q -c "$LW_CONF_DIR/nginx.conf" || die "the rendered configuration in $LW_CONF_DIR failed nginx -t"
}

prepare() {
	deprecated_names
	defaults
	validate_env
	require_writable_dirs
	choose_certificate
	render_templates
	check_config
	log "ready: https://$LOOMWORKS_DOMAIN and https://<tenant>.$LOOMWORKS_DOMAIN -> $ODOO_HOST:$ODOO_HTTP_PORT" \
		"(websocket :$ODOO_WS_PORT), database manager allowed: $ALLOW_DATABASE_MANAGER"
}

main() {
	case ${1:-} in
	"")
		prepare
		exec "$NGINX_BIN" -c "$LW_CONF_DIR/nginx.conf" -g 'daemon off;'
		;;
	check) prepare ;;
	*) exec "$@" ;;
	esac
}

main "$@"

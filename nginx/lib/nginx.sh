# shellcheck shell=bash
# Settings of loomworks/nginx, shared by its entrypoint and its health check. Sourced
# after common.sh:   . "$(lib_path nginx.sh)"

# The resolver nginx uses for ODOO_HOST: the nameservers of /etc/resolv.conf
# (Docker's embedded DNS, 127.0.0.11, on user-defined networks).
default_resolver() {
	local ns
	ns=$(awk '$1 == "nameserver" { if ($2 ~ /:/) printf "[%s] ", $2; else printf "%s ", $2 }' \
		/etc/resolv.conf 2>/dev/null || true)
	printf '%s' "${ns% }"
}

# The default of every setting of the image, in one place (an empty value counts as unset).
# The LW_* paths are the image's layout; the tests point them into a temporary directory
# to run the same entrypoint against the host's nginx.
defaults() {
	: "${LOOMWORKS_DOMAIN:=loomworks.localhost}"
	: "${ODOO_HOST:=odoo}" "${ODOO_HTTP_PORT:=8069}" "${ODOO_WS_PORT:=8072}"
	: "${ALLOW_DATABASE_MANAGER:=false}"
	: "${NGINX_HTTP_LISTEN:=8080}" "${NGINX_HTTPS_LISTEN:=8443}" "${NGINX_LOCAL_LISTEN:=8069}"
	# The HTTPS port clients see (compose publishes it on HTTPS_PORT); used in redirects.
	: "${HTTPS_PORT:=443}"
	: "${RESOLVER:=$(default_resolver)}"
	: "${RESOLVER:=127.0.0.11}"
	# The static-asset cache (LW_CACHE_DIR/static): its size limit and how long an entry
	# is served before nginx revalidates it with Odoo.
	: "${NGINX_STATIC_CACHE_SIZE:=64m}" "${NGINX_STATIC_CACHE_VALID:=10m}"
	: "${LW_TEMPLATE_DIR:=/usr/local/share/loomworks/nginx/templates}" # read-only templates
	: "${LW_HTML_DIR:=/usr/local/share/loomworks/nginx/html}"         # error pages
	: "${LW_CONF_DIR:=/tmp/nginx}"                                     # rendered config (writable)
	: "${LW_RUN_DIR:=/tmp/nginx}"                                      # pid file (writable)
	: "${LW_CACHE_DIR:=/var/cache/nginx}"                              # request/proxy temp files (writable)
	: "${LW_CERT_DIR:=/etc/nginx/certs}"                               # mounted certificates (read-only)
	: "${LW_SELF_SIGNED_DIR:=/var/lib/nginx/certs}"                    # generated certificate (volume)
	: "${NGINX_BIN:=nginx}"
}

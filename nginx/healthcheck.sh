#!/usr/bin/env bash
# Docker HEALTHCHECK of loomworks/nginx (and Compose's): GET /nginx-health on the plain
# listener NGINX_HTTP_LISTEN (no curl in the image: bash's /dev/tcp). Exit 0 when nginx
# answers 200; else one line saying why.
set -Eeuo pipefail

# shellcheck source=docker/lib/common.sh
. "${LOOMWORKS_LIB:-/usr/local/lib/loomworks}/common.sh"
# shellcheck source=nginx/lib/nginx.sh
. "$(lib_path nginx.sh)"

probe() {
	local status
	exec 3<>"/dev/tcp/$addr/$port"
	printf 'GET /nginx-health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
	IFS= read -r status <&3
	exec 3>&-
	[[ $status == "HTTP/1.1 200"* ]] || {
		echo "answered '${status%$'\r'}'"
		return 1
	}
}

main() {
	local out
	defaults
	port=${NGINX_HTTP_LISTEN##*:}
	addr=127.0.0.1
	[[ $NGINX_HTTP_LISTEN != *:* ]] || addr=${NGINX_HTTP_LISTEN%:*}
	export -f probe
	export addr port
	if ! out=$(timeout 3 bash -Eeuo pipefail -c probe 2>&1); then
		out=${out//$'\n'/; }
		die "GET /nginx-health on $addr:$port: ${out:-no answer within 3s}"
	fi
}

main "$@"

#!/usr/bin/env bash
# Docker HEALTHCHECK: GET /nginx-health on the plain listener (no curl in the
# image: bash's /dev/tcp). Exit 0 when nginx answers 200.
set -Eeuo pipefail

listen=${NGINX_HTTP_LISTEN:-8080}
port=${listen##*:}
addr=127.0.0.1
[[ $listen != *:* ]] || addr=${listen%:*}

probe() {
	local status
	exec 3<>"/dev/tcp/$addr/$port"
	printf 'GET /nginx-health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
	IFS= read -r status <&3
	exec 3>&-
	[[ $status == "HTTP/1.1 200"* ]]
}

export -f probe
export addr port
timeout 3 bash -Eeuo pipefail -c probe

#!/bin/sh
# `npm run bench` and `npm run bench:population` run this first. The benchmarks measure the
# gateway beside peers from Debian, HAProxy 2.6 (`jwt_verify`) and nginx (a plain proxy, and TLS
# termination), drive them with wrk (a Lua script sends a different token on every request) and,
# for HTTPS and HTTP/2, with h2load (nghttp2-client). Missing ones are
# installed with apt-get, saying so; where that cannot be done the run stops here saying what to
# install, since a comparison without its peers would report nothing worth reading.
set -eu

missing=""
command -v wrk >/dev/null 2>&1 || missing="wrk"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="${missing:+$missing }haproxy"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="${missing:+$missing }nginx"
command -v taskset >/dev/null 2>&1 || missing="${missing:+$missing }util-linux"
command -v h2load >/dev/null 2>&1 || missing="${missing:+$missing }nghttp2-client"
command -v openssl >/dev/null 2>&1 || missing="${missing:+$missing }openssl"
[ -z "$missing" ] && exit 0

. "${0%/*}/apt-install.sh"
apt_install "the benchmarks" "$missing" --no-install-recommends
command -v wrk >/dev/null 2>&1 || cannot "wrk is still missing after apt-get install."
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || cannot "haproxy is still missing after apt-get install."
echo "bench: installed $missing" >&2

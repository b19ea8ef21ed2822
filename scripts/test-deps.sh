#!/bin/sh
# `npm test` runs this first (the `pretest` script). Besides node_modules the suite needs
# redis-server (tests start their own on free ports, never the machine's 6379), Debian's
# chromium at /usr/bin/chromium (test/e2e drives it through playwright-core; browser downloads
# are not reachable where this is tested, Debian packages are), PyJWT with cryptography for
# Debian's /usr/bin/python3 (test/docs runs the Python example of docs/upstreams.md; about
# 3 MB, python3-cryptography being most of it), and nginx and caddy (the forward-auth tests put
# them in front of a gateway; nginx lives in /usr/sbin, often off a user's PATH). Missing ones are installed with
# apt-get; where that cannot be done the run stops here saying what to install, since a suite
# that skips what it cannot run would pass without testing.
set -eu

missing=""
command -v redis-server >/dev/null 2>&1 || missing="redis-server"
[ -x /usr/bin/chromium ] || missing="${missing:+$missing }chromium"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="${missing:+$missing }nginx"
command -v caddy >/dev/null 2>&1 || [ -x /usr/bin/caddy ] || missing="${missing:+$missing }caddy"
# HTTPS (test/tls, test/e2e/https.test.ts): openssl makes a test CA, curl speaks HTTP/2 and
# HTTP/1.1 to the gateway, and certutil puts the CA in Chromium's NSS database.
command -v openssl >/dev/null 2>&1 || [ -x /usr/bin/openssl ] || missing="${missing:+$missing }openssl"
command -v curl >/dev/null 2>&1 || [ -x /usr/bin/curl ] || missing="${missing:+$missing }curl"
command -v certutil >/dev/null 2>&1 || [ -x /usr/bin/certutil ] || missing="${missing:+$missing }libnss3-tools"
# find_spec finds the packages without importing them (an import costs 0.2 s, this 0.05 s).
has_pyjwt() {
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import importlib.util as u; exit(not (u.find_spec("jwt") and u.find_spec("cryptography")))' 2>/dev/null
}
has_pyjwt || missing="${missing:+$missing }python3-jwt python3-cryptography"
[ -z "$missing" ] && exit 0

. "${0%/*}/apt-install.sh"
apt_install "npm test" "$missing"

command -v redis-server >/dev/null 2>&1 || cannot "redis-server is still not on the PATH after apt-get install."
# Ubuntu's chromium package installs a snap (/snap/bin/chromium), which the tests do not use.
[ -x /usr/bin/chromium ] || cannot "/usr/bin/chromium is still missing after apt-get install (Ubuntu's package is a snap: install Debian's chromium, or link a Chromium binary at /usr/bin/chromium)."
has_pyjwt || cannot "/usr/bin/python3 still finds no jwt and cryptography after apt-get install."
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || cannot "nginx is still missing after apt-get install."
command -v caddy >/dev/null 2>&1 || [ -x /usr/bin/caddy ] || cannot "caddy is still missing after apt-get install."
command -v certutil >/dev/null 2>&1 || [ -x /usr/bin/certutil ] || cannot "certutil is still missing after apt-get install of libnss3-tools."
echo "npm test: installed $missing" >&2

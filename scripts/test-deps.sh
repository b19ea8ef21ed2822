#!/bin/sh
# `npm test` runs this first (the `pretest` script). Besides node_modules the suite needs
# redis-server (tests start their own on free ports, never the machine's 6379) and Debian's
# chromium at /usr/bin/chromium (test/e2e drives it through playwright-core; browser downloads
# are not reachable where this is tested, Debian packages are). Missing ones are installed with
# apt-get; where that cannot be done the run stops here saying what to install, since a suite
# that skips what it cannot run would pass without testing.
set -eu

missing=""
command -v redis-server >/dev/null 2>&1 || missing="redis-server"
[ -x /usr/bin/chromium ] || missing="${missing:+$missing }chromium"
[ -z "$missing" ] && exit 0

cannot() {
  echo "npm test needs $missing and cannot install it: $1" >&2
  echo "Install it, then run npm test again:  sudo apt-get install -y $missing" >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || cannot "there is no apt-get here."
if [ "$(id -u)" -eq 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root="sudo -n"
else
  cannot "this is not root, and sudo is missing or asks for a password."
fi

echo "npm test: installing $missing with apt-get" >&2
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || cannot "apt-get update failed."
# shellcheck disable=SC2086 # one word per package
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || cannot "apt-get install failed."

command -v redis-server >/dev/null 2>&1 || cannot "redis-server is still not on the PATH after apt-get install."
# Ubuntu's chromium package installs a snap (/snap/bin/chromium), which the tests do not use.
[ -x /usr/bin/chromium ] || cannot "/usr/bin/chromium is still missing after apt-get install (Ubuntu's package is a snap: install Debian's chromium, or link a Chromium binary at /usr/bin/chromium)."
echo "npm test: installed $missing" >&2

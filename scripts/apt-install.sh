# Sourced by scripts/test-deps.sh and scripts/bench-deps.sh once they have listed what is
# missing: `apt_install WHO PACKAGES [apt-get install options]` installs PACKAGES with apt-get
# (as root, or through a sudo that asks no password) and says so on stderr under the name WHO;
# where that cannot be done it stops, naming the apt line. `cannot` is for the callers' own
# checks after the install.
cannot() {
  echo "$apt_who needs $apt_packages and cannot install it: $1" >&2
  echo "Install it, then run $apt_who again:  sudo apt-get install -y $apt_packages" >&2
  exit 1
}

apt_install() {
  apt_who=$1
  apt_packages=$2
  shift 2
  command -v apt-get >/dev/null 2>&1 || cannot "there is no apt-get here."
  if [ "$(id -u)" -eq 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
  else
    cannot "this is not root, and sudo is missing or asks for a password."
  fi
  echo "$apt_who: installing $apt_packages with apt-get" >&2
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || cannot "apt-get update failed."
  # shellcheck disable=SC2086 # one word per package
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" $apt_packages >/dev/null || cannot "apt-get install failed."
}

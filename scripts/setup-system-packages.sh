#!/bin/sh
# Installs the system packages the end-to-end tests drive: the real
# python-cloudkittyclient (`cloudkitty`) and python-openstackclient
# (`openstack`), from Debian, on /usr/bin/python3. Idempotent: does nothing
# when both are already there. Run as root (or through sudo) on Debian 12.
set -eu

PACKAGES="python3-cloudkittyclient python3-openstackclient"

have_all() {
  [ -x /usr/bin/cloudkitty ] &&
    [ -x /usr/bin/openstack ] &&
    /usr/bin/python3 -c 'import cloudkittyclient, openstackclient' >/dev/null 2>&1
}

if have_all; then
  echo "setup-system-packages: already installed: $PACKAGES"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "setup-system-packages: must run as root (or with sudo) to install: $PACKAGES" >&2
  exit 1
fi

start=$(date +%s)
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES
end=$(date +%s)

if ! have_all; then
  echo "setup-system-packages: installed $PACKAGES but cloudkitty/openstack are still missing" >&2
  exit 1
fi
echo "setup-system-packages: installed $PACKAGES in $((end - start)) s"

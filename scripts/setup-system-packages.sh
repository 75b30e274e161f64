#!/bin/sh
# Installs the system packages the tests drive, from Debian, on
# /usr/bin/python3: the real python-cloudkittyclient (`cloudkitty`) and
# python-openstackclient (`openstack`) for the end-to-end tests, and a real
# Keystone 22 (python3-keystone, served by uwsgi-plugin-python3) for the
# authentication tests. Not the `keystone` package: it configures and starts
# a system service; the tests run their own Keystone on loopback
# (test/helpers/keystone-server.ts). A real tooz 3.1 client with its
# MySQL, PostgreSQL and Redis drivers (python3-tooz, python3-pymysql,
# python3-psycopg2, python3-redis), and CloudKitty itself (python3-cloudkitty)
# for its lock names, so the coordination tests take CloudKitty's processing
# lock as its processor does (test/helpers/tooz-holder.py), and oslo.middleware
# with webob, which the health-check and proxy-header tests compare our answers
# with (test/helpers/oslo-middleware.ts). And prometheus, for its promtool:
# the shipped alert rules (prometheus/scopekeeper-alerts.yml) are checked and
# unit-tested with `promtool check rules` and `promtool test rules`
# (test/e2e/prometheus-alerts.test.ts); on a host run by systemd the package
# also enables a prometheus service on :9090, which the tests neither need
# nor touch. And Debian's chromium, the real browser the operator console's
# tests drive headless with playwright-core (test/e2e/console.test.ts); it
# needs no network and no browser download. Idempotent: does
# nothing when all are already there. Run as root (or through sudo) on
# Debian 12.
set -eu

PACKAGES="python3-cloudkittyclient python3-openstackclient python3-keystone uwsgi-plugin-python3 python3-tooz python3-pymysql python3-psycopg2 python3-redis python3-cloudkitty python3-oslo.middleware python3-webob prometheus chromium"

have_all() {
  [ -x /usr/bin/cloudkitty ] &&
    [ -x /usr/bin/openstack ] &&
    [ -x /usr/bin/keystone-manage ] &&
    [ -x /usr/bin/keystone-wsgi-public ] &&
    [ -x /usr/bin/uwsgi_python3 ] &&
    /usr/bin/python3 -c 'import cloudkittyclient, openstackclient, keystone' >/dev/null 2>&1 &&
    /usr/bin/python3 -c 'import tooz.coordination, pymysql, psycopg2, redis, cloudkitty.orchestrator, oslo_middleware.healthcheck, oslo_middleware.http_proxy_to_wsgi, webob' >/dev/null 2>&1 &&
    [ -x /usr/bin/promtool ] &&
    [ -x /usr/bin/chromium ]
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
  echo "setup-system-packages: installed $PACKAGES but cloudkitty, openstack, Keystone, tooz, CloudKitty, promtool or chromium are still missing" >&2
  exit 1
fi
echo "setup-system-packages: installed $PACKAGES in $((end - start)) s"

#!/usr/bin/env bash
# Install and start what the test suite needs, idempotently, with this machine's own
# commands (Debian packages): PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379,
# the Monitoring Plugins the nagios kind is tested with, and Prometheus Alertmanager (a real
# sender for the webhook tests; installed, not started: the tests start their own), and the
# zstd and chattr commands the logs action's tests use, pebble (ACME) for certificates, and
# Chromium for the dashboard's browser tests.
set -euo pipefail

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/lib/nagios/plugins/check_tcp ] || missing+=(monitoring-plugins-basic)
[ -x /usr/lib/nagios/plugins/check_curl ] || missing+=(monitoring-plugins-standard)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# The logs action's archives are read back by the real tools; chattr makes a directory root cannot change.
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v chattr >/dev/null 2>&1 || missing+=(e2fsprogs)
# The certificates action renews against Debian's pebble ACME test server; the DR drill uses
# PostgreSQL's own pg_basebackup and pg_ctl (in the postgresql package).
command -v pebble >/dev/null 2>&1 || missing+=(pebble)
# The dashboard's browser tests drive Debian's Chromium with Playwright (never `playwright install`).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "services: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

wait_for() {  # wait_for NAME COMMAND...: up to 30 s
    local name=$1; shift
    for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "services: $name did not come up" >&2
    return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
    echo "services: starting PostgreSQL" >&2
    for version in $(ls /etc/postgresql); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
fi
wait_for PostgreSQL pg_up

# The DR drill takes a pg_basebackup of the local server: allow replication connections from
# loopback (trust, as the machine's other local connections are), then reload.
for hba in /etc/postgresql/*/main/pg_hba.conf; do
    if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$hba"; then
        echo "services: allowing loopback replication in $hba" >&2
        printf 'host    replication     all             127.0.0.1/32            trust\n' >> "$hba"
        version=$(basename "$(dirname "$(dirname "$hba")")")
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
done

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if ! redis_up; then
    echo "services: starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for Redis redis_up

echo "services: PostgreSQL, Redis and Monitoring Plugins ready" >&2

#!/usr/bin/env bash
# Start what the test suite needs, idempotently: PostgreSQL on 127.0.0.1:5432.
# Uses the machine's own commands (Debian packages); installs PostgreSQL only if it is missing.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: installing PostgreSQL" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

if ! pg_up; then
    echo "services: starting PostgreSQL" >&2
    for version in $(ls /etc/postgresql); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
fi
pg_up || { echo "services: PostgreSQL is not accepting connections on 127.0.0.1:5432" >&2; exit 1; }
echo "services: PostgreSQL up" >&2

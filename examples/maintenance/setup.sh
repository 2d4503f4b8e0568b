#!/usr/bin/env bash
# Make what examples/maintenance's plan maintains, on this machine: a PostgreSQL database with
# tables (and the roles a password rotation alternates), a Redis cache's keys, log files, a
# PostgreSQL dump and a files backup with their manifests, a desired-state checkout for the drift
# audit, an app to scan, and a TLS certificate that is due (10 days left).
#
#   examples/maintenance/setup.sh            # create what is missing; back up again (the nightly job)
#   examples/maintenance/setup.sh --pebble   # ... and start pebble (ACME test CA) on 127.0.0.1:14000
#   examples/maintenance/setup.sh --stop-pebble
#   examples/maintenance/setup.sh --fresh    # drop the database, roles and directory first
#   examples/maintenance/setup.sh --remove   # drop and remove everything it made, and stop
#
# Idempotent: what exists is kept (a renewed certificate, a rotated password, rotated logs); only
# the backups are written anew on every run, as the nightly backup job would.
# Where (environment):
#   MAINTD_EXAMPLE_DIR  base directory       (default /var/tmp/maintd-example)
#   MAINTD_EXAMPLE_DB   database, and prefix of its roles (default maintd_example)
#   PGHOST PGPORT PGUSER  the PostgreSQL server and a superuser (default 127.0.0.1 5432 postgres)
#   REDIS_HOST REDIS_PORT (default 127.0.0.1 6379)
#   MAINTD              the maintd command (default: maintd on PATH, else python3 -m maintd)
# The plan's files name the defaults: change them there too when you change them here.
set -euo pipefail

BASE=${MAINTD_EXAMPLE_DIR:-/var/tmp/maintd-example}
DB=${MAINTD_EXAMPLE_DB:-maintd_example}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
# Pebble's fixed example ports: ACME directory, management, http-01 and tls-alpn-01 validation.
PEBBLE_ACME=14000 PEBBLE_MANAGEMENT=15000 PEBBLE_HTTP=5002 PEBBLE_TLS=5001

if [[ -n ${MAINTD:-} ]]; then
    read -r -a maintd <<<"$MAINTD"
elif command -v maintd >/dev/null; then
    maintd=(maintd)
else
    maintd=(python3 -m maintd)
fi

pebble=no fresh=no stop_pebble=no remove=no
for arg in "$@"; do
    case $arg in
        --pebble) pebble=yes ;;
        --stop-pebble) stop_pebble=yes ;;
        --fresh) fresh=yes ;;
        --remove) fresh=yes remove=yes ;;
        -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "setup.sh: MAINTD_EXAMPLE_DB must be a plain lower-case name" >&2; exit 2; }
[[ $BASE == /* ]] || { echo "setup.sh: MAINTD_EXAMPLE_DIR must be absolute" >&2; exit 2; }

say() { echo "setup: $*" >&2; }
psql_() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

stop_pebble_now() {
    local pid_file=$BASE/pebble/pebble.pid
    if [[ -s $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        say "stopping pebble (pid $(cat "$pid_file"))"
        kill "$(cat "$pid_file")"
    fi
    rm -f "$pid_file"
}

if [[ $stop_pebble == yes ]]; then
    stop_pebble_now
    exit 0
fi

if [[ $fresh == yes ]]; then
    stop_pebble_now
    say "dropping database $DB, its scratch databases and roles; removing $BASE"
    for name in "$DB" "${DB}_verify" "${DB}_dr"; do
        psql_ -d postgres -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)"
    done
    for role in "${DB}_blue" "${DB}_green" "${DB}_app"; do
        psql_ -d postgres -c "DROP ROLE IF EXISTS \"$role\""
    done
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n 0 --scan --pattern "$DB:*" \
        | xargs -r redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n 0 del >/dev/null
    rm -rf "$BASE"
    [[ $remove == no ]] || exit 0
fi

# --- directories: readable by the postgres user, whose server programs the DR drill runs -------
mkdir -p "$BASE"/{logs,backups/files,etc/cron.d,desired/etc/cron.d,app/src,tls,reports,pebble}
chmod 0755 "$BASE"

# --- PostgreSQL: the database, its tables and the two alternating login roles ------------------
if [[ -z $(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'") ]]; then
    say "creating database $DB"
    psql_ -d postgres -c "CREATE DATABASE \"$DB\""
fi
if [[ -z $(psql_ -d "$DB" -c "SELECT 1 FROM pg_class WHERE relname = 'orders' AND relkind = 'r'") ]]; then
    say "creating tables customers and orders (with dead tuples: autovacuum is off for orders)"
    psql_ -d "$DB" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pgstattuple;
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, joined timestamptz NOT NULL);
INSERT INTO customers (name, joined)
  SELECT 'customer ' || i, timestamptz '2026-01-01 00:00+00' + i * interval '1 hour'
  FROM generate_series(1, 500) i;
-- a table autovacuum does not keep up with: the weekly upkeep's VACUUM has work to do
CREATE TABLE orders (id serial PRIMARY KEY, customer int NOT NULL REFERENCES customers,
                     amount numeric(10, 2) NOT NULL, note text NOT NULL)
  WITH (autovacuum_enabled = false);
CREATE INDEX orders_customer ON orders (customer);
INSERT INTO orders (customer, amount, note)
  SELECT 1 + i % 500, i * 0.25, 'order ' || i || ' ' || repeat('x', 40) FROM generate_series(1, 20000) i;
DELETE FROM orders WHERE id % 5 < 2;
SQL
fi
app=${DB}_app blue=${DB}_blue green=${DB}_green
psql_ -d "$DB" <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$app') THEN CREATE ROLE "$app" NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$blue') THEN CREATE ROLE "$blue" LOGIN IN ROLE "$app"; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$green') THEN CREATE ROLE "$green" NOLOGIN IN ROLE "$app"; END IF;
END
\$\$;
GRANT SELECT, INSERT, UPDATE, DELETE ON customers, orders TO "$app";
SQL
if [[ ! -e $BASE/etc/db.env ]]; then
    say "writing $BASE/etc/db.env (the app's credentials: $blue)"
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
    # on stdin, not in an argument list every user's ps can read
    psql_ -d postgres <<<"ALTER ROLE \"$blue\" LOGIN PASSWORD '$password'"
    (umask 077 && printf 'PGHOST=%s\nPGPORT=%s\nPGDATABASE=%s\nPGUSER=%s\nPGPASSWORD=%s\n' \
        "$PGHOST" "$PGPORT" "$DB" "$blue" "$password" >"$BASE/etc/db.env")
fi

# --- Redis: cache entries with a TTL, as an application would leave them -----------------------
say "writing 200 cache keys $DB:session:* (TTL 1 day) to Redis $REDIS_HOST:$REDIS_PORT db 0"
for i in $(seq 1 200); do
    echo "SET $DB:session:$i value-$i EX 86400"
done | redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n 0 >/dev/null

# --- logs: live logs and rotated generations of several ages -----------------------------------
ago() { date -u -d "-$1 days" +%Y%m%d; }
old_log() {  # NAME DAYS: a rotated generation last written DAYS ago
    local file=$BASE/logs/$1-$(ago "$2")
    if [[ ! -e $file && ! -e $file.zst && ! -e $BASE/logs/archive/${file##*/}.zst ]]; then
        seq 1 2000 | sed "s/^/$1: line /" >"$file"
        touch -d "-$2 days" "$file"
    fi
}
[[ -s $BASE/logs/app.log ]] || printf 'app started\nGET /health 200\n' >"$BASE/logs/app.log"
[[ -s $BASE/logs/audit.log ]] || printf 'user ada logged in\n' >"$BASE/logs/audit.log"
old_log app.log 3     # kept as it is
old_log app.log 45    # compressed (older than compress_after 30d)
old_log app.log 120   # deleted (older than maxage 90d)
old_log audit.log 200 # held: legal hold on audit logs

# --- configuration: what is deployed, and the desired state in a git checkout -----------------
app_yaml='listen: 127.0.0.1:8080
database_env: /etc/app/db.env
workers: 4
'
for dir in "$BASE/etc" "$BASE/desired/etc"; do
    [[ -e $dir/app.yaml ]] || printf '%s' "$app_yaml" >"$dir/app.yaml"
    for job in backup logrotate; do
        [[ -e $dir/cron.d/$job ]] || echo "0 4 * * * root /usr/local/bin/$job" >"$dir/cron.d/$job"
    done
done
chmod 0640 "$BASE/etc/app.yaml"
if [[ ! -d $BASE/desired/.git ]]; then
    git -C "$BASE/desired" init -q
    git -C "$BASE/desired" add -A
    git -C "$BASE/desired" -c user.name=maintd-example -c user.email=sre@example.test \
        commit -q -m "the desired configuration"
fi

# --- an application to scan: pinned dependencies, an offline OSV feed, its code ----------------
[[ -e $BASE/app/requirements.lock ]] || printf 'jinja2==3.1.2\nrequests==2.32.3\n' >"$BASE/app/requirements.lock"
[[ -e $BASE/app/osv.json ]] || cat >"$BASE/app/osv.json" <<'JSON'
[{"id": "GHSA-h5c8-rqwp-cp95", "summary": "Jinja2 vulnerable to HTML attribute injection with xmlattr",
  "aliases": ["CVE-2024-22195"], "database_specific": {"severity": "MODERATE"},
  "affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.3"}]}]}]}]
JSON
[[ -e $BASE/app/src/app.py ]] || cat >"$BASE/app/src/app.py" <<'PY'
import json
import sys


def main() -> int:
    print(json.dumps({"status": "ok", "args": sys.argv[1:]}))
    return 0
PY

# --- backups (the nightly job): a pg_dump with its table manifest, a files backup --------------
say "backing up $DB to $BASE/backups/$DB.dump (and its table manifest)"
"${maintd[@]}" backup pg-manifest "host=$PGHOST port=$PGPORT dbname=$DB user=$PGUSER" \
    --dump "$BASE/backups/$DB.dump" -o "$BASE/backups/$DB.manifest.json" >/dev/null
say "backing up $BASE/etc (no secrets) to $BASE/backups/files (and its manifest)"
rm -rf "$BASE/backups/files/etc"
mkdir -p "$BASE/backups/files/etc" "$BASE/backups/files/volumes"
cp -a "$BASE/etc/app.yaml" "$BASE/etc/cron.d" "$BASE/backups/files/etc/"
[[ -e $BASE/backups/files/volumes/pv-0.img ]] || head -c 1048576 /dev/urandom >"$BASE/backups/files/volumes/pv-0.img"
"${maintd[@]}" backup manifest "$BASE/backups/files" -o "$BASE/backups/files/MANIFEST.json" >/dev/null

# --- TLS: a certificate that is due (10 days left), renewed through ACME by the monthly task ---
if [[ ! -e $BASE/tls/fullchain.pem ]]; then
    say "making a self-signed certificate for maintd-example.test, valid 10 days"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 \
        -subj /CN=www.maintd-example.test \
        -addext "subjectAltName=DNS:www.maintd-example.test,DNS:maintd-example.test" \
        -keyout "$BASE/tls/privkey.pem" -out "$BASE/tls/fullchain.pem" 2>/dev/null
    chmod 0600 "$BASE/tls/privkey.pem"
fi

# --- pebble, only when asked: the ACME test CA the certificate renewal talks to ----------------
if [[ $pebble == yes ]]; then
    dir=$BASE/pebble
    if [[ ! -e $dir/ca.pem ]]; then
        # pebble ships no HTTPS certificate of its own: a throwaway CA makes one for 127.0.0.1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=pebble HTTPS example CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout "$dir/pebble-key.pem" -out "$dir/pebble.csr" 2>/dev/null
        openssl x509 -req -in "$dir/pebble.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
            -days 30 -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n') \
            -out "$dir/pebble-cert.pem" 2>/dev/null
    fi
    cat >"$dir/pebble-config.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$PEBBLE_ACME", "managementListenAddress": "127.0.0.1:$PEBBLE_MANAGEMENT",
            "certificate": "$dir/pebble-cert.pem", "privateKey": "$dir/pebble-key.pem",
            "httpPort": $PEBBLE_HTTP, "tlsPort": $PEBBLE_TLS, "ocspResponderURL": "",
            "externalAccountBindingRequired": false}}
JSON
    if [[ -s $dir/pebble.pid ]] && kill -0 "$(cat "$dir/pebble.pid")" 2>/dev/null; then
        say "pebble already running (pid $(cat "$dir/pebble.pid"))"
    else
        say "starting pebble on https://127.0.0.1:$PEBBLE_ACME/dir (every challenge accepted)"
        # PEBBLE_VA_ALWAYS_VALID: the example's names resolve nowhere, so no real http-01 fetch
        PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
            setsid pebble -config "$dir/pebble-config.json" >"$dir/pebble.log" 2>&1 </dev/null &
        echo $! >"$dir/pebble.pid"
        for _ in $(seq 1 150); do
            curl -fsS --cacert "$dir/ca.pem" "https://127.0.0.1:$PEBBLE_ACME/dir" >/dev/null 2>&1 && break
            kill -0 "$(cat "$dir/pebble.pid")" 2>/dev/null || { tail "$dir/pebble.log" >&2; exit 1; }
            sleep 0.1
        done
        curl -fsS --cacert "$dir/ca.pem" "https://127.0.0.1:$PEBBLE_ACME/dir" >/dev/null \
            || { echo "setup.sh: pebble did not answer within 15s" >&2; tail "$dir/pebble.log" >&2; exit 1; }
    fi
fi

say "ready: $BASE, database $DB"

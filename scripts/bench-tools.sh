#!/usr/bin/env bash
# Install the peer tools the benchmarks compare against (Debian packages), idempotently:
# nginx (the probe target), blackbox_exporter (http-probe), b3sum (backup-verify), logrotate
# (logs). Alertmanager, the Monitoring Plugins, zstd and PostgreSQL (pgbench) come with
# scripts/services.sh, which `make bench` runs first. Installed, not started: each benchmark
# starts its own on free ports.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || missing+=(prometheus-blackbox-exporter)
command -v b3sum >/dev/null 2>&1 || missing+=(b3sum)
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing+=(logrotate)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench-tools: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts nginx as a service on port 80 when it installs it; the benchmarks start their own.
    if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
fi

#!/usr/bin/env bash
# The tests start their own throwaway PostgreSQL cluster from the installed server binaries (initdb, pg_ctl).
# Install Debian's postgresql package when they are missing; the cluster itself is never left running.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL server binaries (initdb) are missing: install Debian's 'postgresql' package (needs root)." >&2
  exit 1
fi
echo "installing PostgreSQL server binaries (Debian package 'postgresql')"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# Debian's package starts a cluster of its own; the tests do not use it.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  for cluster in /etc/postgresql/*/main; do
    [ -d "$cluster" ] && pg_ctlcluster "$(basename "$(dirname "$cluster")")" main stop >/dev/null 2>&1 || true
  done
fi

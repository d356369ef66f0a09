#!/usr/bin/env bash
# Stop the node started by start.sh: SIGTERM, wait up to CASSANDRA_STOP_TIMEOUT (default 30) s,
# then SIGKILL. With --wipe, also remove its data (keeps the jars in .cassandra/lib).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="${CASSANDRA_DIR:-$root/.cassandra}"
pidfile="$state/cassandra.pid"
timeout="${CASSANDRA_STOP_TIMEOUT:-30}"
wipe=no
for arg in "$@"; do
  case "$arg" in
    --wipe) wipe=yes ;;
    -h|--help) echo "usage: $0 [--wipe]"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if [[ -f "$pidfile" ]]; then
  pid="$(cat "$pidfile")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    echo "stopping cassandra (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "still running after $timeout s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    echo "cassandra stopped"
  else
    echo "cassandra not running (stale pid file)"
  fi
  rm -f "$pidfile"
else
  echo "cassandra not running (no pid file)"
fi

if [[ "$wipe" == yes ]]; then
  echo "wiping $state/data, $state/log, $state/tmp"
  rm -rf "$state/data" "$state/log" "$state/tmp" "$state/conf"
fi

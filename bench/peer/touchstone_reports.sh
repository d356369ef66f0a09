#!/usr/bin/env bash
# Touchstone's side of the peer comparison: imports DATA_DIR into a fresh `touchstone dev`
# server and writes OUT_DIR/<tenant>.campaigns.json and OUT_DIR/<tenant>.goals.json (whole
# period: no --from/--to) for every tenant of config.json, for bench/peer/compare.py.
#
#   bench/peer/touchstone_reports.sh DATA_DIR OUT_DIR [PORT]
#
# TOUCHSTONE names the binary (default: target/release/touchstone of this repository).
set -uo pipefail
DATA=${1:?usage: touchstone_reports.sh DATA_DIR OUT_DIR [PORT]}
OUT=${2:?usage: touchstone_reports.sh DATA_DIR OUT_DIR [PORT]}
PORT=${3:-51234}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=${TOUCHSTONE:-$ROOT/target/release/touchstone}
STORE=$(mktemp -d)
SERVER=http://127.0.0.1:$PORT
mkdir -p "$OUT"

"$T" dev --listen "127.0.0.1:$PORT" --data-dir "$STORE" >"$STORE.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$STORE" "$STORE.log"' EXIT
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

"$T" import config "$DATA/config.json" --server "$SERVER" || exit 1
# Rejected lines make an import exit non-zero; they are reported and the rest is imported.
"$T" import messages "$DATA/messages.jsonl" --server "$SERVER"
start=$EPOCHREALTIME
"$T" import records "$DATA/records.jsonl" --server "$SERVER" --wait
awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "import records --wait: %.2f s\n", b - a }' >&2
for tenant in $(python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["tenants"]))' "$DATA/config.json"); do
    "$T" report campaigns --tenant "$tenant" --format json --server "$SERVER" >"$OUT/$tenant.campaigns.json" || exit 1
    "$T" report goals --tenant "$tenant" --format json --server "$SERVER" >"$OUT/$tenant.goals.json" || exit 1
done

#!/usr/bin/env bash
# `make run`: build touchstone, generate example data, start `touchstone dev` on the embedded
# store, load the data, print two reports, and keep the server running until Ctrl-C.
#
# Environment:
#   PORT                    gRPC port to listen on (default 50051)
#   HTTP_PORT               port of the web console (default 8080)
#   TOUCHSTONE_EXAMPLE_DIR  folder for the data, the store and the server log
#                           (default ./touchstone-example)
set -euo pipefail

PORT="${PORT:-50051}"
HTTP_PORT="${HTTP_PORT:-8080}"
EXAMPLE_DIR="${TOUCHSTONE_EXAMPLE_DIR:-./touchstone-example}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

mkdir -p "$EXAMPLE_DIR"
# Absolute, so that it stays right after the `cd` below.
EXAMPLE_DIR="$(cd "$EXAMPLE_DIR" && pwd)"
DATA="$EXAMPLE_DIR/data"
STORE="$EXAMPLE_DIR/store"
LOG="$EXAMPLE_DIR/server.log"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/touchstone"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_in_use() {
    # Connecting succeeds only if something listens there; bash's /dev/tcp needs no extra tool.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
# Ctrl-C or SIGTERM: stop the server cleanly (it finishes its current attribution step).
on_signal() {
    printf '\nstopping touchstone dev\n'
    stop_server
    exit 130
}
trap on_signal INT TERM
# Any failure before the final wait: do not leave a server behind.
trap stop_server EXIT

step "building touchstone (cargo build --release --locked -p touchstone)"
command -v cargo >/dev/null || fail "cargo not found: install a Rust toolchain (https://rustup.rs)"
cargo build --release --locked -p touchstone
[[ -x "$BIN" ]] || fail "built, but $BIN is missing (is CARGO_TARGET_DIR set to a relative path?)"

step "generating example data in $DATA"
"$BIN" gen --scale 1 --seed 1 "$DATA"

if port_in_use "$PORT"; then
    fail "port $PORT on 127.0.0.1 is already in use (another touchstone dev?). Stop it, or pick another port: PORT=50052 make run"
fi
if port_in_use "$HTTP_PORT"; then
    fail "port $HTTP_PORT on 127.0.0.1 (the console) is already in use. Pick another: HTTP_PORT=8081 make run"
fi

step "starting touchstone dev on 127.0.0.1:$PORT (fresh store in $STORE)"
rm -rf "$STORE"
"$BIN" dev --listen "127.0.0.1:$PORT" --data-dir "$STORE" --http "127.0.0.1:$HTTP_PORT" >"$LOG" 2>&1 &
SERVER_PID=$!

# Its first stdout line says where it listens; give it about 30 s.
URL=""
for _ in $(seq 1 300); do
    URL="$(sed -n 's/^touchstone dev listening on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)"
    [[ -n "$URL" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        SERVER_PID=""
        printf -- '--- %s ---\n' "$LOG" >&2
        cat "$LOG" >&2
        if grep -qi 'in use' "$LOG"; then
            fail "touchstone dev could not listen: port $PORT is already in use. Pick another: PORT=50052 make run"
        fi
        fail "touchstone dev exited before it started listening (log above)"
    fi
    sleep 0.1
done
if [[ -z "$URL" ]]; then
    printf -- '--- %s ---\n' "$LOG" >&2
    cat "$LOG" >&2
    fail "touchstone dev did not report listening within 30 s (log above)"
fi
echo "listening on $URL (log: $LOG)"
CONSOLE="$(sed -n 's/^console on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)"

step "importing config, messages and records"
"$BIN" import config "$DATA/config.json" --server "$URL"
"$BIN" import messages "$DATA/messages.jsonl" --server "$URL"
# --wait: return only once attribution has processed everything imported.
"$BIN" import records "$DATA/records.jsonl" --server "$URL" --wait

step "campaigns of acme-shop, all time"
"$BIN" report campaigns --tenant acme-shop --format table --server "$URL"

step "goals of acme-shop, all time"
"$BIN" report goals --tenant acme-shop --format table --server "$URL"

HOSTPORT="${URL#http://}"
cat <<EOF

touchstone dev keeps running at $URL (store: $STORE, log: $LOG).

  Web console: ${CONSOLE:-http://127.0.0.1:$HTTP_PORT/}

Tenants: acme-shop, streamly, fitclub. In another terminal, try:

  $BIN report messages --tenant streamly --format json --server $URL
  $BIN report campaigns --tenant fitclub --from 1767778200250 --to 1768392045500 --format csv --server $URL
  grpcurl -plaintext $HOSTPORT list

Press Ctrl-C to stop it.
EOF

status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
if [[ "$status" -eq 0 ]]; then
    echo "touchstone dev stopped"
else
    echo "touchstone dev exited with status $status; see $LOG" >&2
fi
exit "$status"

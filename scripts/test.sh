#!/usr/bin/env bash
# `make test`: every test of the workspace, the CQL ones included.
#
# The CQL conformance suite and the separate-process integration test need a CQL engine.
# With TOUCHSTONE_SCYLLA_NODES set (host:port,...), they run against that ScyllaDB. Otherwise
# this script starts Apache Cassandra 5 from Maven Central jars on loopback
# (deploy/cassandra/start.sh, on ports of its own so a node on 9042 is left alone) and stops
# it afterwards, keeping its jars for next time. A CQL test that finds no engine fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# A CI machine builds once from scratch: incremental caches would only take disk.
if [[ -n "${CI:-}" ]]; then export CARGO_INCREMENTAL=0; fi

if [[ -z "${TOUCHSTONE_SCYLLA_NODES:-}" ]]; then
  export CASSANDRA_PORT="${CASSANDRA_PORT:-19042}"
  export CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-17000}"
  export CASSANDRA_DIR="${CASSANDRA_DIR:-$PWD/.cassandra}"
  export CASSANDRA_HEAP="${CASSANDRA_HEAP:-1g}"
  # Fresh data each run: the tests make their own keyspaces, old ones only slow start-up.
  deploy/cassandra/stop.sh --wipe >/dev/null 2>&1 || true
  trap 'deploy/cassandra/stop.sh --wipe >/dev/null 2>&1 || true' EXIT
  # Start it in the background while cargo builds: both take a while.
  deploy/cassandra/start.sh > "${TMPDIR:-/tmp}/touchstone-cassandra-start.log" 2>&1 &
  starting=$!
  cargo test --workspace --locked --no-run
  # The integration tests run the `touchstone` binary; built here, its build time is not
  # charged to whichever test happens to call it first.
  cargo build --locked -p touchstone
  if ! wait "$starting"; then
    cat "${TMPDIR:-/tmp}/touchstone-cassandra-start.log" >&2
    echo "test.sh: Cassandra did not start" >&2
    exit 1
  fi
  export TOUCHSTONE_CASSANDRA_NODES="127.0.0.1:$CASSANDRA_PORT"
  # How the storage-restart test takes the database away and brings it back (its data kept).
  export TOUCHSTONE_CQL_STOP="$PWD/deploy/cassandra/stop.sh"
  export TOUCHSTONE_CQL_START="$PWD/deploy/cassandra/start.sh"
fi
cargo test --workspace --locked "$@"

#!/usr/bin/env bash
# `make bench`: builds the release binary and the benchmark, makes a Python venv with DuckDB
# for the peer (bench/peer/requirements.txt, from PyPI), and runs every section. Arguments go
# to the benchmark (`make bench ARGS="--only ingest"`); sizes come from BENCH_* variables,
# see `target/release/touchstone-bench --help`. Datasets and results stay in .bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p touchstone -p touchstone-bench

venv=.bench/venv
if ! "$venv/bin/python" -c 'import duckdb, cassandra' 2>/dev/null; then
  mkdir -p .bench
  python3 -m venv "$venv"
  # DuckDB for the peer; cassandra-driver for the CQL section's counts (bench/tools).
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/peer/requirements.txt -r bench/tools/requirements.txt
fi

export TOUCHSTONE_BIN="$PWD/target/release/touchstone"
export BENCH_PYTHON="$PWD/$venv/bin/python"
exec target/release/touchstone-bench "$@"

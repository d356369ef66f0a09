# The two commands a newcomer needs: `make run` and `make test`.
.DEFAULT_GOAL := help
.PHONY: help run test bench build lint

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-6s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## Build, start touchstone dev with example data loaded, print reports (PORT=50051)
	./scripts/run-example.sh

test: ## Run every test, CQL ones on a Cassandra 5 started for the run (or TOUCHSTONE_SCYLLA_NODES)
	./scripts/test.sh

bench: ## Benchmarks beside DuckDB: throughput, lag, query latency, RSS (figures in BENCHMARKS.md)
	./scripts/bench.sh $(ARGS)

build: ## Release build of every crate (the binary: target/release/touchstone)
	cargo build --release --locked

lint: ## Clippy over every crate and test, warnings as errors
	cargo clippy --workspace --all-targets --locked -- -D warnings

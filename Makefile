# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test build bench

build:
	cargo build --release

test:
	cargo test --workspace --locked

run: build
	./scripts/run-example.sh

# One place for the project's commands. `make check` is what CI runs.
.PHONY: check test fmt lint cometbft devnet bench

check: fmt lint test

cometbft:
	@./scripts/install-cometbft.sh >/dev/null

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: cometbft
	DSTORAGE_COMETBFT="$$(./scripts/install-cometbft.sh)" cargo test --workspace --locked

devnet: cometbft
	cargo run --release --locked --bin dstorage -- devnet

bench:
	cargo bench --workspace --locked

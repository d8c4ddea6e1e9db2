# One place for the project's commands. `make check` is what CI runs (through .ci/run).
.PHONY: check test fmt lint deps test-deps devnet bench fuzz-sql

check: fmt lint test

# libclang and CometBFT (and, for tests, the signature cross-check venv); a no-op when present.
deps:
	@./scripts/install-deps.sh

test-deps:
	@./scripts/install-deps.sh --tests

fmt:
	cargo fmt --all -- --check

lint: deps
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: test-deps
	DSTORAGE_COMETBFT="$$(./scripts/install-cometbft.sh)" cargo test --workspace --locked

devnet: deps
	cargo run --release --locked --bin dstorage -- devnet

bench: deps
	cargo bench --workspace --locked

# Time-bounded cargo-fuzz run of the SQL rules target (the nightly toolchain; cargo-fuzz is
# installed from crates.io when missing; see docs/sql.md, "Adversarial campaign"). Not part
# of `make check`: CI runs its stable twin test instead.
# FUZZ_ARGS="-fork=1 -ignore_crashes=1" keeps going after a crash, collecting every class.
# The nightly is pinned so a new nightly cannot turn CI red; rustup fetches it when missing.
SECONDS ?= 60
FUZZ_ARGS ?=
FUZZ_TOOLCHAIN ?= nightly-2026-05-20
fuzz-sql:
	@rustup run $(FUZZ_TOOLCHAIN) rustc --version >/dev/null 2>&1 || rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	mkdir -p crates/dstorage-sql/fuzz/corpus/sql_rules
	cd crates/dstorage-sql/fuzz && cargo +$(FUZZ_TOOLCHAIN) fuzz run sql_rules corpus/sql_rules seeds/sql_rules -- \
		-max_total_time=$(SECONDS) -dict=sql.dict -max_len=2048 $(FUZZ_ARGS)

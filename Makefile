# Developer entry points. Everything local installs into .local/ (git-ignored) via scripts/install.sh.
.PHONY: install test demo lint bench

install:
	bash scripts/install.sh

# The project's test command: all workspace tests against DynamoDB Local, moto and gradient-sim.
test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

lint: install
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	.local/venv/bin/cfn-lint template.yaml

bench:
	bash scripts/stack.sh cargo run --release -p psa-tests --bin bench

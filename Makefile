# Developer entry points. Everything local installs into .local/ (git-ignored) via scripts/install.sh.
.PHONY: install test demo serve lint bench capacity schedule-bench package startup

install:
	bash scripts/install.sh

# The project's test command: all workspace tests against DynamoDB Local, moto and gradient-sim.
test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

# The API on http://127.0.0.1:8080 (a local HTTP front, LOCAL ONLY: unsigned JWTs) over a fresh
# local stack, with a sample MSP; prints curl examples. `make serve ARGS="--port 9090"`.
serve:
	bash scripts/serve.sh $(ARGS)

lint: install
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	python3 scripts/module-cycles.py
	.local/venv/bin/cfn-lint template.yaml

# The worker binary is measured from outside, as its own process: build it beside the bench.
bench:
	cargo build --release -p sync-worker -p devtools --bin sync-worker --bin bench
	bash scripts/stack.sh target/release/bench

# The capacity model by simulation (docs/capacity.md): calls per day against the budget for the
# synthetic population, same-day vs staggered vs budgeted full resends. No servers. Settings by
# environment, e.g. `make capacity MSPS=2000 DAILY=1`.
capacity:
	cargo run --release -q -p devtools --bin capacity

# The scheduler over 10,000 connected connectors on the local stack: time per 1,000.
schedule-bench:
	bash scripts/test.sh -p psa-tests --test it -- --ignored --nocapture schedule::bench

# One zip per function (cargo-lambda + zig from PyPI into .local/venv), sizes printed; goal <= 6 MB.
# `make package ARGS=--x86-64` for x86_64 (default arm64, the template's Architectures).
package:
	bash scripts/package.sh $(ARGS)

# Init time and peak RSS per function (release build) beside a minimal Python + boto3 function.
startup:
	bash scripts/startup.sh $(ARGS)

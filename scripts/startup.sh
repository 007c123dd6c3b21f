#!/usr/bin/env bash
# scripts/startup.sh [--reps N]
# Init time and peak RSS of each function (the x86_64 release build cargo-lambda makes for
# `make package`, i.e. what ships) beside a minimal Python + boto3 function, each started cold
# against the Lambda Runtime API emulator over a fresh local stack. Prints a table.
# See tests/src/bin/startup.rs for what is measured and how.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
INSTALL_PACKAGING=1 bash scripts/install.sh
export PATH="$ROOT/.local/venv/bin:$PATH"
cargo lambda build --release --x86-64 --bin connectors-api --bin sync-on-demand \
  --bin sync-scheduled --bin sync-worker
exec scripts/stack.sh cargo run -q -p psa-tests --bin startup -- \
  --bins "${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-gnu/release" "$@"

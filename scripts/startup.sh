#!/usr/bin/env bash
# scripts/startup.sh [--reps N]
# Init time and peak RSS of each function (the x86_64 release build cargo-lambda makes for
# `make package`, i.e. what ships) beside a minimal Python + boto3 function, each started cold
# against the Lambda Runtime API emulator over a fresh local stack. Prints a table.
# See tools/devtools/src/bin/startup.rs for what is measured and how.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
INSTALL_PACKAGING=1 bash scripts/install.sh
export PATH="$ROOT/.local/venv/bin:$PATH"
cargo lambda build --release --x86-64 --bin connectors-api --bin sync-on-demand \
  --bin sync-scheduled --bin sync-worker
# The measuring harness is a debug binary of devtools, built with the workspace's package
# selection like scripts/test.sh (so features unify the same way and nothing is rebuilt).
cargo build --workspace --bins
target="${CARGO_TARGET_DIR:-$ROOT/target}"
# cargo-lambda leaves each binary as target/lambda/<function>/bootstrap (x86_64 now).
exec scripts/stack.sh "$target/debug/startup" --bins "$target/lambda" "$@"

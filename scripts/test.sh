#!/usr/bin/env bash
# The project's test command: every workspace test against a fresh local stack.
# Extra arguments go to cargo test, e.g. `scripts/test.sh -p devkit`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scope=(--workspace)
for a in "$@"; do
  case $a in
    -p | -p* | --package | --package=*) scope=() ;; # a package selection narrows the run
    --) break ;;
  esac
done
# The function binaries, which tests/tests/trace_leak.rs runs as child processes. Always the whole
# workspace (the package selection of `cargo test --workspace`, so features unify the same way and
# nothing is rebuilt), also when a -p selection narrows the test run.
(cd "$ROOT" && cargo build --workspace --bins)
exec "$ROOT/scripts/stack.sh" cargo test --no-fail-fast "${scope[@]}" "$@"

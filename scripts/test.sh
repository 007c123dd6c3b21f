#!/usr/bin/env bash
# The project's test command: every workspace test against a fresh local stack.
# Extra arguments go to cargo test, e.g. `scripts/test.sh -p devkit`.
set -euo pipefail
scope=(--workspace)
for a in "$@"; do
  case $a in
    -p | -p* | --package | --package=*) scope=() ;; # a package selection narrows the run
    --) break ;;
  esac
done
exec "$(dirname "${BASH_SOURCE[0]}")/stack.sh" cargo test --no-fail-fast "${scope[@]}" "$@"

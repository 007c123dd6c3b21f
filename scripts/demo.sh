#!/usr/bin/env bash
# The demo (tools/devtools, binary `demo`) against a fresh local stack.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/stack.sh" cargo run -q -p devtools --bin demo "$@"

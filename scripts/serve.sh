#!/usr/bin/env bash
# `make serve`: the API on a local HTTP front (tools/devtools/src/bin/serve.rs) over a fresh
# local stack, with a sample MSP to curl. LOCAL ONLY (unsigned JWTs). Arguments go to the binary,
# e.g. `scripts/serve.sh --port 9090 --children 30 --cooldown 300`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The same package selection as scripts/test.sh, so nothing is rebuilt between the two.
(cd "$ROOT" && cargo build -q --workspace --bins)
exec "$ROOT/scripts/stack.sh" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/serve" "$@"

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
# The function binaries, which tests/tests/it/trace_leak.rs runs as child processes. Always the whole
# workspace (the package selection of `cargo test --workspace`, so features unify the same way and
# nothing is rebuilt), also when a -p selection narrows the test run.
(cd "$ROOT" && cargo build --workspace --bins)
# The full run also validates the SAM template (SAM's transform, then cfn-lint over the result;
# offline, no credentials, ~5 s). Installed by install.sh (aws-sam-cli, pinned).
if ((${#scope[@]})); then
  bash "$ROOT/scripts/install.sh"
  (cd "$ROOT" && SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true \
    .local/venv/bin/sam validate --lint --template template.yaml --region us-east-1)
fi
exec "$ROOT/scripts/stack.sh" cargo test --no-fail-fast "${scope[@]}" "$@"

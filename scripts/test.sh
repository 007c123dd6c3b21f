#!/usr/bin/env bash
# The project's test command: every workspace test against a fresh local stack.
# Extra arguments go to cargo test, e.g. `scripts/test.sh -p devkit`.
#
# The integration tests are one binary (tests/tests/it) whose tests wait mostly on the local
# servers, the simulator's latency and deadlines, not on the CPU: they share a pool of
# IT_TEST_THREADS test threads (default 4; measured in docs/operations.md). Every other test binary
# keeps cargo's default (one thread per core).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IT_TEST_THREADS="${IT_TEST_THREADS:-4}"
scope=(--workspace)
for a in "$@"; do
  case $a in
    -p | -p* | --package | --package=*) scope=() ;; # a package selection narrows the run
    --) break ;;
  esac
done
# The function binaries, which tests/tests/it/{trace_leak,observability,wiring}.rs run as child
# processes (the simulator's binary is stack.sh's), built in one go with every test target:
# `--tests` turns the dev-dependencies on as `cargo test` does (the domain's tokio `test-util`),
# so features unify the same way, the binaries and the tests share every dependency, and the
# `cargo test` runs below build nothing (a plain `cargo build --bins` would build tokio and all
# that depends on it, the AWS SDK included, a second time: ~2 min on 2 cores). Always with the
# whole workspace's selection, also when a -p selection narrows the test run; the tools'
# binaries are not needed.
functions=(connectors-api sync-on-demand sync-scheduled sync-worker sync-notifier)
(cd "$ROOT" && cargo build --workspace --tests "${functions[@]/#/--bin=}")
# The full run also validates the SAM template (SAM's transform, then cfn-lint over the result;
# offline, no credentials, ~5 s). Installed by install.sh (aws-sam-cli, pinned).
if ((${#scope[@]})); then
  bash "$ROOT/scripts/install.sh"
  (cd "$ROOT" && SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true \
    .local/venv/bin/sam validate --lint --template template.yaml --region us-east-1)
  # Two runs on one stack, both with the whole workspace selected (nothing is rebuilt between
  # them): every test binary but the integration tests, then those with their thread pool.
  # --no-fail-fast: the second runs whatever the first found; the exit code is the worse one.
  exec "$ROOT/scripts/stack.sh" bash -c '
    rc=0
    cargo test --no-fail-fast --workspace --exclude psa-tests "$@" || rc=$?
    RUST_TEST_THREADS="${RUST_TEST_THREADS:-'"$IT_TEST_THREADS"'}" \
      cargo test --no-fail-fast --workspace --test it "$@" || rc=$?
    exit "$rc"' test.sh "$@"
fi
exec "$ROOT/scripts/stack.sh" cargo test --no-fail-fast "$@"

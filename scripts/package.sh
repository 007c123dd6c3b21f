#!/usr/bin/env bash
# scripts/package.sh [--arm64|--x86-64]
# Builds the five Lambda functions with cargo-lambda (zig-linked against glibc 2.30, not this
# machine's glibc, so the binaries run on provided.al2023) and writes one zip per function,
# `bootstrap` inside, to target/lambda/<function>/bootstrap.zip; prints binary and zip sizes.
# Default arm64 (the template's Architectures; cargo-lambda adds the aarch64 std with rustup
# the first time); --x86-64 for x86_64.
# Installs cargo-lambda and zig from PyPI into .local/venv first (INSTALL_PACKAGING=1 install.sh).
# The deploy profile is [profile.release] of Cargo.toml (measured there).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
arch=--arm64
case ${1:-} in
  --arm64 | --x86-64) arch=$1 ;;
  "") ;;
  *) echo "usage: scripts/package.sh [--arm64|--x86-64]" >&2; exit 2 ;;
esac
FUNCTIONS=(connectors-api sync-on-demand sync-scheduled sync-worker sync-notifier)
LIMIT_MB=${PACKAGE_LIMIT_MB:-6}

INSTALL_PACKAGING=1 bash scripts/install.sh
export PATH="$ROOT/.local/venv/bin:$PATH" # cargo-lambda, and python-zig for cargo-zigbuild

bins=()
for f in "${FUNCTIONS[@]}"; do bins+=(--bin "$f"); done
t=$SECONDS
# Only the five functions (not the workspace's tools). cargo-lambda's `--target-dir` is broken:
# CARGO_TARGET_DIR is the one knob (default target/).
cargo lambda build --release "$arch" --output-format zip "${bins[@]}"
echo "package: built in $((SECONDS - t))s"

lambda_dir="${CARGO_TARGET_DIR:-$ROOT/target}/lambda"
python3 - "$lambda_dir" "$LIMIT_MB" "${FUNCTIONS[@]}" <<'PY'
import os, sys, zipfile
lambda_dir, limit, names = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
over = False
print(f"{'function':<16} {'bootstrap':>12} {'zip':>10}")
for name in names:
    path = os.path.join(lambda_dir, name, "bootstrap.zip")
    raw = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    size = os.path.getsize(path)
    over |= size > limit * 1e6
    print(f"{name:<16} {raw / 1e6:9.2f} MB {size / 1e6:7.2f} MB")
print(f"package: zips in {lambda_dir}/<function>/bootstrap.zip (goal <= {limit:g} MB each)")
sys.exit(1 if over else 0)
PY

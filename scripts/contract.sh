#!/usr/bin/env bash
# The API contract check: starts newsdesk on a loopback port (a fresh SQLite file, the
# demo content, a bootstrap admin token given on the command line) and runs schemathesis
# against its own /api/openapi.json with every check, a fixed seed and derandomized
# generation, a bounded number of examples per operation. Any failure fails the script.
#
# All checks run (`--checks all`), with `positive_data_acceptance` in the form of
# scripts/contract_hooks.py: the same check, except that a 422 for a rule a JSON Schema
# cannot state (a category, partner or subscriber that does not exist; an event ending
# before it starts; a category moved under itself) is not counted as a refusal of valid
# data. scripts/contract.toml counts 413 as a refusal of invalid data.
#
# Environment:
#   NEWSDESK_BIN          a built binary (default: build target/debug/newsdesk)
#   SCHEMATHESIS          the `st` command (default: st)
#   CONTRACT_SEED         the seed (default 20231109)
#   CONTRACT_EXAMPLES     examples per operation and phase (default 25)
#   CONTRACT_TIMEOUT      seconds after which the run is stopped and fails (default 600;
#                         a normal run takes a few minutes)
#   KEEP_CONTRACT=1       keep the server log and schemathesis' report (path printed)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
ST="${SCHEMATHESIS:-st}"
# A path is made absolute: the run happens in a scratch directory.
if [[ "$ST" == */* && -e "$ST" ]]; then ST="$(cd "$(dirname "$ST")" && pwd)/$(basename "$ST")"; fi
SEED="${CONTRACT_SEED:-20231109}"
EXAMPLES="${CONTRACT_EXAMPLES:-25}"
TIMEOUT="${CONTRACT_TIMEOUT:-600}"

die() { echo "contract: $*" >&2; exit 1; }

command -v "$ST" >/dev/null || die "schemathesis is not installed ($PYTHON -m pip install schemathesis==$(cat scripts/contract-schemathesis.version); scripts/test.sh installs it)"
command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"

if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  BIN="$NEWSDESK_BIN"
else
  echo "--- building newsdesk (debug)"
  cargo build --quiet --bin newsdesk
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/newsdesk"
fi
[[ -x "$BIN" ]] || die "no executable at $BIN"

WORK="$(mktemp -d -t newsdesk-contract.XXXXXX)"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "$WORK/server.log" ]]; then
    echo "--- last lines of the server log" >&2
    tail -n 30 "$WORK/server.log" >&2 || true
  fi
  if [[ "${KEEP_CONTRACT:-0}" == 1 ]]; then
    echo "server log and report kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

TOKEN="contract-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PORT=""
for attempt in 1 2 3; do
  PORT="$(free_port)"
  BASE="http://127.0.0.1:$PORT"
  echo "--- starting newsdesk on $BASE (attempt $attempt)"
  # The token is given in the environment (a flag would show in ps): stored hashed at
  # start-up.
  env DATABASE_URL="sqlite://$WORK/newsdesk.db" \
      NEWSDESK_ADMIN_TOKEN="$TOKEN" \
      NEWSDESK_OUTBOX_DIR="$WORK/outbox" \
      NEWSDESK_SUBSCRIBE_RATE_PER_HOUR=100000 \
      RUST_LOG="${RUST_LOG:-warn}" \
      "$BIN" --bind "127.0.0.1:$PORT" serve --demo \
      >>"$WORK/server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  ready=0
  for _ in $(seq 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    if curl -fsS -o /dev/null --max-time 2 "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.2
  done
  [[ $ready == 1 ]] && break
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    die "newsdesk did not become ready within 60 s"
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  grep -q "binding" "$WORK/server.log" || die "newsdesk exited before it was ready"
done
[[ -n "$SERVER_PID" ]] || die "newsdesk could not bind a port"
echo "ready; $("$ST" --version)"

# Every check, every phase; the same requests on every run (derandomized generation,
# which also keeps no example database between runs; the seed is passed for the record).
set -x
# Run from the scratch directory: schemathesis keeps a cache in its working directory.
cd "$WORK"
SCHEMATHESIS_HOOKS=contract_hooks PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" \
timeout "$TIMEOUT" "$ST" --config-file "$ROOT/scripts/contract.toml" run "$BASE/api/openapi.json" \
  --url "$BASE" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --mode all \
  --seed "$SEED" \
  --generation-deterministic \
  --max-examples "$EXAMPLES" \
  --workers 1 \
  --request-timeout 10 \
  --no-color \
  --report junit --report-dir "$WORK/report"
{ set +x; } 2>/dev/null
echo "contract: schemathesis found no failures"

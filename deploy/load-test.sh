#!/usr/bin/env bash
# Load test of the Redis-shared gallery with real reid-stream workers: N processes replay recordings at real
# time (source.realtime=true) against one redis-server, then report each worker's gallery decision latency
# (summary.json latency_ms.gallery p50 / p99) and the Redis round trips per processed frame (commandstats).
#
#   deploy/load-test.sh PORT OUT REC [REC ...]      # one worker per recording (reid-record / reid-synth)
#
# Example (a recorded two-room site, twice over = 4 workers):
#   reid-synth site configs/sim/site-two-rooms.yaml --out rec/site
#   deploy/load-test.sh 6390 runs/load rec/site/room rec/site/corridor rec/site/room rec/site/corridor
set -euo pipefail
port=$1; out=$2; shift 2
mkdir -p "$out"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --logfile "$out/redis.log"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" config resetstat >/dev/null
pids=(); n=0
for rec in "$@"; do
    n=$((n + 1))
    reid-stream --replay "$rec" --gallery "redis://127.0.0.1:$port/0" --output "$out/worker-$n" --overwrite \
        source.realtime=true > "$out/worker-$n.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
calls=$(redis-cli -p "$port" info commandstats | awk -F'[=,]' '/^cmdstat_/ {s += $2} END {print s}')
python3 - "$out" "$n" "$calls" <<'PY'
import json, sys
from pathlib import Path
out, n, calls = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
frames = 0
print(f"{n} workers against one Redis, real-time replay")
print(f"{'worker':<10}{'frames':>8}{'fps':>8}{'gallery p50 ms':>16}{'p99 ms':>10}{'identities':>12}")
for k in range(1, n + 1):
    s = json.loads((out / f"worker-{k}" / "summary.json").read_text())
    g = s["latency_ms"].get("gallery", {})
    frames += s["frames_processed"]
    print(f"worker-{k:<3}{s['frames_processed']:>8}{s['fps'] or 0:>8.1f}{g.get('p50', float('nan')):>16.2f}"
          f"{g.get('p99', float('nan')):>10.2f}{s['identities']['seen']:>12}")
print(f"Redis commands {calls} for {frames} frames: {calls / max(frames, 1):.2f} round trips per frame")
PY

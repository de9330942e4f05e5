#!/usr/bin/env bash
# Soak: runs ntp-server under a constant load for a long time and samples its
# resident memory, to show that memory stays flat (nothing allocated per
# request, per-client state bounded). Server pinned to CPU 0 (one worker,
# rate limiting on with a 65,536-entry table and no cutoff, so every request
# passes through the table), ntp-perf to CPU 1. Prints the RSS samples and
# ntp-perf's report.
#
# Knobs (environment): MODE (plain or nts, default plain), RATE (requests/s,
# default 200000: set it to about 80 % of the maximum that
# scripts/bench-vs-chrony.sh measured on this machine), DURATION (s, default
# 600), EVERY (s between RSS samples, default 30), CLIENTS (default 8),
# INFLIGHT (default 4096).
#
# The server runs under `setpriv --bounding-set -sys_time`: it cannot touch
# the clock. Everything started here is stopped by PID on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MODE=${MODE:-plain}
RATE=${RATE:-200000}
DURATION=${DURATION:-600}
EVERY=${EVERY:-30}
CLIENTS=${CLIENTS:-8}
INFLIGHT=${INFLIGHT:-4096}

pick() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        taken "$p" || { echo "$p"; return; }
    done
}
NTP_PORT=$(pick)
KE_PORT=$(pick)
while [ "$KE_PORT" = "$NTP_PORT" ]; do KE_PORT=$(pick); done

WORK=$(mktemp -d /tmp/soak.XXXXXX)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "soak: $*" >&2; }

cargo build --release -p ntp-server -p ntp-perf >&2

make_pki "$WORK"
ours_config "$WORK/server.toml" "$NTP_PORT" "$KE_PORT" "$WORK" "workers = 1" \
    "rate-limiting-cache-size = 65536" "rate-limiting-cutoff-ms = 0"

taskset -c 0 setpriv --bounding-set -sys_time -- \
    target/release/ntp-server --config "$WORK/server.toml" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do
    taken "$NTP_PORT" && taken "$KE_PORT" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
sleep 0.3
log "ntp-server PID $SERVER_PID; $MODE at $RATE/s for $DURATION s"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
taskset -c 1 target/release/ntp-perf "$MODE" --rate "$RATE" --duration "$DURATION" \
    --clients "$CLIENTS" --inflight "$INFLIGHT" --port "$NTP_PORT" --ke-port "$KE_PORT" \
    --ca "$WORK/ca.pem" --server-pid "$SERVER_PID" 127.0.0.1 >"$WORK/perf.txt" &
PERF_PID=$!
echo "| elapsed s | server RSS KiB |"
echo "|--:|--:|"
start=$(date +%s)
echo "| 0 | $(rss) |"
while kill -0 "$PERF_PID" 2>/dev/null; do
    sleep "$EVERY"
    kill -0 "$PERF_PID" 2>/dev/null || break
    echo "| $(($(date +%s) - start)) | $(rss) |"
done
wait "$PERF_PID"
echo "| end | $(rss) |"
echo
cat "$WORK/perf.txt"

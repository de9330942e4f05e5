#!/usr/bin/env bash
# Compares ntp-server with chronyd on this machine: plain NTP and NTS at the
# same offered rates, and NTS-KE handshakes per second, each server pinned to
# CPU 0 and the load generator (ntp-perf) to CPU 1. Prints a Markdown table;
# with JSON_OUT=FILE also writes every ntp-perf report as JSON lines.
#
# Both daemons run under `setpriv --bounding-set -sys_time` so they cannot
# touch the clock (chronyd additionally with -x). Everything started here is
# stopped by PID on exit. Run as root (chronyd -u root, taskset).
#
# Knobs (environment): DURATION (s per step, default 10), RATES (default
# "20000 50000 100000 150000 unlimited"), CLIENTS (default 8), INFLIGHT
# (default 1024), KE_INFLIGHT (default 8), KE_DURATION (default DURATION),
# SERVERS (default "ntp-server chrony"), MODES (default "plain nts ke"),
# OURS (the ntp-server binary, default target/release/ntp-server: set it to
# compare a saved build), WORKERS (ntp-server's UDP workers, default 1),
# SERVER_CPU and LOAD_CPU (taskset CPU lists, default 0 and 1),
# CHRONY_RCVBUF (bytes: sets net.core.rmem_default for the run and restores
# it on exit; chronyd does not size its sockets' receive buffers, so this is
# how it gets a buffer like ntp-server's, which asks for 4 MiB itself).
#
# Both servers run for the whole comparison (the idle one costs nothing
# measurable) and the steps alternate between them: each rate is measured
# for one server and then at once for the other. On a shared virtual machine
# the host takes CPU in bursts of seconds to minutes (the "steal s" column);
# alternating puts both servers' steps of a pair in the same few seconds, so
# a burst disturbs a pair rather than every step of one server.
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
DURATION=${DURATION:-10}
RATES=${RATES:-"20000 50000 100000 150000 unlimited"}
CLIENTS=${CLIENTS:-8}
INFLIGHT=${INFLIGHT:-1024}
KE_INFLIGHT=${KE_INFLIGHT:-8}
KE_DURATION=${KE_DURATION:-$DURATION}
SERVERS=${SERVERS:-"ntp-server chrony"}
MODES=${MODES:-"plain nts ke"}
JSON_OUT=${JSON_OUT:-}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORKERS=${WORKERS:-1}
CHRONY_RCVBUF=${CHRONY_RCVBUF:-}

# Ports are picked at run time among free ones: other programs on this
# machine may hold any fixed choice (a fixed 12123 once measured someone
# else's daemon).
PICKED=""
pick() { # appends a free port to PICKED
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        taken "$p" || case " $PICKED " in *" $p "*) ;; *) break ;; esac
    done
    PICKED="$PICKED $p"
}
pick; pick; pick; pick
read -r OURS_NTP OURS_KE CHRONY_NTP CHRONY_KE <<<"$PICKED"

WORK=$(mktemp -d /tmp/bench-vs-chrony.XXXXXX)
PIDS=()
# descendants PID: the PIDs of every process below PID (chronyd forks helpers).
descendants() {
    local child
    for child in $(awk -v p="$1" '$4 == p {print $1}' /proc/[0-9]*/stat 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill $(descendants "$pid") "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
    if [ -n "${RMEM_DEFAULT_WAS:-}" ]; then
        sysctl -qw net.core.rmem_default="$RMEM_DEFAULT_WAS" || true
    fi
}
trap cleanup EXIT

log() { echo "bench: $*" >&2; }

cargo build --release -p ntp-server -p ntp-perf >&2
PERF=target/release/ntp-perf
OURS=${OURS:-target/release/ntp-server}

if [ -n "$CHRONY_RCVBUF" ]; then
    RMEM_DEFAULT_WAS=$(sysctl -n net.core.rmem_default)
    sysctl -qw net.core.rmem_default="$CHRONY_RCVBUF"
    log "net.core.rmem_default $RMEM_DEFAULT_WAS -> $CHRONY_RCVBUF until the end of this run"
fi

make_pki "$WORK"

mkdir -p "$WORK/chrony" "$WORK/ours"
cat >"$WORK/chrony.conf" <<EOF
port $CHRONY_NTP
bindaddress 127.0.0.1
local stratum 1
allow 127.0.0.1
cmdport 0
ntsserverkey $WORK/server.key
ntsservercert $WORK/server.pem
ntsport $CHRONY_KE
ntsdumpdir $WORK/chrony
pidfile $WORK/chrony/chronyd.pid
EOF
ours_config "$WORK/ours.toml" "$OURS_NTP" "$OURS_KE" "$WORK" "workers = $WORKERS"

# start NAME: starts one daemon pinned to SERVER_CPU; sets SERVER_PID.
start() {
    case "$1" in
    ntp-server)
        taskset -c "$SERVER_CPU" setpriv --bounding-set -sys_time -- \
            "$OURS" --config "$WORK/ours.toml" >"$WORK/ours.log" 2>&1 &
        ;;
    chrony)
        taskset -c "$SERVER_CPU" setpriv --bounding-set -sys_time -- \
            /usr/sbin/chronyd -x -d -f "$WORK/chrony.conf" -u root >"$WORK/chrony.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    # Ready when both ports are bound by the daemon we started (or a process
    # it forked): never measure somebody else's server.
    local ntp_port ke_port
    read -r ntp_port ke_port < <(ports "$1")
    for _ in $(seq 50); do
        if ours "$ntp_port" && ours "$ke_port"; then
            sleep 0.3
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "$1 did not start:"
    cat "$WORK/ours.log" "$WORK/chrony.log" 2>/dev/null >&2 || true
    exit 1
}

# ours PORT: whether PORT is bound by SERVER_PID or one of its descendants.
ours() {
    local pid
    for pid in $(ss -Hlnutp | awk -v p=":$1" '$5 ~ p"$"' | grep -o 'pid=[0-9]*' | cut -d= -f2); do
        while [ "${pid:-0}" -gt 1 ]; do
            [ "$pid" = "$SERVER_PID" ] && return 0
            pid=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        done
    done
    return 1
}

stop() {
    kill $(descendants "$SERVER_PID") "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# ports NAME -> "NTP_PORT KE_PORT"
ports() {
    case "$1" in
    ntp-server) echo "$OURS_NTP $OURS_KE" ;;
    chrony) echo "$CHRONY_NTP $CHRONY_KE" ;;
    esac
}

# perf SERVER MODE RATE: one ntp-perf run; prints its JSON report.
perf() {
    local ntp ke duration=$DURATION inflight=$INFLIGHT
    read -r ntp ke < <(ports "$1")
    if [ "$2" = ke ]; then
        duration=$KE_DURATION
        inflight=$KE_INFLIGHT
    fi
    taskset -c "$LOAD_CPU" "$PERF" "$2" --json --rate "$3" --duration "$duration" \
        --clients "$CLIENTS" --inflight "$inflight" --port "$ntp" --ke-port "$ke" \
        --ca "$WORK/ca.pem" --server-pid "$SERVER_PID" 127.0.0.1
}

# One Markdown row from an ntp-perf JSON report.
cat >"$WORK/row.py" <<'EOF'
import json, sys

server, r = sys.argv[1], json.loads(sys.argv[2])


def f(v, d=0):
    return "-" if v is None else f"{v:,.{d}f}"


lat = r["latency_us"]
rate = "unlimited" if r["target_rate"] is None else f(r["target_rate"])
kods = " ".join(f"{k}:{v}" for k, v in r["kods"].items()) or "-"
cells = [
    r["mode"], server, rate, f(r["offered_rate"]), f(r["answered_rate"]),
    f"{r['loss_pct']:.3f}", f(lat["p50"], 1), f(lat["p99"], 1),
    f(r["server_cpu_pct"]), f(r["server_cpu_s_per_million"], 2),
    f(r.get("server_system_s_per_million"), 2),
    f(r["generator_cpu_pct"]), kods, str(r["nts_naks"] + r["invalid"]),
    f(r["udp_rcvbuf_errors"]),
    f(r.get("steal_s"), 2),
    f((r.get("delay_us") or {}).get("p99"), 1),
    f((r.get("reply_lag_us") or {}).get("p50"), 1),
    f((r.get("reply_lag_us") or {}).get("p99"), 1),
    f((r.get("offset_abs_us") or {}).get("p99"), 1),
    f(r.get("offset_mean_us"), 1),
]
print("| " + " | ".join(cells) + " |")
EOF

# rcvbuf PORT: the receive buffer (bytes) of the UDP socket bound to PORT.
rcvbuf() {
    ss -Hulmn "sport = :$1" | grep -o 'rb[0-9]*' | head -1 | tr -d rb
}

ROWS=()
BUFFERS=""
declare -A PID_OF
for server in $SERVERS; do
    start "$server"
    PID_OF[$server]=$SERVER_PID
    read -r ntp_port _ < <(ports "$server")
    BUFFERS="$BUFFERS $server $(rcvbuf "$ntp_port") bytes,"
    log "$server running as PID $SERVER_PID"
done
for mode in $MODES; do
    rates=$RATES
    [ "$mode" = ke ] && rates=unlimited
    for rate in $rates; do
        for server in $SERVERS; do
            SERVER_PID=${PID_OF[$server]}
            log "$server $mode rate $rate"
            json=$(perf "$server" "$mode" "$rate") || {
                log "ntp-perf failed for $server $mode $rate"
                continue
            }
            [ -n "$JSON_OUT" ] && echo "{\"server\":\"$server\",\"report\":$json}" >>"$JSON_OUT"
            ROWS+=("$(python3 "$WORK/row.py" "$server" "$json")")
        done
    done
done
for server in $SERVERS; do
    SERVER_PID=${PID_OF[$server]}
    stop
done

echo
echo "ntp-perf: server on CPU $SERVER_CPU ($WORKERS ntp-server workers), load on CPU $LOAD_CPU, $DURATION s per step, $CLIENTS client sockets, inflight $INFLIGHT (ke: $KE_INFLIGHT handshakes at once); UDP receive buffers:${BUFFERS%,}."
echo "Rates are requests/s (ke: handshakes/s). Server CPU is % of one core; 's/M' = server CPU seconds per million answered; 'of which kernel' = the part in system time (stime); 'steal s' = CPU the hypervisor took from the machine during the step (a step with much of it is disturbed). 'client delay' = (T4-T1)-(T3-T2), the round trip an NTP client computes, without the time the server admits to holding the request; 'offset' = ((T2-T1)+(T3-T4))/2, which is 0 on loopback for a server that stamps exactly, so it shows the stamping error (mean = bias); 'T4-T3' = from the server's transmit stamp to the reply's arrival, which on loopback is how long after its stamp the reply left the server."
echo
echo "| mode | server | offered (asked) | offered | answered | loss % | p50 µs | p99 µs | server CPU % | server s/M | of which kernel | gen CPU % | KoD | NAK+invalid | rcvbuf drops | steal s | client delay p99 µs | T4-T3 p50 µs | T4-T3 p99 µs | \\|offset\\| p99 µs | offset mean µs |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${ROWS[@]}" | sort -s -t'|' -k2,2

#!/usr/bin/env bash
# Runs every test of the suite on a fresh machine where only the Rust
# toolchains (stable and nightly) are installed: it installs what the tests
# need first. Bounded: fuzzing runs FUZZ_SECONDS per target (default 20).
#
#   bash scripts/test-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
LOG="$(mktemp -d)/test-all"
mkdir -p "$LOG"
step() { printf '\n==> %s\n' "$*"; }

# --- what the tests need --------------------------------------------------
# Real peers for the interop tests: chronyd (started by the tests themselves
# on loopback ports with -x, their own config and pid file) and ntpdig.
# Network namespaces (ip) and setpriv, which starts every peer without
# CAP_SYS_TIME so that none can touch the clock whatever it tries.
missing=()
command -v chronyd >/dev/null 2>&1 || [ -x /usr/sbin/chronyd ] || missing+=(chrony)
command -v ntpdig >/dev/null 2>&1 || missing+=(ntpsec-ntpdig)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # Never let the package start chronyd as a system service: it must not
    # touch this machine's clock. policy-rc.d exit 101 forbids service starts.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOG/apt.log" 2>&1 \
        || { cat "$LOG/apt.log"; exit 1; }
    [ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi
# NTPsec's ntpd conflicts with chrony's package, so it is unpacked, not
# installed, into a cache the interop tests know (NTP_SUITE_PEERS).
export NTP_SUITE_PEERS="${NTP_SUITE_PEERS:-$HOME/.cache/ntp-suite/peers}"
if [ ! -x "$NTP_SUITE_PEERS/ntpsec/usr/sbin/ntpd" ]; then
    step "unpacking NTPsec's ntpd into $NTP_SUITE_PEERS/ntpsec"
    work="$(mktemp -d)"
    (cd "$work" && apt-get download ntpsec >/dev/null)
    mkdir -p "$NTP_SUITE_PEERS"
    dpkg -x "$work"/ntpsec_*.deb "$NTP_SUITE_PEERS/ntpsec"
    rm -rf "$work"
fi
if ldd "$NTP_SUITE_PEERS/ntpsec/usr/sbin/ntpd" | grep -q "not found"; then
    # Its shared libraries, which do not conflict with chrony.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libbsd0 libcap2 libssl3 >/dev/null
fi
# ntpd-rs, built from crates.io once and kept in the same cache.
if [ ! -x "$NTP_SUITE_PEERS/ntpd-rs/bin/ntp-daemon" ]; then
    step "building ntpd-rs (cargo install ntpd) into $NTP_SUITE_PEERS/ntpd-rs"
    cargo install ntpd --locked --quiet --root "$NTP_SUITE_PEERS/ntpd-rs"
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "error: the nightly toolchain is needed for cargo fuzz and is not installed" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

# --- static checks --------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)
step "ntp-proto builds without std (no_std) and with alloc only"
cargo build --quiet -p ntp-proto --no-default-features
cargo build --quiet -p ntp-proto --no-default-features --features alloc
step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

# --- tests: unit, property, integration (with real peers), doc ------------
step "cargo test"
# --no-fail-fast: one failing test binary must not hide the others' results.
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$LOG/test.log"

step "examples"
cargo build --quiet -p ntp-examples --examples
cargo run --quiet -p ntp-examples --example decode_packet
cargo run --quiet -p ntp-examples --example nts_loopback
port=$((20000 + RANDOM % 20000))
target/debug/examples/tiny_server "127.0.0.1:$port" --count 1 --seconds 10 &
server_pid=$!
sleep 0.5
target/debug/examples/sntp_query "127.0.0.1:$port"
wait "$server_pid"

step "benches build"
cargo bench --workspace --no-run --quiet

# --- fuzzing: every target, bounded --------------------------------------
step "fuzz (${FUZZ_SECONDS}s per target)"
fuzz_runs=0
for target in $(cd fuzz && cargo +nightly fuzz list); do
    mkdir -p "fuzz/corpus/$target"
    (cd fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -print_final_stats=1) \
        >"$LOG/fuzz-$target.log" 2>&1 || { tail -40 "$LOG/fuzz-$target.log"; echo "fuzz target $target failed"; exit 1; }
    runs=$(grep -o 'Done [0-9]* runs' "$LOG/fuzz-$target.log" | grep -o '[0-9]*' || echo 0)
    # libFuzzer's last status line: coverage (edges) and features reached.
    cov=$(grep -E '#[0-9]+[[:space:]]+DONE' "$LOG/fuzz-$target.log" | grep -oE 'cov: [0-9]+ ft: [0-9]+' | tail -1 || true)
    echo "fuzz $target: $runs runs, ${cov:-cov: ?}, no crash"
    fuzz_runs=$((fuzz_runs + 1))
done

# --- summary --------------------------------------------------------------
read -r passed failed < <(awk '/^test result:/ {
    for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
} END { print p + 0, f + 0 }' "$LOG/test.log")
echo
echo "fuzz targets run: $fuzz_runs"
echo "tests: $passed passed, $failed failed"

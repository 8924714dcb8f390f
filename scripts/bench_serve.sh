#!/usr/bin/env bash
# Benchmarks `bertq serve` on this machine with the built-in model and the README's example
# sentence (28 tokens):
# - over a Unix socket, with 1, 4 and 16 concurrent clients (each sending requests one after
#   another): throughput and p50/p99 latency seen by the clients;
# - over a pseudo-terminal at 115200 and 921600 baud: request round-trip p50/p99. A pty does not
#   pace bytes at the baud rate, so the output also gives the time the same bytes take on a real
#   UART (10 bits per byte), to add for a board.
# Usage: scripts/bench_serve.sh [WORKERS] (default 2)     Env: REQUESTS (per client, default 200)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
workers="${1:-2}"
requests="${REQUESTS:-200}"
cargo build --release -p bertq-boards --quiet --bin bertq --example serve_bench
bertq=target/release/bertq
bench=target/release/examples/serve_bench
work="$(mktemp -d)"
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "# $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernels $("$bertq" info | awk '/^kernels/ {print $2}')"
echo "# bertq serve --unix S --workers $workers --queue 64; $requests requests per client"
"$bertq" serve --unix "$work/s.sock" --workers "$workers" --queue 64 2> "$work/serve.log" &
pid=$!
for _ in $(seq 1 300); do grep -q "bertq: serving" "$work/serve.log" && break; sleep 0.1; done
for clients in 1 4 16; do
    "$bench" unix "$work/s.sock" "$clients" "$requests"
done
"$bertq" client --unix "$work/s.sock" --metrics
kill -TERM "$pid"; wait "$pid" || true; pid=

for baud in 115200 921600; do
    "$bench" pty "$bertq" "$baud" "$requests"
done

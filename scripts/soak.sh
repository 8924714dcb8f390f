#!/usr/bin/env bash
# Soak test of `bertq serve` (not part of the normal test run; CI runs a short one):
#
#   scripts/soak.sh [--clients N] [--seconds S] [--tcp] [--model FILE] [-- serve options...]
#
# Starts the release `bertq serve` on a Unix socket in a temporary directory (or, with --tcp,
# on 127.0.0.1 with an ephemeral port: loopback only), runs N clients of valid and malformed
# traffic (scripts/soak.py) for S seconds, stops the server with SIGTERM, and prints: requests,
# errors by type, busy replies, p50/p99 latency, the server's RSS at start and end, and whether
# every id was answered exactly once. Exits non-zero on a lost, duplicated or stray id, a
# client failure, or a server that did not exit cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=8
seconds=60
tcp=0
model=()
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) clients="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --tcp) tcp=1; shift ;;
        --model) model=(--model "$2"); shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

cargo build -q --release -p bertq-boards --bin bertq
bin=target/release/bertq
dir=$(mktemp -d)
log="$dir/server.log"
if [ "$tcp" = 1 ]; then
    listen=(--tcp 0)
else
    listen=(--unix "$dir/bertq.sock")
fi
"$bin" serve "${model[@]}" "${listen[@]}" --workers 2 --queue 8 "$@" 2>"$log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 600); do
    grep -q "bertq: serving" "$log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
grep -q "bertq: serving" "$log" || { echo "soak.sh: server not ready" >&2; cat "$log" >&2; exit 1; }
if [ "$tcp" = 1 ]; then
    addr=$(grep -o 'tcp:[0-9.]*:[0-9]*' "$log" | head -n1 | cut -c5-)
    target=(--tcp "$addr")
else
    target=(--unix "$dir/bertq.sock")
fi
set +e
python3 scripts/soak.py "${target[@]}" --pid "$pid" --clients "$clients" --seconds "$seconds"
client_status=$?
set -e
kill -TERM "$pid"
server_status=0
wait "$pid" || server_status=$?
trap - EXIT
rm -rf "$dir"
if [ "$server_status" != 0 ]; then
    echo "soak.sh: the server exited with status $server_status" >&2
    exit 1
fi
exit "$client_status"

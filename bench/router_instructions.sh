#!/usr/bin/env bash
# Issue 3, target 4: route lookup cost with 10 and 10,000 routes, as instruction counts
# (valgrind --tool=callgrind), which do not move with steal and other tenants as timings do.
# Counts only `measured_lookups` (see crates/router/benches/instructions.rs): the same
# 5 requests (exact, template, wildcard prefix, catch-all template, host fall-through)
# x ITERS rounds; prints instructions per lookup and the ratio.
#   bench/router_instructions.sh [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-2000}
command -v valgrind >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind; }
bin=$(cargo bench -p sekisho-router --bench instructions --no-run 2>&1 \
      | sed -n 's/.*Executable benches\/instructions.rs (\(.*\))/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the instructions bench" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A ir
for n in 10 10000; do
  valgrind --tool=callgrind --toggle-collect='*measured_lookups*' \
    --callgrind-out-file="$out/cg.$n" "$bin" "$n" "$iters" >/dev/null 2>"$out/log.$n"
  ir[$n]=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/cg.$n" | head -1)
  lookups=$((iters * 5))
  echo "routes $n: ${ir[$n]} instructions for $lookups lookups = $(( ${ir[$n]} / lookups )) per lookup"
done
python3 -c "import sys; a,b=int(sys.argv[1]),int(sys.argv[2]); print(f'ratio 10000/10: {b/a:.3f} (target <= 1.10)')" "${ir[10]}" "${ir[10000]}"

#!/usr/bin/env bash
# Peak RSS and RSS growth of a long training-step run, ours and the reference's, one after the other
# (issue 8: "peak RSS of a 500-iteration run no more than the reference's; no growth after warm-up").
#
# Usage: scripts/memory_run.sh [--steps 500] [--depth 18] [--size 192] [--threads 2]
# Prints, per side, the peak RSS (the kernel's VmHWM high-water mark, read each second: it catches every spike) and,
# from VmRSS sampled once a second, the RSS when 10 % of the run's time had passed (after warm-up), at 50 % and at
# the end, and the growth from 10 % to the end. (The sampled VmRSS alone misses the short peaks inside a step.)
set -euo pipefail
source "$(dirname "$0")/gfl_binary.sh"
STEPS=500 DEPTH=18 SIZE=192 THREADS=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) STEPS=$2; shift 2 ;; --depth) DEPTH=$2; shift 2 ;; --size) SIZE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;; *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
require_gfl

watch_rss() {   # name, then the command; prints "name peak p10 p50 end growth" in MB
  local name=$1; shift
  local log; log=$(mktemp)
  "$@" > "$log.out" 2>&1 &
  local pid=$! samples=() hwm=0
  while kill -0 "$pid" 2>/dev/null; do
    local kb peak; read -r kb peak < <(awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {print r, h}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n "$kb" ]] && samples+=("$kb")
    [[ -n "$peak" ]] && hwm=$peak
    sleep 1
  done
  wait "$pid" || { echo "$name failed:"; tail -5 "$log.out"; return 1; }
  printf '%s\n' "${samples[@]}" | python3 -c "
import sys
s = [int(x) / 1024 for x in sys.stdin.read().split()]
n = len(s); p10, p50, end = s[max(0, n // 10 - 1)], s[n // 2], s[-1]
print(f'$name: peak {$hwm / 1024:.0f} MB (VmHWM); {n} samples of VmRSS: highest {max(s):.0f} MB, at 10% {p10:.0f} MB, at 50% {p50:.0f} MB, end {end:.0f} MB, growth 10%->end {end - p10:+.0f} MB')"
  rm -f "$log" "$log.out"
}

echo "R$DEPTH-GFL train step, ${SIZE}x${SIZE}, batch 2, 50 gts/img, $STEPS steps, $THREADS threads"
watch_rss ours env OMP_NUM_THREADS="$THREADS" "$GFL" bench train-step --depth "$DEPTH" --height "$SIZE" --width "$SIZE" \
  --repeats "$STEPS" --warmup 1 --threads "$THREADS"
(cd "$ROOT/scripts/reference" && watch_rss reference env OMP_NUM_THREADS="$THREADS" /usr/bin/python3 bench.py train-step \
  --depth "$DEPTH" --img-scale "$SIZE" "$SIZE" --repeats "$STEPS" --warmup 1 --threads "$THREADS")

#!/usr/bin/env bash
# Side-by-side performance of gfl (C#, TorchSharp) and the plain-PyTorch reference (scripts/reference/bench.py),
# issue 8. For every benchmark the two run ALTERNATELY (ours, reference, ours, reference, ... for --rounds rounds)
# so that both see the same machine load, with the same torch intra-op thread count (--threads, passed to both and
# set as OMP_NUM_THREADS; Debian's torch defaults to 1 thread, libtorch to the core count). Per benchmark the script
# takes the median over rounds of each side and prints a table (with the median of the per-round ratios as
# "paired", steadier when the load changes between rounds), then one line per figure:
#
#   RATIO <name> <ours/ref>          speed: ref_time / our_time (> 1: we are faster)
#   RATIO <name>-memory <ours/ref>   peak RSS: ref / ours      (> 1: we use less memory)
#
# Usage: scripts/bench_compare.sh [--quick] [--rounds N] [--threads N] [--benches data,model,...] [options]
# Run from anywhere; JSON of every run lands in --out (default bench_out/<UTC time>). See docs/performance.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/gfl_binary.sh"
PY=/usr/bin/python3
ROUNDS=3
THREADS=$(nproc)
BENCHES="data,model,targets,train-step,infer,eval"
QUICK=0
REPORT_ONLY=0
OUT=""
DATA_DIR=/work/shared/data/bccd
DATA_WORKERS=1
DATA_IMAGES=""
DEPTH=""
WIDTH=""
HEIGHT=""
REPEATS=""
WARMUP=""
STEP_REPEATS=""
PYCOCO=""
EVAL_DIR="$ROOT/tests/GflTrainer.Tests/Fixtures/cocoeval/large_timing"

usage() {
  cat <<EOF
usage: $0 [options]
  --quick               small sizes: ResNet-18, 320x320 images, 2 repeats after 1 warm-up, 20 data images
                        (whole script: a few minutes on 2 cores); the default is R50 at 1333x800
  --rounds N            alternating rounds per benchmark (default $ROUNDS)
  --threads N           torch intra-op threads for both (default: nproc = $THREADS)
  --benches LIST        comma-separated subset of $BENCHES
  --depth D             ResNet depth (default 50; --quick: 18)
  --head H              train-step and infer: the detector with this head, gfl (default), atss or retinanet
  --size W H            unpadded image size for model / train-step / infer (default 1333 800; --quick: 320 320)
  --repeats N           timed repeats inside each run (default 3; --quick: 2)
  --warmup N            untimed warm-up calls inside each run (default 1)
  --step-repeats N      timed repeats for train-step and model (default 1: R50 at 1333x800 takes tens of s on 2 cores)
  --data-dir DIR        COCO dataset dir with annotations/instances_train.json and images/ (default $DATA_DIR)
  --data-workers N      loader workers for both (default $DATA_WORKERS)
  --data-images N       images per data run (default 40; --quick: 20)
  --pycocotools DIR     folder holding the built pycocotools package (default: importable, else
                        /tmp/cocoapi/PythonAPI or /tmp/cocoeval_cocoapi/PythonAPI if one exists; none: eval skipped)
  --eval-dir DIR        folder with gt.json, dets.json (default: the large_timing fixture)
  --gfl PATH            gfl binary (default: the Release build)
  --python PATH         python for the reference (default $PY)
  --out DIR             where the JSON files go (default bench_out/<UTC time>)
  --report-only         run nothing: print the table and RATIO lines of the JSON files already in --out
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --benches) BENCHES=$2; shift 2 ;;
    --depth) DEPTH=$2; shift 2 ;;
    --head) HEAD=$2; shift 2 ;;
    --size) WIDTH=$2; HEIGHT=$3; shift 3 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --step-repeats) STEP_REPEATS=$2; shift 2 ;;
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --data-workers) DATA_WORKERS=$2; shift 2 ;;
    --data-images) DATA_IMAGES=$2; shift 2 ;;
    --pycocotools) PYCOCO=$2; shift 2 ;;
    --eval-dir) EVAL_DIR=$2; shift 2 ;;
    --gfl) GFL=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --report-only) REPORT_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ $QUICK == 1 ]]; then
  : "${DEPTH:=18}" "${WIDTH:=320}" "${HEIGHT:=320}" "${REPEATS:=2}" "${STEP_REPEATS:=2}" "${DATA_IMAGES:=20}"
else
  : "${DEPTH:=50}" "${WIDTH:=1333}" "${HEIGHT:=800}" "${REPEATS:=3}" "${STEP_REPEATS:=1}" "${DATA_IMAGES:=40}"
fi
: "${WARMUP:=1}" "${HEAD:=gfl}"
: "${OUT:=$ROOT/bench_out/$(date -u +%Y%m%dT%H%M%SZ)}"
PAD_W=$(( (WIDTH + 31) / 32 * 32 ))
PAD_H=$(( (HEIGHT + 31) / 32 * 32 ))
DATA_BATCHES=$(( (DATA_IMAGES + 1) / 2 ))

[[ $REPORT_ONLY == 1 ]] && ROUNDS_TO_RUN=0 || ROUNDS_TO_RUN=$ROUNDS
[[ $REPORT_ONLY == 1 ]] || require_gfl
mkdir -p "$OUT"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS DOTNET_PROCESSOR_COUNT=$THREADS
REF="$PY $ROOT/scripts/reference/bench.py"

echo "bench_compare: rounds $ROUNDS, threads $THREADS (both), depth $DEPTH, head $HEAD, size ${WIDTH}x${HEIGHT} (padded ${PAD_W}x${PAD_H}),"
echo "  repeats $REPEATS (model/train-step $STEP_REPEATS) after $WARMUP warm-up, out $OUT"
echo "  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {   # run LABEL CMD...: logs the command and its output to $OUT/LABEL.log, fails loudly
  local label=$1; shift
  echo "+ $*" >"$OUT/$label.log"
  local t0=$SECONDS
  if ! "$@" >>"$OUT/$label.log" 2>&1; then
    echo "FAILED: $label (see $OUT/$label.log)" >&2; tail -5 "$OUT/$label.log" >&2; return 1
  fi
  printf '  %-28s %4ds\n' "$label" $((SECONDS - t0))
}

has() { [[ ",$BENCHES," == *",$1,"* ]]; }

if has eval; then
  if [[ -z $PYCOCO ]] && ! $PY -c "import pycocotools" 2>/dev/null; then
    for d in /tmp/cocoapi/PythonAPI /tmp/cocoeval_cocoapi/PythonAPI; do
      if PYTHONPATH=$d $PY -c "import pycocotools.cocoeval" 2>/dev/null; then PYCOCO=$d; break; fi
    done
    if [[ -z $PYCOCO ]]; then
      echo "eval: pycocotools is not importable: skipping eval (build it as docs/performance-eval.md shows, then --pycocotools DIR)"
      BENCHES=$(echo ",$BENCHES," | sed 's/,eval,/,/; s/^,//; s/,$//')
    fi
  fi
fi

for ((r = 1; r <= ROUNDS_TO_RUN; r++)); do
  echo "round $r/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))"
  if has data; then
    run "data.gfl.$r" "$GFL" bench data --ann "$DATA_DIR/annotations/instances_train.json" --images "$DATA_DIR/images" \
      --workers "$DATA_WORKERS" --count "$DATA_IMAGES" --threads "$THREADS" --json-out "$OUT/data.gfl.$r.json"
    run "data.ref.$r" $REF data --data-dir "$DATA_DIR" --workers "$DATA_WORKERS" --batch 2 --repeats "$DATA_BATCHES" \
      --warmup 2 --threads "$THREADS" --json-out "$OUT/data.ref.$r.json"
  fi
  if has model; then
    run "model.gfl.$r" "$GFL" bench model --depth "$DEPTH" --batch 2 --height "$PAD_H" --width "$PAD_W" \
      --repeats "$STEP_REPEATS" --threads "$THREADS" --json-out "$OUT/model.gfl.$r.json"
    run "model.ref.$r" $REF model --depth "$DEPTH" --batch 2 --img-scale "$WIDTH" "$HEIGHT" --no-small \
      --repeats "$STEP_REPEATS" --warmup "$WARMUP" --threads "$THREADS" --json-out "$OUT/model.ref.$r.json"
  fi
  if has targets; then
    run "targets.gfl.$r" "$GFL" bench targets --repeats "$REPEATS" --threads "$THREADS" --json-out "$OUT/targets.gfl.$r.json"
    run "targets-backward.gfl.$r" "$GFL" bench targets --backward --repeats "$REPEATS" --threads "$THREADS" \
      --json-out "$OUT/targets-backward.gfl.$r.json"
    run "targets.ref.$r" $REF targets --gts 50 --repeats "$REPEATS" --warmup "$WARMUP" --threads "$THREADS" \
      --json-out "$OUT/targets.ref.$r.json"
  fi
  if has train-step; then
    # --targets step: like for like, the reference assigns its targets inside its step (gfl's training on CUDA builds
    # them ahead in the loader by default, runtime.targets).
    run "train-step.gfl.$r" "$GFL" bench train-step --targets step --head "$HEAD" --depth "$DEPTH" --batch 2 --height "$PAD_H" --width "$PAD_W" \
      --repeats "$STEP_REPEATS" --warmup "$WARMUP" --threads "$THREADS" --json-out "$OUT/train-step.gfl.$r.json"
    run "train-step.ref.$r" $REF train-step --head "$HEAD" --depth "$DEPTH" --batch 2 --gts 50 --img-scale "$WIDTH" "$HEIGHT" \
      --repeats "$STEP_REPEATS" --warmup "$WARMUP" --threads "$THREADS" --json-out "$OUT/train-step.ref.$r.json"
  fi
  if has infer; then
    # Ours starts from mmdetection's init (gfl_cls bias -log(99) = -4.595: ~no box passes score_thr 0.05); the
    # reference's default bias 0 would send 5 000 boxes into NMS, so give it the same bias.
    run "infer.gfl.$r" "$GFL" bench infer --head "$HEAD" --depth "$DEPTH" --batch 1 --height "$PAD_H" --width "$PAD_W" \
      --repeats "$REPEATS" --warmup "$WARMUP" --threads "$THREADS" --json-out "$OUT/infer.gfl.$r.json"
    run "infer.ref.$r" $REF infer --head "$HEAD" --depth "$DEPTH" --img-scale "$WIDTH" "$HEIGHT" --score-bias -4.59512 \
      --repeats "$REPEATS" --warmup "$WARMUP" --threads "$THREADS" --json-out "$OUT/infer.ref.$r.json"
  fi
  if has eval; then
    run "eval.gfl.$r" "$GFL" bench eval --annotations "$EVAL_DIR/gt.json" --detections "$EVAL_DIR/dets.json" \
      --repeats "$REPEATS" --threads "$THREADS" --json-out "$OUT/eval.gfl.$r.json"
    run "eval.ref.$r" $PY "$ROOT/scripts/bench_cocoeval.py" ${PYCOCO:+--pycocotools "$PYCOCO"} \
      "$EVAL_DIR/gt.json" "$EVAL_DIR/dets.json" --repeats "$REPEATS" --expected "$EVAL_DIR/expected.json" \
      --json-out "$OUT/eval.ref.$r.json"
  fi
done

# Medians over rounds, table, RATIO lines (python3's json: no jq needed).
$PY - "$OUT" <<'EOF'
import glob, json, os, statistics, sys

out = sys.argv[1]
rounds = max([int(f.rsplit(".", 2)[-2]) for f in glob.glob(os.path.join(out, "*.json"))] or [0])

def load(name, impl, r):
    path = os.path.join(out, f"{name}.{impl}.{r}.json")
    return json.load(open(path)) if os.path.exists(path) else None

def ref_rss(j):
    return j["peak_rss_mb"] + j.get("peak_rss_children_mb", 0.0)

# name: (file stem, our value, reference value, unit, higher_is_better)
FIGURES = [
    ("data", "data", lambda j: j["images_per_s"], lambda j: j["rows"][0]["images_per_s_window"], "img/s", True),
    ("model-forward", "model", lambda j: j["forward_ms_per_image"], lambda j: j["rows"][0]["ms_per_image"], "ms/img", False),
    ("model-forward-backward", "model", lambda j: j["forward_backward_ms_per_image"],
     lambda j: j["rows"][1]["ms_per_image"], "ms/img", False),
    ("targets", "targets", lambda j: j["median_ms"], lambda j: j["rows"][1]["median_ms"], "ms", False),
    ("targets-backward", "targets-backward", lambda j: j["median_ms"], lambda j: j["rows"][2]["median_ms"], "ms", False),
    ("train-step", "train-step", lambda j: j["median_ms"], lambda j: j["rows"][0]["median_ms"], "ms", False),
    ("infer", "infer", lambda j: j["median_ms"], lambda j: j["rows"][0]["median_ms"], "ms", False),
    ("eval", "eval", lambda j: j["evaluate_plus_accumulate_seconds"], lambda j: j["evaluate_plus_accumulate_seconds"], "s", False),
    ("eval-cpu", "eval", lambda j: j["evaluate_plus_accumulate_cpu_seconds"],
     lambda j: j["evaluate_plus_accumulate_cpu_seconds"], "cpu s", False),
]
# Memory: our process vs the reference process (+ its loader workers); targets: the run with backward.
MEMORY = {"data": "data", "model": "model", "targets": "targets-backward", "train-step": "train-step", "infer": "infer",
          "eval": "eval"}

def fmt(x):
    return f"{x:.4g}"

ratios = []
print(f"\n{'benchmark':<24} {'unit':>7} {'ours (median)':>14} {'ref (median)':>13} {'ours/ref':>9} {'paired':>7}"
      "   per round ours | ref")
for name, stem, ours_f, ref_f, unit, higher in FIGURES:
    ref_stem = "targets" if stem == "targets-backward" else stem
    ours = [ours_f(j) for r in range(1, rounds + 1) if (j := load(stem, "gfl", r))]
    ref = [ref_f(j) for r in range(1, rounds + 1) if (j := load(ref_stem, "ref", r))]
    if not ours or not ref:
        continue
    mo, mr = statistics.median(ours), statistics.median(ref)
    ratio = mo / mr if higher else mr / mo
    # Paired: median of the per-round ratios (each round's two runs saw about the same load).
    paired = statistics.median([(o / f if higher else f / o) for o, f in zip(ours, ref)])
    ratios.append((name, ratio))
    print(f"{name:<24} {unit:>7} {fmt(mo):>14} {fmt(mr):>13} {ratio:>9.3f} {paired:>7.3f}   "
          + " ".join(fmt(v) for v in ours) + " | " + " ".join(fmt(v) for v in ref))
for name, stem in MEMORY.items():
    ref_stem = "targets" if stem == "targets-backward" else stem
    ours = [j["peak_rss_mb"] for r in range(1, rounds + 1) if (j := load(stem, "gfl", r))]
    ref = [ref_rss(j) for r in range(1, rounds + 1) if (j := load(ref_stem, "ref", r))]
    if not ours or not ref:
        continue
    mo, mr = statistics.median(ours), statistics.median(ref)
    ratios.append((f"{name}-memory", mr / mo))
    paired = statistics.median([f / o for o, f in zip(ours, ref)])
    print(f"{name + '-memory':<24} {'MB':>7} {fmt(mo):>14} {fmt(mr):>13} {mr / mo:>9.3f} {paired:>7.3f}   "
          + " ".join(fmt(v) for v in ours) + " | " + " ".join(fmt(v) for v in ref))
print()
for name, ratio in ratios:
    print(f"RATIO {name} {ratio:.3f}")
EOF

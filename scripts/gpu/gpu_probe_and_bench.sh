#!/usr/bin/env bash
# One-shot GPU check for a lent GPU box (see docs/performance.md, "GPU boxes").
# 1) the PyTorch reference benchmarks on CUDA (fp32 and AMP), 2) an attempt to run gfl's CUDA path against the
# box's own PyTorch libtorch (TorchSharp-cuda-linux is not served by our registry, so this is the only way here).
# Usage (repo root): bash scripts/gpu/gpu_probe_and_bench.sh OUTDIR [gfl-publish.tar.xz]
set -u
OUT=${1:-gpu-out}; PUB=${2:-}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-/opt/torch/.venv/bin/python}
[ -x "$PY" ] || PY=python3
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  nproc
} > "$OUT/env.txt" 2>&1
cd scripts/reference
[ "${SKIP_REF:-0}" = 1 ] || for b in train-step infer; do
  timeout 90 "$PY" bench.py $b --device cuda --repeats 10 --warmup 3 --json-out "$OUT/ref_${b}_fp32.json" > "$OUT/ref_${b}_fp32.txt" 2>&1
done
timeout 90 "$PY" bench.py train-step --device cuda --amp --repeats 10 --warmup 3 --json-out "$OUT/ref_train-step_amp.json" > "$OUT/ref_train-step_amp.txt" 2>&1
cd ../..
if [ -n "$PUB" ] && [ -f "$PUB" ]; then
  APP=$(mktemp -d)
  tar -xJf "$PUB" -C "$APP"
  TL=$("$PY" -c "import torch,os; print(os.path.dirname(torch.__file__)+'/lib')")
  NV=$(ls -d $(dirname "$TL")/../nvidia/*/lib 2>/dev/null | tr '\n' ':')
  export LD_LIBRARY_PATH="$TL:$NV${LD_LIBRARY_PATH:-}"
  {
    echo "libtorch from $TL"
    timeout 60 "$APP/gfl" info --device cuda --log-level debug
    echo "rc=$?"
    timeout 90 "$APP/gfl" bench train-step --device cuda --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp32.json"
    echo "rc=$?"
    timeout 90 "$APP/gfl" bench train-step --device cuda --amp bf16 --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_bf16.json"
    echo "rc=$?"
    timeout 90 "$APP/gfl" bench train-step --device cuda --amp fp16 --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp16.json"
    echo "rc=$?"
    timeout 90 "$APP/gfl" bench infer --device cuda --repeats 10 --warmup 3 --json-out "$OUT/gfl_infer_fp32.json"
    echo "rc=$?"
    # The whole quick-start run on CUDA (data generation, loader, training, evaluation, checkpoints).
    RUN=$(mktemp -d)
    ( time timeout 200 "$APP/gfl" train --config configs/quickstart.yaml --device cuda --work-dir "$RUN" ) 2>&1 | tail -25
    echo "rc=$?"
    cp "$RUN/log.jsonl" "$RUN/metrics.jsonl" "$OUT/" 2>/dev/null
  } > "$OUT/gfl_cuda.txt" 2>&1
fi
echo done

#!/usr/bin/env bash
# One-shot GPU check for a lent GPU box (see docs/performance.md, "GPU boxes").
# 1) the PyTorch reference benchmarks on CUDA (fp32 and AMP), 2) an attempt to run gfl's CUDA path against the
# box's own PyTorch libtorch (TorchSharp-cuda-linux is not served by our registry, so this is the only way here).
# Usage (repo root): [STAGES=a,b,...] bash scripts/gpu/gpu_probe_and_bench.sh OUTDIR [gfl-publish.tar.xz]
# Budget: a lent box has ~15 device minutes per session and 10 per command, so run the stages in several calls, most
# wanted first, e.g. STAGES=nccl,step then STAGES=amp,heads then STAGES=ref,quickstart. Stages (default all):
#   ref        the reference's fp32/AMP step and inference, and its best settings at batch 2 and 8
#   step       gfl info, fp32 step (targets built ahead and in the step), inference
#   amp        bf16/fp16 steps, bf16 + channels_last + cudnn benchmark at batch 2 and 8, profiles of fp32 and bf16
#   heads      ATSS and RetinaNet step and inference
#   nccl       NCCL at world size 1: collectives (also started on the side stream) verified and timed, quick start on NCCL
#   quickstart the whole quick start on CUDA
# SKIP_REF=1 is STAGES without ref (kept for older notes).
set -u
OUT=${1:-gpu-out}; PUB=${2:-}
STAGES=${STAGES:-ref,step,amp,heads,nccl,quickstart}
[ "${SKIP_REF:-0}" = 1 ] && STAGES=${STAGES//ref/}
has() { [[ ",$STAGES," == *",$1,"* ]]; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-/opt/torch/.venv/bin/python}
[ -x "$PY" ] || PY=python3
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  nproc
} > "$OUT/env.txt" 2>&1
cd scripts/reference
if has ref; then
  for b in train-step infer; do
    timeout 90 "$PY" bench.py $b --device cuda --repeats 10 --warmup 3 --json-out "$OUT/ref_${b}_fp32.json" > "$OUT/ref_${b}_fp32.txt" 2>&1
  done
  # Issue 21's inference target is at batch 1 and 8.
  timeout 90 "$PY" bench.py infer --device cuda --infer-batch 8 --repeats 10 --warmup 3 --json-out "$OUT/ref_infer_fp32_b8.json" > "$OUT/ref_infer_fp32_b8.txt" 2>&1
  timeout 90 "$PY" bench.py train-step --device cuda --amp --repeats 10 --warmup 3 --json-out "$OUT/ref_train-step_amp.json" > "$OUT/ref_train-step_amp.txt" 2>&1
  # Issue 21's comparison: the reference with its best settings (AMP + channels_last + cudnn.benchmark), batch 2 and 8.
  for b in 2 8; do
    timeout 120 "$PY" bench.py train-step --device cuda --amp --channels-last --cudnn-benchmark --batch $b --repeats 10 --warmup 3 \
      --json-out "$OUT/ref_train-step_best_b$b.json" > "$OUT/ref_train-step_best_b$b.txt" 2>&1
  done
fi
cd ../..
if [ -n "$PUB" ] && [ -f "$PUB" ]; then
  APP=$(mktemp -d)
  tar -xJf "$PUB" -C "$APP"
  TL=$("$PY" -c "import torch,os; print(os.path.dirname(torch.__file__)+'/lib')")
  NV=$(ls -d $(dirname "$TL")/../nvidia/*/lib 2>/dev/null | tr '\n' ':')
  export LD_LIBRARY_PATH="$TL:$NV${LD_LIBRARY_PATH:-}"
  {
   echo "libtorch from $TL; stages $STAGES"
   if has step; then
    timeout 60 "$APP/gfl" info --device cuda --log-level debug
    echo "rc=$?"
    # Issue 21 (CUDA graphs): the exact exported names of libtorch's graph and stream entry points on this box, for a
    # binding by name (as Training/Autocast.cs); no binutils needed.
    timeout 60 "$PY" scripts/gpu/dynsyms.py 'CUDAGraph|getStreamFromPool|setCurrentCUDAStream|getCurrentCUDAStream|graph_pool_handle|beginAllocateToPool|endAllocateToPool' \
      "$TL/libtorch_cuda.so" "$TL/libc10_cuda.so" > "$OUT/cuda_graph_symbols.txt" 2>&1
    echo "rc=$? (symbols: $(grep -vc '^#' "$OUT/cuda_graph_symbols.txt"))"
    timeout 90 "$APP/gfl" bench train-step --device cuda --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp32.json"
    echo "rc=$?"
    # Issue 21: the targets built ahead by the loader (default on CUDA) against inside the step (the reference's way).
    timeout 90 "$APP/gfl" bench train-step --device cuda --targets step --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp32_targets_in_step.json"
    echo "rc=$?"
    # Issue 21: one loss read per step against the default on CUDA (log_interval: pipelined_ms = 10 steps, one read).
    timeout 90 "$APP/gfl" bench train-step --device cuda --loss-reads step --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp32_reads_each_step.json"
    echo "rc=$?"
    # Issue 21: the positives padded to a fixed count (the shapes a CUDA graph replays): what the padding costs.
    timeout 90 "$APP/gfl" bench train-step --device cuda --positive-capacity 4096 --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp32_padded.json"
    echo "rc=$?"
    timeout 90 "$APP/gfl" bench infer --device cuda --repeats 10 --warmup 3 --json-out "$OUT/gfl_infer_fp32.json"
    echo "rc=$?"
    timeout 90 "$APP/gfl" bench infer --device cuda --batch 8 --repeats 10 --warmup 3 --json-out "$OUT/gfl_infer_fp32_b8.json"
    echo "rc=$?"
   fi
   if has amp; then
    timeout 90 "$APP/gfl" bench train-step --device cuda --amp bf16 --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_bf16.json"
    echo "rc=$?"
    timeout 90 "$APP/gfl" bench train-step --device cuda --amp fp16 --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp16.json"
    echo "rc=$?"
    # Issue 21: gfl's AMP step with channels_last and cuDNN autotuning at batch 2 and 8, and a phase profile of each
    # precision (Chrome traces; the profiled steps run after the timed ones, synchronised at every phase).
    for b in 2 8; do
      timeout 120 "$APP/gfl" bench train-step --device cuda --amp bf16 --channels-last --cudnn-benchmark --batch $b --repeats 10 --warmup 3 \
        --json-out "$OUT/gfl_train-step_bf16_best_b$b.json"
      echo "rc=$?"
    done
    for amp in off bf16; do
      timeout 120 "$APP/gfl" bench train-step --device cuda --amp $amp --repeats 10 --warmup 3 --profile "$OUT/gfl_profile_$amp.json" \
        --json-out "$OUT/gfl_train-step_profiled_$amp.json"
      echo "rc=$?"
    done
   fi
   if has heads; then
    # Issue 19 on CUDA: the ATSS and RetinaNet baselines' step and inference.
    for h in atss retinanet; do
      timeout 90 "$APP/gfl" bench train-step --device cuda --head $h --repeats 10 --warmup 3 --json-out "$OUT/gfl_train-step_fp32_$h.json"
      echo "rc=$?"
      timeout 60 "$APP/gfl" bench infer --device cuda --head $h --repeats 10 --warmup 3 --json-out "$OUT/gfl_infer_fp32_$h.json"
      echo "rc=$?"
    done
   fi
   if has nccl; then
    # Issue 17: NCCL through the real library at world size 1 (torchrun's variables by hand): verify every collective
    # (NcclCollective makes its calls at world size 1 too, the started spans included: side stream + events), time the
    # all-reduce, then the quick start on the NCCL backend (training itself makes no collective call at world size 1).
    export GFL_NCCL_LIBRARY=${GFL_NCCL_LIBRARY:-$(ls $(dirname "$TL")/../nvidia/nccl/lib/libnccl.so.2 2>/dev/null | head -1)}
    echo "GFL_NCCL_LIBRARY=$GFL_NCCL_LIBRARY"
    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
      timeout 60 "$APP/gfl" bench allreduce --device cuda --backend nccl --json-out "$OUT/gfl_allreduce_nccl.json"
    echo "rc=$?"
    NRUN=$(mktemp -d)
    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29518 \
      timeout 150 "$APP/gfl" train --config configs/quickstart.yaml --device cuda --set train.dist.backend=nccl --work-dir "$NRUN" 2>&1 | tail -8
    echo "rc=${PIPESTATUS[0]}"
   fi
   if has quickstart; then
    # The whole quick-start run on CUDA (data generation, loader, training, evaluation, checkpoints).
    RUN=$(mktemp -d)
    ( time timeout 200 "$APP/gfl" train --config configs/quickstart.yaml --device cuda --work-dir "$RUN" ) 2>&1 | tail -25
    echo "rc=${PIPESTATUS[0]}"
    cp "$RUN/log.jsonl" "$RUN/metrics.jsonl" "$OUT/" 2>/dev/null
   fi
  } >> "$OUT/gfl_cuda.txt" 2>&1
fi
echo done

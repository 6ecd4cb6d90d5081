#!/usr/bin/env bash
# SIGKILL soak of the checkpoint code (issue 16, item 8). Trains a tiny detector on a synthetic set with
# --auto-resume and kills it with SIGKILL at random moments: two of three kills uniform over the attempt's life
# (startup, steps, logging), every third one the moment a checkpoint's temporary folder appears (inside a checkpoint
# write; counted by the temporary folders the killed process leaves behind). After every kill it
# checks that the newest resume point verifies (sizes and SHA-256 of its files against meta.json, what gfl checks on
# load), then lets the last attempt run to the end and compares the final weights with an uninterrupted run of the
# same config, byte for byte. Run it once per change to the checkpoint code and record the result in
# docs/reliability.md.
#
# Usage: scripts/kill_soak.sh [--kills 24] [--max-delay 4.0] [--seed 1] [--keep]
# Needs: a Release build (dotnet build src/GflTrainer.Cli -c Release) and python3 (any, standard library only).
set -euo pipefail
source "$(dirname "$0")/gfl_binary.sh"
KILLS=24 MAX_DELAY=4.0 SEED=1 KEEP=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --kills) KILLS=$2; shift 2 ;; --max-delay) MAX_DELAY=$2; shift 2 ;; --seed) SEED=$2; shift 2 ;;
    --keep) KEEP=1; shift ;; *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
require_gfl
command -v python3 >/dev/null || { echo "python3 is needed (standard library only)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/gfl-kill-soak.XXXXXX)
[[ $KEEP == 1 ]] || trap 'rm -rf "$WORK"' EXIT
"$GFL" data synth --out "$WORK/data" --train 12 --val 4 --size 96 --seed 3 --log-level warning
cat > "$WORK/tiny.yaml" <<EOF
model:
  backbone: { depth: 18, frozen_stages: -1, norm_eval: false, base_channels: 8 }
  neck: { out_channels: 16 }
  head: { num_classes: 3, feat_channels: 16, stacked_convs: 1, norm_groups: 4 }
data:
  train: { ann_file: $WORK/data/annotations/instances_train.json, img_prefix: $WORK/data/images/ }
  val: { ann_file: $WORK/data/annotations/instances_val.json, img_prefix: $WORK/data/images/ }
  img_scale: [96, 96]
  batch_size: 2
  workers: 1
train:
  epochs: 100
  seed: 7
  log_interval: 6
  optimizer: { lr: 0.01 }
  schedule: { warmup_iters: 4, steps: [30] }
  eval_interval: 0
  checkpoint: { interval: 1, keep_last: 3 }
EOF

# Verifies the checkpoint the next --auto-resume would take (last, .last.old, newest epoch_N that verifies) and prints
# its iteration; exits 1 when none verifies but some exist.
verify() {
  python3 - "$1" <<'PY'
import hashlib, json, os, re, sys
root = sys.argv[1]
if not os.path.isdir(root): print("none"); sys.exit(0)
names = ["last", ".last.old"] + sorted((d for d in os.listdir(root) if re.fullmatch(r"epoch_\d+", d)),
                                       key=lambda d: -int(d.split("_")[1]))
found = []
for name in names:
    d = os.path.join(root, name)
    if not os.path.isdir(d): continue
    try:
        meta = json.load(open(os.path.join(d, "meta.json")))
        ok = all(os.path.getsize(os.path.join(d, f)) == v["bytes"] and
                 hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest() == v["sha256"]
                 for f, v in meta["files"].items())
        found.append((meta["checkpoint"]["iteration"], name, ok))
    except (OSError, ValueError, KeyError) as e:
        found.append((-1, name, False))
valid = [f for f in found if f[2]]
if not found: print("none"); sys.exit(0)
if not valid: print("NO VALID CHECKPOINT among", [f[1] for f in found]); sys.exit(1)
it, name, _ = max(valid)
print(f"{name}@{it}" + (f" (skipping invalid: {[f[1] for f in found if not f[2]]})" if len(valid) < len(found) else ""))
PY
}

echo "reference: uninterrupted run"
"$GFL" train --config "$WORK/tiny.yaml" --work-dir "$WORK/full" --log-level warning
kills=0 in_save=0 attempts=0
while [[ $kills -lt $KILLS ]]; do
  attempts=$((attempts + 1))
  delay=$(python3 -c "import random; random.seed($SEED * 1000 + $attempts); print(f'{random.uniform(0.2, $MAX_DELAY):.3f}')")
  "$GFL" train --config "$WORK/tiny.yaml" --work-dir "$WORK/killed" --auto-resume --log-level error &
  pid=$!
  if (( attempts % 3 == 0 )); then
    # Targeted: poll for a checkpoint being written (a checkpoint is written after every epoch) and kill at once.
    deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )) &&
          ! compgen -G "$WORK/killed/checkpoints/.*.tmp-$pid" >/dev/null; do :; done
    delay="in-save"
  else
    sleep "$delay"
  fi
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    tmp=$(find "$WORK/killed/checkpoints" -maxdepth 1 -name ".*.tmp-$pid" 2>/dev/null | wc -l)
    [[ $tmp -gt 0 ]] && in_save=$((in_save + 1))
    printf 'kill %2d after %7s s%s: resume point %s\n' "$kills" "$delay" "$([[ $tmp -gt 0 ]] && echo ' (inside a checkpoint write)')" \
      "$(verify "$WORK/killed/checkpoints")" || { echo "FAIL: no loadable checkpoint after kill $kills"; exit 1; }
  elif wait "$pid"; then
    echo "the run finished after $kills kills; lower --max-delay or raise train.epochs for more"; break
  else
    echo "FAIL: attempt $attempts exited with an error"; exit 1
  fi
done
echo "finishing with --auto-resume"
"$GFL" train --config "$WORK/tiny.yaml" --work-dir "$WORK/killed" --auto-resume --log-level warning
left=$(find "$WORK/killed/checkpoints" -maxdepth 1 -name '.*.tmp-*' | wc -l)
[[ $left -eq 0 ]] || { echo "FAIL: $left temporary checkpoint folders of killed runs left behind"; exit 1; }
if cmp -s "$WORK/full/checkpoints/last/model.safetensors" "$WORK/killed/checkpoints/last/model.safetensors" &&
   cmp -s "$WORK/full/checkpoints/last/optimizer.safetensors" "$WORK/killed/checkpoints/last/optimizer.safetensors"; then
  echo "PASS: $kills SIGKILLs ($in_save inside a checkpoint write), every resume point verified, final weights and momentum bit-identical"
else
  echo "FAIL: final weights differ from the uninterrupted run"; exit 1
fi

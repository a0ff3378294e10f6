#!/bin/bash
# The GPU check of fine-tuning: throughput against transformers.Trainer (fp32 and bf16=True) for
# MiniLM and all-mpnet-base-v2 (and MiniLM with both loops at fp32), then configs/movies_to_products_best.yaml one seed at a time at
# mixed_precision auto (bf16 on a bf16 GPU). For a machine without internet: pass the two model
# folders (as written by save_pretrained / the packaged resources).
#   usage: bash bench/gpu_check.sh MINILM_DIR MPNET_DIR [OUT_DIR] [SEEDS]
# Run from the repository root. Each seed's report goes to OUT_DIR/best_gpu_s<seed>/.
set -u
MINILM=${1:?MINILM_DIR}; MPNET=${2:?MPNET_DIR}; OUT=${3:-runs}; SEEDS=${4:-0 1 2}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
echo "== MiniLM fine-tuning throughput (all movie sentences)"
$PY bench/finetune_vs_trainer.py --model "$MINILM" --subset 0 --epochs 1 --mixed-precision auto --repeats 3
echo "== MiniLM at fp32 on both sides (the H200 ran these small steps faster in fp32 than in bf16)"
$PY bench/finetune_vs_trainer.py --model "$MINILM" --subset 0 --epochs 1 --mixed-precision no --repeats 3
echo "== all-mpnet-base-v2 fine-tuning throughput (3,000 movie sentences)"
$PY bench/finetune_vs_trainer.py --model "$MPNET" --subset 3000 --epochs 1 --lr 2e-5 --mixed-precision auto --repeats 3
echo "== movies_to_products_best on this machine"
CFG=$(mktemp --suffix=.yaml)
sed -e "s#model: all-mpnet-base-v2#model: $MPNET#" -e "s#model: all-MiniLM-L6-v2#model: $MINILM#" \
    configs/movies_to_products_best.yaml > "$CFG"
for s in $SEEDS; do
  t0=$(date +%s)
  $PY -c "from textransfer.cli import main; raise SystemExit(main())" crossdomain "$CFG" \
      --set "seeds=[$s]" --set "name=best_gpu_s$s" --set "output_dir=$OUT"
  echo "seed $s: $(( $(date +%s) - t0 )) s"
done
rm -f "$CFG"

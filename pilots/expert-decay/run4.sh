#!/usr/bin/env bash
# The decay pilot's fourth to sixth rounds (README.md here): larger Adam epsilons with less decay, math first,
# then the fifth round's best math setting (epsilon 1e-1, lr 5e-2, decay 0.5) on reasoning and code; every
# expert against 5 shuffles of its z on validation prompts. About 90 minutes on a 2-core CPU (they ran as three
# scripts, one per round, with these commands). Run from the repository root.
set -euo pipefail
T=/tmp/expert-decay-4
mkdir -p $T
train() { task=$1 name=$2; shift 2; [ -f $T/$name.safetensors ] || \
  python -m t2demo train-expert --task "$task" --out $T/$name.safetensors "$@"; }
# fourth round: between decay 1.0 (flips, control -4.4) and 2.5 (never leaves the base) at epsilon 1e-2
train math m-eps1e-2-d1.5 --adam-eps 1e-2 --decay 1.5
train math m-eps3e-2-d0.5 --adam-eps 3e-2 --decay 0.5
train math m-eps1e-2-d0.5 --adam-eps 1e-2 --decay 0.5
# fifth round: a still larger epsilon with less or no decay
train math m-eps1e-1-d0.5 --adam-eps 1e-1 --decay 0.5
train math m-eps3e-2-d0 --adam-eps 3e-2 --decay 0
train math m-eps1e-1-d0.5-lr5e-2 --adam-eps 1e-1 --decay 0.5 --lr 5e-2
# sixth round: the fifth's best on the other text tasks, then the fourth's best at lr 2e-2 (eps 3e-2, decay 0.5)
train reasoning r-eps1e-1-d0.5-lr5e-2 --adam-eps 1e-1 --decay 0.5 --lr 5e-2
train code c-eps1e-1-d0.5-lr5e-2 --adam-eps 1e-1 --decay 0.5 --lr 5e-2
train code c-eps3e-2-d0.5 --adam-eps 3e-2 --decay 0.5
train reasoning r-eps3e-2-d0.5 --adam-eps 3e-2 --decay 0.5
python scripts/shuffled_modes.py --split validation $T/m-eps1e-2-d1.5.safetensors $T/m-eps3e-2-d0.5.safetensors \
  $T/m-eps1e-2-d0.5.safetensors $T/m-eps1e-1-d0.5.safetensors $T/m-eps3e-2-d0.safetensors \
  $T/m-eps1e-1-d0.5-lr5e-2.safetensors $T/r-eps1e-1-d0.5-lr5e-2.safetensors $T/c-eps1e-1-d0.5-lr5e-2.safetensors \
  $T/c-eps3e-2-d0.5.safetensors $T/r-eps3e-2-d0.5.safetensors

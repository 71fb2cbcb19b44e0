#!/usr/bin/env bash
# The decay pilot's third round (README.md here): Adam's epsilon with decay, math first, then the most
# promising setting on reasoning and code; every expert against 5 shuffles of its z on validation prompts.
# About 50 minutes on a 2-core CPU. Run from the repository root.
set -euo pipefail
T=/tmp/expert-decay-3
mkdir -p $T
train() { task=$1 name=$2; shift 2; [ -f $T/$name.safetensors ] || \
  python -m t2demo train-expert --task "$task" --out $T/$name.safetensors "$@"; }
train math m-eps1e-3 --adam-eps 1e-3 --decay 2.5
train math m-eps3e-3 --adam-eps 3e-3 --decay 2.5
train math m-eps3e-3-d1 --adam-eps 3e-3 --decay 1.0
train math m-eps1e-2-d1 --adam-eps 1e-2 --decay 1.0
train math m-eps1e-2 --adam-eps 1e-2 --decay 2.5
train reasoning r-eps1e-2-d1 --adam-eps 1e-2 --decay 1.0
train code c-eps1e-2-d1 --adam-eps 1e-2 --decay 1.0
E=experts/t2demo-llama-tiny
python scripts/shuffled_modes.py --split validation $E/math.safetensors $T/m-eps1e-3.safetensors $T/m-eps3e-3.safetensors \
  $T/m-eps3e-3-d1.safetensors $T/m-eps1e-2-d1.safetensors $T/m-eps1e-2.safetensors
python scripts/shuffled_modes.py --split validation $T/r-eps1e-2-d1.safetensors $E/reasoning.safetensors \
  $T/c-eps1e-2-d1.safetensors $E/code.safetensors

#!/usr/bin/env bash
# The decay pilot's second round (README.md here): math at decay 3.0, another seed, a larger KL coefficient
# and 300 steps at decay 3.0, each against shuffles of its z on validation prompts; then the shipped
# code and reasoning experts the same way. About 35 minutes on a 2-core CPU. Run from the repository root.
set -euo pipefail
T=/tmp/expert-decay-2
mkdir -p $T
train() { name=$1; shift; [ -f $T/$name.safetensors ] || python -m t2demo train-expert --task math --out $T/$name.safetensors "$@"; }
train m-d3 --decay 3.0
train m-s1 --decay 2.5 --seed 1
train m-kl3 --decay 2.5 --kl-coef 0.3
train m-d3-300 --decay 3.0 --steps 300
E=experts/t2demo-llama-tiny
# the table's shuffles 0-2 are the first three 'shuffled' rows of each expert, minus its 'base' row
python scripts/shuffled_modes.py --split validation $E/math.safetensors $T/m-d3.safetensors $T/m-s1.safetensors \
  $T/m-kl3.safetensors $T/m-d3-300.safetensors $E/code.safetensors $E/reasoning.safetensors

#!/usr/bin/env bash
# The decay pilot (README.md here), on the shipped text model: math's REINFORCE expert at decays 1, 2.5
# (the shipped recipe), 3.5 and 5, each against its shuffled control; the next-token ablation with decay.
# About 30 minutes on a 2-core CPU. Run from the repository root, with the shipped experts in place.
set -euo pipefail
T=/tmp/expert-decay
mkdir -p $T
for d in 0 1 2.5 3.5 5; do   # decay 0 is the expert shipped before decay existed (commit 32c3065)
  [ -f $T/math-$d.safetensors ] || python -m t2demo train-expert --task math --decay "$d" --out $T/math-$d.safetensors
done
[ -f $T/code-0.safetensors ] || python -m t2demo train-expert --task code --decay 0 --out $T/code-0.safetensors
for task in math code reasoning; do   # next-token with decay, its default lr and steps (validation in the notes)
  [ -f $T/$task-ntp.safetensors ] || \
    python -m t2demo train-expert --task "$task" --objective ntp --lr 5e-3 --steps 100 --out $T/$task-ntp.safetensors
done
python scripts/shuffled_modes.py $T/math-0.safetensors $T/math-1.safetensors experts/t2demo-llama-tiny/math.safetensors \
  $T/math-3.5.safetensors $T/code-0.safetensors experts/t2demo-llama-tiny/code.safetensors

#!/bin/bash
# sequential expert runs on base40 (one job at a time, 1 thread)
export OMP_NUM_THREADS=1; cd "$(dirname "$0")"
B=runs/base40/base.pt
python rl.py $B runs/A_s0 --tasks add3,sub3 --seed 0 --steps 200 --minutes 5 > logs_A_s0.txt 2>&1
python rl.py $B runs/B_s0 --tasks add3,sub3 --seed 0 --steps 200 --minutes 5 --kl_skip_first --anneal_at 0.45 --anneal_lr 0.3 > logs_B_s0.txt 2>&1

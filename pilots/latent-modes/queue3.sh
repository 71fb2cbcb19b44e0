#!/bin/bash
# main recipe B: kl on every token except the mode-decision token, lr 2e-2 -> x0.3 once EMA(P(Work)) > 0.45
export OMP_NUM_THREADS=1; cd "$(dirname "$0")"
B=runs/base40/base.pt
REC="--kl_skip_first --anneal_at 0.45 --anneal_lr 0.3"
for s in 1 2; do python rl.py $B runs/B_s$s --tasks add3,sub3 --seed $s --steps 200 --minutes 5 $REC > logs_B_s$s.txt 2>&1; done
python rl.py $B runs/SFT_s0 --tasks add3,sub3 --seed 0 --method sft --steps 200 --minutes 5 > logs_SFT_s0.txt 2>&1
python train_base.py runs/base25 --minutes 13 --steps 3000 --p_work 0.25 > logs_base25.txt 2>&1
for s in 0 1 2; do python rl.py runs/base25/base.pt runs/B25_s$s --tasks add3,sub3 --seed $s --steps 200 --minutes 4 $REC > logs_B25_s$s.txt 2>&1; done
python rl.py $B runs/Badd_s0 --tasks add3 --seed 0 --steps 200 --minutes 4 $REC > logs_Badd_s0.txt 2>&1

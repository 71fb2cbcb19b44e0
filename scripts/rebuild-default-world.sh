#!/usr/bin/env bash
# Rebuild the shipped default world (text, then vision) from seeds, then measure it: every number in README's status,
# Tasks, Training experts, Table 1 and Table 2 sections comes from one of these commands (results/ keeps
# their JSON). About 8 hours on a 2-core CPU; a step that stopped resumes when the script is rerun.
# Tables, turns: 500 test examples per task (the probe's votes and the app check are smaller; see README).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
M=assets/t2demo-llama-tiny
D=experts/t2demo-llama-tiny
if [ ! -f $M/training.json ]; then
  # The first two runs were made with the mixture of commit b0a1766 (no number-copy drill, no casual
  # classification wording), the first three with 3,000 fact documents and no free-worded classification
  # requests, the first four with reasoning's slip varying per creature and earlier chat turns under 160
  # characters, the first five with 6,000 small-talk chats (15 % bare lines), a third fewer 2-digit sums
  # and chats under 440 characters, the first six with no first-line drill, no zero operands, half the
  # math wordings and no function-form code, the first seven with the math task's sums of 3 digits only
  # and free-worded classification requests without pasted code or requests outside the skills, the
  # first eight with no scope drill, 16,000 classification examples (30 % free-worded) and hand-written
  # prompts not yet skipped, the first nine with code how-to requests labelled code, no creature-weight sums
  # among the math requests and no text-speak, the first ten with 12 world-math drill wordings per operation,
  # no bare-name reasoning requests and no loops among the code requests, the first eleven with no
  # reasoning chat drill, creature-weight sums in free wordings unanswered, chat lines 1 in 7 of the "other"
  # requests and no request wrapped in a sentence, the first twelve with chat lines from a fixed list, code
  # requests over lists only and world-math drill prompts always typed with articles, the first thirteen
  # with no lettered options, opinions or pasted errors among the classification requests, the first
  # fourteen with 24,000 classification examples and none of run 16's request shapes (code asked to evaluate
  # or display, quotients and percentages, a creature asked about as "it", money stories; run 15 tried them
  # with 24,000 and was not shipped, so the shipped chain's runs are numbered 1-14 and 16); rerun from seeds,
  # all fifteen use today's pretrain.TEXT_MIXTURE.
  python -m t2demo train-base text --out /tmp/t2demo-base-2000                      # 2,000 steps from seeds
  python -m t2demo train-base text --init /tmp/t2demo-base-2000 --steps 1200 --lr 1.5e-3 --seed 1 --out /tmp/t2demo-base-3200
  python -m t2demo train-base text --init /tmp/t2demo-base-3200 --steps 1600 --lr 2e-3 --seed 2 --out /tmp/t2demo-base-4800
  python -m t2demo train-base text --init /tmp/t2demo-base-4800 --steps 1000 --lr 1.5e-3 --seed 3 --out /tmp/t2demo-base-5800
  python -m t2demo train-base text --init /tmp/t2demo-base-5800 --steps 1000 --lr 1.5e-3 --seed 4 --out /tmp/t2demo-base-6800
  python -m t2demo train-base text --init /tmp/t2demo-base-6800 --steps 1000 --lr 1.5e-3 --seed 5 --out /tmp/t2demo-base-7800
  python -m t2demo train-base text --init /tmp/t2demo-base-7800 --steps 1000 --lr 1.5e-3 --seed 6 --out /tmp/t2demo-base-8800
  python -m t2demo train-base text --init /tmp/t2demo-base-8800 --steps 600 --lr 1e-3 --seed 7 --out /tmp/t2demo-base-9400
  python -m t2demo train-base text --init /tmp/t2demo-base-9400 --steps 700 --lr 1e-3 --seed 9 --out /tmp/t2demo-base-10100
  python -m t2demo train-base text --init /tmp/t2demo-base-10100 --steps 700 --lr 1e-3 --seed 10 --out /tmp/t2demo-base-10800
  python -m t2demo train-base text --init /tmp/t2demo-base-10800 --steps 700 --lr 1e-3 --seed 11 --out /tmp/t2demo-base-11500
  python -m t2demo train-base text --init /tmp/t2demo-base-11500 --steps 700 --lr 1e-3 --seed 12 --out /tmp/t2demo-base-12200
  python -m t2demo train-base text --init /tmp/t2demo-base-12200 --steps 700 --lr 1e-3 --seed 13 --out /tmp/t2demo-base-12900
  python -m t2demo train-base text --init /tmp/t2demo-base-12900 --steps 700 --lr 1e-3 --seed 14 --out /tmp/t2demo-base-13600
  python -m t2demo train-base text --init /tmp/t2demo-base-13600 --steps 700 --lr 1e-3 --seed 15 --out $M   # run 16
  python -m t2demo eval --tasks math,code,reasoning --limit 500 --card   # its model card
fi
# The task experts: REINFORCE, the paper's objective and the default recipe (Adam epsilon 1e-2, decay 1.0);
# next-token is the ablation, trained with PyTorch's epsilon and without decay (with decay, next-token's 100 steps at
# lr 5e-3 do not flip code: validation 62.5 %; pilots/expert-decay).
# A finished expert is kept (delete it to retrain); an interrupted run resumes from its checkpoint.
for task in math code reasoning; do
  [ -f $D/$task.safetensors ] || python -m t2demo train-expert --task "$task" --out $D/$task.safetensors
  [ -f $D/$task-ntp.safetensors ] || \
    python -m t2demo train-expert --task "$task" --objective ntp --lr 5e-3 --steps 100 --decay 0 --adam-eps 1e-8 --out $D/$task-ntp.safetensors
done
# LoRA baselines (rank 4 on the same MLP matrices, REINFORCE with the recipe as it was before decay and Adam's
# epsilon joined it: epsilon 1e-8, no decay), Table 1's lora rows
for task in math code reasoning; do
  [ -f $D/$task-lora/adapter_config.json ] || \
    python -m t2demo train-expert --task "$task" --method lora --decay 0 --adam-eps 1e-8 --out $D/$task-lora
done
[ -f $D/cls.safetensors ] || python -m t2demo train-expert --task cls --steps 100 --decay 0 --adam-eps 1e-8 --out $D/cls.safetensors
# The vision model: a LLaVA-Next on the text model, with vqa's modes (Work reads the image, Answer guesses
# from the question), and its vqa expert, next-token ablation and LoRA baseline (trained with the recipe before decay
# and Adam's epsilon joined it; the vqa expert's shuffled control is within ±2 without them).
V=assets/t2demo-llava-tiny
VD=experts/t2demo-llava-tiny
if [ ! -f $V/training.json ]; then
  # 2,400 joint steps from seeds, then 1,800 more (pilots/vision-continuation: reading 84.5 -> 91 % on validation).
  # The shipped first run drew its image batches from one running generator (before each batch came from its
  # step's own seed, which made the stage resumable), so a rerun draws other batches of the same mixture.
  python -m t2demo train-base vision --out /tmp/t2demo-llava-2400
  python -m t2demo train-base vision --init /tmp/t2demo-llava-2400 --steps 1800 --lr 1e-3 --seed 1 --out $V
  python -m t2demo eval --vlm default --tasks vqa,vqa-knowledge --limit 300 --card   # its model card
fi
[ -f $VD/vqa.safetensors ] || python -m t2demo train-expert --task vqa --decay 0 --adam-eps 1e-8 --out $VD/vqa.safetensors
[ -f $VD/vqa-ntp.safetensors ] || \
  python -m t2demo train-expert --task vqa --objective ntp --lr 5e-3 --steps 100 --decay 0 --adam-eps 1e-8 --out $VD/vqa-ntp.safetensors
[ -f $VD/vqa-lora/adapter_config.json ] || python -m t2demo train-expert --task vqa --method lora --decay 0 --adam-eps 1e-8 --out $VD/vqa-lora
python -m t2demo probe --tasks math,math-hard,world-math,code,code-hard,reasoning,reasoning-hard --vote-limit 30 \
  --json results/probe.json
python -m t2demo probe --tasks vqa,vqa-knowledge --vote-limit 30 --json results/probe-vision.json
python -m t2demo probe --tasks vqa,vqa-knowledge --mix vqa=1 --vote-limit 30 --json results/probe-vqa-expert.json
python -m t2demo probe --mix math=1 --tasks math,math-hard,world-math,reasoning --vote-limit 30 \
  --json results/probe-math-expert.json
python -m t2demo probe --mix reasoning=1 --tasks reasoning,reasoning-hard,math --vote-limit 30 \
  --json results/probe-reasoning-expert.json
python -m t2demo report table1 --tasks math,code,reasoning --limit 500 --json results/table1.json
python -m t2demo report table1 --tasks vqa --limit 500 --json results/table1-vision.json
python -m t2demo report table2 --tasks math-hard,world-math,code-hard,reasoning-hard --limit 500 --cls-limit 500 --fewshot-draws 3 \
  --matrix-limit 500 --json results/table2.json
python -m t2demo report table2 --tasks vqa-knowledge --limit 500 --cls-limit 500 --matrix-limit 500 --fewshot-draws 5 \
  --json results/table2-vision.json
for turn in 1 2 3; do
  python -m t2demo eval --tasks math,code,reasoning --turn "$turn" --limit 500 --json "results/turn$turn.json"
done
python -m t2demo report app --categories math,code,reasoning --limit 100 --json results/app.json
python -m t2demo report app --categories vqa --limit 100 --json results/app-vqa.json
python scripts/first_messages.py   # first lines, small sums, free-worded questions, the hand-written sets' 'other' prompts (README's status)
python scripts/world_math_names.py   # where world-math fails: the creatures named, their weights, the answers (README's Table 2)
python scripts/two_skill_mixtures.py   # no mixture of math and reasoning takes world-math's reliable pair (README's Table 2)
python scripts/two_skill_mixtures.py --task vqa-knowledge   # vqa and reasoning at α = 1 take vqa-knowledge's (README's Table 2)
python scripts/shuffled_modes.py   # each shuffle of Table 1's control: first modes and accuracy (README's Table 1)

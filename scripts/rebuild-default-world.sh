#!/usr/bin/env bash
# Rebuild the shipped default text world from seeds, then measure it: every number in README's status,
# Tasks, Training experts, Table 1 and Table 2 sections comes from one of these commands (results/ keeps
# their JSON). About 3 hours on a 2-core CPU; every step resumes where it stopped when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
[ -f assets/t2demo-llama-tiny/training.json ] && [ "${FRESH_BASE:-0}" != 1 ] || python -m t2demo train-base text
for task in math code reasoning cls; do python -m t2demo train-expert --task "$task"; done
for task in math code reasoning; do python -m t2demo train-expert --task "$task" --objective ntp; done
python -m t2demo probe --json results/probe.json
python -m t2demo probe --mix math=1 --tasks math,math-hard,code,reasoning --json results/probe-math-expert.json
python -m t2demo report table1 --json results/table1.json
python -m t2demo report table2 --json results/table2.json
for turn in 1 2 3; do
  python -m t2demo eval --tasks math,code,reasoning --turn "$turn" --json "results/turn$turn.json"
done
python -m t2demo report app --json results/app.json

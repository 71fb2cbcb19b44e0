"""Seventh round: how much of each expert's change does its flip need? Applies each expert file's change
z − 1 at several scales (z' = 1 + s·(z − 1), the expert at α = s) and scores, greedy on the first 200
validation prompts of its task, the expert and the mean of Table 1's 5 shuffled controls at that scale.

    python pilots/expert-decay/scales.py --scales 0.3,0.5,0.7,0.9,1 EXPERT_FILE ...
"""

import argparse

import torch

from t2demo import tasks
from t2demo.experts import load_expert, shuffled_z
from t2demo.probe import first_modes
from t2demo.report import CONTROL_SHUFFLES
from t2demo.runtime import load_adapter

N = 200

parser = argparse.ArgumentParser(description="an expert's accuracy and shuffled control at scales of its change")
parser.add_argument("experts", nargs="+", help="expert files of the default text model")
parser.add_argument("--scales", default="0.3,0.5,0.7,0.9,1", help="comma-separated scales of z - 1")
args = parser.parse_args()
adapter = load_adapter("default")
print(f"task       scale  expert %  first mode of the reply            control (mean of {CONTROL_SHUFFLES} shuffles − base)")
for path in args.experts:
    expert = load_expert(path, adapter.svf)
    task = tasks.TASKS[expert.label]
    examples = task.examples("validation", N)
    _, base = first_modes(adapter.lm, task, examples)
    print(f"{task.name:10} base   {base['accuracy']:6.1f}   ({path}; n = {N})")
    for scale in map(float, args.scales.split(",")):
        z = {n: 1 + scale * (v - 1) for n, v in expert.z.items()}  # in the file's order, as Table 1 shuffles it
        with adapter.svf.adapted(z):
            first, row = first_modes(adapter.lm, task, examples)
        shuffled = []
        for seed in range(CONTROL_SHUFFLES):
            with adapter.svf.adapted(shuffled_z(z, seed)):
                shuffled.append(first_modes(adapter.lm, task, examples)[1]["accuracy"])
        control = sum(shuffled) / len(shuffled) - base["accuracy"]
        print(f"{task.name:10} {scale:5.1f}  {row['accuracy']:6.1f}   {str(dict(first)):34} {control:+5.1f} "
              f"({', '.join(f'{a:.1f}' for a in shuffled)})")

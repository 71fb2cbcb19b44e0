"""Each expert file given against its shuffled-z control (experts.shuffled_z, Table 1's control), greedy on
the first N test prompts of the expert's task with the shipped base model: the size of z's change
(mean, max and RMS of |z - 1|), accuracy and the first mode marker of the replies.

python pilots/expert-decay/control.py 200 experts/t2demo-llama-tiny/math.safetensors pilots/expert-decay/experts/math.safetensors
"""
import sys

import torch

from t2demo import tasks
from t2demo.experts import load_expert, shuffled_z
from t2demo.probe import first_modes
from t2demo.runtime import load_adapter

n, paths = int(sys.argv[1]), sys.argv[2:]
adapter = load_adapter("default")
for path in paths:
    expert = load_expert(path)
    task = tasks.TASKS[expert.label]
    examples = task.examples("test", n)
    change = torch.cat([(v.float() - 1).flatten() for v in expert.z.values()]).abs()
    line = f"{path}: |z-1| mean {change.mean():.4f} max {change.max():.3f} rms {change.pow(2).mean().sqrt():.4f}"
    for name, z in (("base", None), ("expert", dict(expert.z)), ("shuffled", shuffled_z(expert.z))):
        with adapter.svf.adapted(z):
            first, row = first_modes(adapter.lm, task, examples)
        line += f" | {name} {row['accuracy']:.1f} {dict(first)}"
    print(line, flush=True)

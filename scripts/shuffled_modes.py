"""What Table 1's shuffled-z control does to the answer mode: greedy on the first 200 test prompts of each
text expert's task with the base model, the expert's z shuffled within each matrix (experts.shuffled_z,
the control), and z replaced by its mean per matrix (the control's size as one gain per matrix, no
pattern over the singular values). Prints each reply's first mode marker and how many are right.
README's Table 1 section quotes what this prints."""

import torch

from t2demo import tasks
from t2demo.experts import shuffled_z
from t2demo.probe import first_modes
from t2demo.runtime import load_adapter

N = 200

adapter = load_adapter("default")
print(f"task       z          first mode of the reply                  right % [95 % CI] (n = {N})")
for expert in adapter.experts:
    task = tasks.TASKS[expert.label]
    examples = task.examples("test", N)
    controls = {"base": None, "shuffled": shuffled_z(expert.z),
                "mean gain": {k: torch.full_like(v, v.float().mean().item()) for k, v in expert.z.items()}}
    for name, z in controls.items():
        with adapter.svf.adapted(z):
            first, row = first_modes(adapter.lm, task, examples)
        print(f"{task.name:10} {name:10} {str(dict(first)):40} {row['accuracy']:5.1f} [{row['ci95'][0]:5.1f}, {row['ci95'][1]:5.1f}]")

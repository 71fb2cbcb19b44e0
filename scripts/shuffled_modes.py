"""What Table 1's shuffled-z control does to the answer mode: greedy on the first 200 test prompts of each
text expert's task with the base model, the expert's z shuffled within each matrix (experts.shuffled_z,
the control), and z replaced by its mean per matrix (the control's size as one gain per matrix, no
pattern over the singular values). Prints each reply's first mode marker and how many are right.
README's Table 1 section quotes what this prints."""

from collections import Counter

import torch

from t2demo import tasks
from t2demo.evaluate import summarise
from t2demo.experts import shuffled_z
from t2demo.generation import generate
from t2demo.runtime import load_adapter
from t2demo.tasks import modes

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
            replies = generate(adapter.lm, [e.prompt for e in examples], max_new_tokens=task.max_new_tokens)
        first = Counter((modes.modes_of(r) or ["none"])[0] for r in replies)
        row = summarise([task.check(e, r) for e, r in zip(examples, replies)])
        print(f"{task.name:10} {name:10} {str(dict(first)):40} {row['accuracy']:5.1f} [{row['ci95'][0]:5.1f}, {row['ci95'][1]:5.1f}]")

"""What Table 1's shuffled-z control does to the answer mode: greedy on the first 200 test (or validation)
prompts of each text expert's task with the base model, the expert, the expert's z shuffled within each
matrix (experts.shuffled_z, the control; each of the shuffles Table 1 averages over), and z replaced by its
mean per matrix (the control's size as one gain per matrix, no pattern over the singular values). Prints the
size of each expert's change (|z − 1| over all its values, and the matrix holding most of ‖z − 1‖²), each
reply's first mode marker and how many are right. README's Table 1 section quotes what this prints for the
shipped experts; pilots/expert-decay/ for expert files given on the command line.

    python scripts/shuffled_modes.py [EXPERT_FILE ...]    # default: the default text model's experts
    python scripts/shuffled_modes.py --split validation ...  # for choosing a recipe without the test split
"""

import argparse

import torch

from t2demo import tasks
from t2demo.experts import change_norms, load_expert, shuffled_z, z_change
from t2demo.probe import first_modes
from t2demo.report import CONTROL_SHUFFLES
from t2demo.runtime import load_adapter

N = 200

parser = argparse.ArgumentParser(description="Table 1's shuffled-z controls: first modes and accuracy")
parser.add_argument("experts", nargs="*", help="expert files (default: the default text model's experts)")
parser.add_argument("--split", default="test", choices=["validation", "test"])
args = parser.parse_args()
adapter = load_adapter("default")
named = ([(path, load_expert(path, adapter.svf)) for path in args.experts]
         or [(f"the shipped {e.label} expert", e) for e in adapter.experts])
print(f"task       z          first mode of the reply                  right % [95 % CI] (n = {N})")
for name, expert in named:
    task = tasks.TASKS[expert.label]
    examples = task.examples(args.split, N)
    change = z_change(expert.z).abs()
    squares = {matrix: norm ** 2 for matrix, norm in change_norms(expert).items()}
    largest = max(squares, key=squares.get)
    print(f"{task.name:10} {name}: |z - 1| mean {change.mean():.3f}, max {change.max():.3f}; "
          f"{100 * squares[largest] / sum(squares.values()):.0f} % of ||z - 1||^2 in {largest}")
    controls = {"base": None, "expert": expert.z,
                **{f"shuffled {seed}": shuffled_z(expert.z, seed) for seed in range(CONTROL_SHUFFLES)},
                "mean gain": {k: torch.full_like(v, v.float().mean().item()) for k, v in expert.z.items()}}
    for control, z in controls.items():
        with adapter.svf.adapted(z):
            first, row = first_modes(adapter.lm, task, examples)
        print(f"{task.name:10} {control:10} {str(dict(first)):40} {row['accuracy']:5.1f} [{row['ci95'][0]:5.1f}, {row['ci95'][1]:5.1f}]")

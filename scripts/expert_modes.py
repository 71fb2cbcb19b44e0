"""Does an expert bring out the reliable answer mode, or fix answers some other way? Greedy replies on the
first N test prompts of a task, with the base weights and with each expert file given: each reply's first
mode marker (tasks/modes.py) and how many are right. README's vision section ("Why the shortcut never
looks at the image") quotes what this prints for each vision model built on the way to the shipped one.

    python scripts/expert_modes.py --task vqa --model assets/t2demo-llava-tiny experts/t2demo-llava-tiny/vqa*.safetensors
"""

import argparse

from t2demo import models, tasks
from t2demo.experts import load_expert
from t2demo.probe import first_modes
from t2demo.svf import SVF

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("experts", nargs="*", help="expert files (.safetensors) trained on --model")
parser.add_argument("--task", default="vqa")
parser.add_argument("--model", default="default", help="'default' or a model folder")
parser.add_argument("-n", type=int, default=200, help="test prompts (the first n)")
args = parser.parse_args()

task = tasks.TASKS[args.task]
lm = models.load_model(args.model, "vision" if task.vision else "text")
svf = SVF(lm.model)
examples = task.examples("test", args.n)
print(f"{'z':48} {'first mode of the reply':36} right % [95 % CI] (n = {args.n})")
for name in ["base", *args.experts]:
    with svf.adapted(None if name == "base" else load_expert(name, svf).z):
        first, row = first_modes(lm, task, examples)
    print(f"{name:48} {str(dict(first)):36} {row['accuracy']:5.1f} [{row['ci95'][0]:5.1f}, {row['ci95'][1]:5.1f}]")

"""Can any mixture of two experts take both of a two-skill task's reliable modes? Greedy replies to the
first N validation prompts (validation: this looks for a ceiling, not a score) under every α = (first
expert a, second b) on a grid over CEM's bounds [0, 1], and under per-layer α that gives the first k layers
to one expert and the rest to the other (the paper's released CEM fits α per expert per layer). Prints each
mixture's accuracy, how many replies take the task's reliable modes (those of its reference reply:
world-math recalls with `Answer:` and sums with `Work:`; vqa-knowledge reads with `Work:` and recalls with
`Answer:`) and the most common pairs of mode markers, and at each of the reliable reply's two decisions the
mean probability the mixture gives its marker, the reply teacher-forced up to there (`probe.decision_shares`:
which decision a mixture moves). README's Table 2 section quotes what this prints.

    python scripts/two_skill_mixtures.py [--task world-math|vqa-knowledge] [-n N] [--model M --experts ROOT]
    # N = 100 by default; M a text model folder (default: the shipped one), ROOT its experts' root folder
"""

import argparse
from collections import Counter
from itertools import product

import torch

from t2demo import tasks
from t2demo.generation import generate, images_of
from t2demo.probe import decision_shares, modes_of
from t2demo.runtime import load_adapter
from t2demo.tasks.modes import in_reliable_mode

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
SKILLS = {"world-math": ("math", "reasoning"), "vqa-knowledge": ("vqa", "reasoning")}  # the experts of each skill

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--task", choices=sorted(SKILLS), default="world-math")
parser.add_argument("-n", type=int, default=100, help="validation prompts (the first n)")
parser.add_argument("--model", default="default", help="the text model (the vision model's experts come from it)")
parser.add_argument("--experts", default=None, help="root of the expert folders (default: the repository's experts/)")
args = parser.parse_args()

task = tasks.TASKS[args.task]
adapter = (load_adapter("default", "vision", args.experts, transfer_from=args.model) if task.vision
           else load_adapter(args.model, experts_root=args.experts))
examples = task.examples("validation", args.n)
layers = adapter.svf.num_layers
one, two = (adapter.labels.index(label) for label in SKILLS[args.task])


def show(name: str, alpha: torch.Tensor) -> None:
    with adapter.svf.adapted(adapter.z_from_alpha(alpha)):
        replies = generate(adapter.lm, [e.prompt for e in examples], images_of(examples), task.max_new_tokens)
        shares = decision_shares(adapter.lm, examples)
    right = sum(task.check_many(examples, replies))
    reliable = sum(bool(in_reliable_mode(r, e)) for r, e in zip(replies, examples))
    first, second = (sum(s[i] for s in shares) / len(shares) for i in (0, 1))
    pairs = Counter(tuple(modes_of(r)[:2]) for r in replies)
    print(f"{name:28} {100 * right / args.n:5.1f} %   reliable modes {reliable:3}   p(reliable marker) "
          f"{first:.2f} {second:.2f}   {pairs.most_common(3)}", flush=True)


print(f"{args.task}, first {args.n} validation prompts, greedy: accuracy, replies in the reliable modes, the mean "
      "p(reliable marker) at the first and second decision (teacher-forced), top mode pairs")
for a, b in product(GRID, GRID):
    alpha = torch.zeros(len(adapter.labels))
    alpha[one], alpha[two] = a, b
    show(f"{adapter.labels[one]} {a:.2f} {adapter.labels[two]} {b:.2f}", alpha)
for k in range(1, layers):
    for first, rest in ((two, one), (one, two)):
        alpha = torch.zeros(len(adapter.labels), layers)
        alpha[first, :k], alpha[rest, k:] = 1.0, 1.0
        show(f"{adapter.labels[first]} < {k} <= {adapter.labels[rest]}", alpha)

"""Can any mixture of the math and reasoning experts take both of world-math's reliable modes? Greedy
replies to the first N validation prompts (validation: this looks for a ceiling, not a score) under every
α = (math a, reasoning b) on a grid over CEM's bounds [0, 1], and under per-layer α that gives the first k
layers to one expert and the rest to the other (the paper's released CEM fits α per expert per layer).
Prints each mixture's accuracy and its most common pairs of mode markers (the recall's, then the sum's);
world-math's reliable pair is ('Answer:', 'Work:'). README's Table 2 section quotes what this prints.

    python scripts/world_math_mixtures.py [N]      # N = 100 by default
"""

import sys
from collections import Counter
from itertools import product

import torch

from t2demo import tasks
from t2demo.generation import generate
from t2demo.probe import modes_of
from t2demo.runtime import load_adapter

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)

adapter = load_adapter("default")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
task = tasks.TASKS["world-math"]
examples = task.examples("validation", n)
layers = adapter.svf.num_layers
math, reasoning = adapter.labels.index("math"), adapter.labels.index("reasoning")


def show(name: str, alpha: torch.Tensor) -> None:
    with adapter.svf.adapted(adapter.z_from_alpha(alpha)):
        replies = generate(adapter.lm, [e.prompt for e in examples], max_new_tokens=task.max_new_tokens)
    right = sum(task.check_many(examples, replies))
    pairs = Counter(tuple(modes_of(r)[:2]) for r in replies)
    print(f"{name:28} {100 * right / n:5.1f} %   reliable pair {pairs['Answer:', 'Work:']:3}   "
          f"{pairs.most_common(3)}", flush=True)


print(f"world-math, first {n} validation prompts, greedy: accuracy, replies with the reliable pair, top mode pairs")
for a, b in product(GRID, GRID):
    alpha = torch.zeros(len(adapter.labels))
    alpha[math], alpha[reasoning] = a, b
    show(f"math {a:.2f} reasoning {b:.2f}", alpha)
for k in range(1, layers):
    for first, rest in ((reasoning, math), (math, reasoning)):
        alpha = torch.zeros(len(adapter.labels), layers)
        alpha[first, :k], alpha[rest, k:] = 1.0, 1.0
        show(f"{adapter.labels[first]} < {k} <= {adapter.labels[rest]}", alpha)

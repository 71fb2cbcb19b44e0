"""Pilot: does starting CEM at the box's vertices (each subset of the experts at full weight in the first
generation, `cem(vertices=True)`) find vqa-knowledge's two-skill mixture that the Gaussian start misses?
Fits α by CEM 32 × 50 with each start on three draws of 10 validation shots (report.fewshot_examples,
seeds 0, 1, 2; seed 0 is Table 2's) and scores each fit on the validation prompts 100-399 that are no
draw's shots (heldout.py). Validation only: nothing here reads the test split.

    python pilots/cem-search/start.py
"""
import time

from t2demo.adapt.cem import examples_right
from heldout import accuracy, adapter, alpha_of, shared_draws, task

draws = [(10, 0), (10, 1), (10, 2)]
shots, examples = shared_draws()  # the same 154 held-out prompts as landscape.py

print(f"vqa-knowledge, {len(examples)} held-out validation prompts, greedy accuracy %; experts {adapter.labels}")
print(f"  vqa alone {accuracy(alpha_of(vqa=1.0), examples):.1f}, "
      f"vqa 1 + reasoning 1 {accuracy(alpha_of(vqa=1.0, reasoning=1.0), examples):.1f}", flush=True)
for draw in draws:
    for vertices in (False, True):
        start = time.time()
        fit = adapter.fit(shots[draw], task, batch_size=32, seed=0, vertices=vertices)
        print(f"  shots seed {draw[1]}, {'vertices' if vertices else 'Gaussian'} start: α "
              f"{[round(a, 2) for a in fit.alpha.tolist()]}, {examples_right(fit.fitness, draw[0])} of {draw[0]} shots "
              f"({time.time() - start:.0f} s): {accuracy(fit.alpha, examples):.1f}", flush=True)

"""Pilot: the fitness landscape CEM searches on vqa-knowledge. Prints held-out validation accuracy along
α = (vqa 1, reasoning r) for r from 0 to 1.2, and the few-shot fitness (accuracy on the shots, the
log-likelihood tie-break left out) of a grid of α on Table 2's shots (report.fewshot_examples, seed 0)
and on other draws of 10 and 20: is the vqa + reasoning corner the shots' best, as it is on held-out
prompts? Validation only: nothing here reads the test split.

    python pilots/cem-search/landscape.py
"""
import torch
from heldout import DRAWS, accuracy, adapter, alpha_of, shared_draws, task

from t2demo.adapt.cem import examples_right, fewshot_batch_objective

shots, examples = shared_draws()

print(f"vqa-knowledge, {len(examples)} held-out validation prompts, greedy accuracy % at α = (vqa 1, reasoning r):")
for r in (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2):
    print(f"  r = {r:.2f}: {accuracy(alpha_of(vqa=1.0, reasoning=r), examples):.1f}", flush=True)

grid = [alpha_of(vqa=v, code=c, math=m, reasoning=r) for v in (0.5, 0.75, 1.0) for c in (0, 0.25) for m in (0, 0.25)
        for r in (0, 0.25, 0.5, 0.75, 1.0)]  # 60 points
corner = {name: alpha_of(vqa=1.0, reasoning=r) for name, r in (("vqa alone", 0.0), ("vqa 1 + reasoning 0.5", 0.5),
                                                                ("vqa 1 + reasoning 1", 1.0))}
print("accuracy on the shots (fitness without its tie-break) over a grid of 60 α, vqa (0.5, 0.75, 1) × code, math"
      " (0, 0.25) × reasoning (0, 0.25, 0.5, 0.75, 1):")
for n, seed in DRAWS:
    objective = fewshot_batch_objective(adapter, shots[n, seed], task, batch_size=32)
    scores = [examples_right(f, n) for part in torch.stack(grid).split(8) for f in objective.score(part)]
    at = {tuple(a.tolist()): s for a, s in zip(grid, scores)}
    top = max(scores)
    best = [tuple(round(x, 2) for x in a.tolist()) for a, s in zip(grid, scores) if s == top]
    points = ", ".join(f"{name} {at[tuple(a.tolist())]}" for name, a in corner.items())
    print(f"  {n} shots, seed {seed}: {points}; best {top} of {n} at {len(best)} point(s) {best[:4]}", flush=True)

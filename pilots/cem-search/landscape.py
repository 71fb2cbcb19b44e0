"""Pilot: the fitness landscape CEM searches on vqa-knowledge. Prints held-out validation accuracy along
α = (vqa 1, reasoning r) for r from 0 to 1.2, and the few-shot fitness (accuracy on the shots, the
log-likelihood tie-break left out) of a grid of α on Table 2's shots (report.fewshot_examples, seed 0)
and on other draws of 10 and 20: is the vqa + reasoning corner the shots' best, as it is on held-out
prompts? Validation only: nothing here reads the test split.

    python pilots/cem-search/landscape.py
"""
import torch

from t2demo import tasks
from t2demo.adapt.cem import fewshot_batch_objective
from t2demo.evaluate import score_task
from t2demo.report import fewshot_examples
from t2demo.runtime import load_adapter

task = tasks.TASKS["vqa-knowledge"]
adapter = load_adapter("default", "vision", transfer_from="default")
draws = [(10, 0), (20, 0), (10, 1), (10, 2), (20, 1)]  # (shots, seed); (10, 0) is Table 2's
shots = {d: fewshot_examples(task, "test", 10, *d)[1] for d in draws}
shot_prompts = {s.prompt for some in shots.values() for s in some}
held_out = [e for e in task.examples("validation", 400)[100:] if e.prompt not in shot_prompts]


def alpha_of(vqa: float, code: float, math: float, reasoning: float) -> torch.Tensor:
    weights = {"vqa": vqa, "code": code, "math": math, "reasoning": reasoning}
    return torch.tensor([weights[label] for label in adapter.labels])


print(f"vqa-knowledge, {len(held_out)} held-out validation prompts, greedy accuracy % at α = (vqa 1, reasoning r):")
for r in (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2):
    with adapter.svf.adapted(adapter.z_from_alpha(alpha_of(1, 0, 0, r))):
        right = score_task(adapter.lm, task, held_out, 32, False)
    print(f"  r = {r:.2f}: {100 * sum(right) / len(right):.1f}", flush=True)

grid = [alpha_of(v, c, m, r) for v in (0.5, 0.75, 1.0) for c in (0, 0.25) for m in (0, 0.25)
        for r in (0, 0.25, 0.5, 0.75, 1.0)]  # 60 points
print("accuracy on the shots (fitness without its tie-break) over a grid of 60 α, vqa (0.5, 0.75, 1) × code, math"
      " (0, 0.25) × reasoning (0, 0.25, 0.5, 0.75, 1):")
for n, seed in draws:
    objective = fewshot_batch_objective(adapter, shots[n, seed], task, batch_size=32)
    scores = [int(f * n) for part in torch.stack(grid).split(8) for f in objective.score(part)]
    at = {tuple(a.tolist()): s for a, s in zip(grid, scores)}
    top = max(scores)
    best = [tuple(round(x, 2) for x in a.tolist()) for a, s in zip(grid, scores) if s == top]
    print(f"  {n} shots, seed {seed}: vqa alone {at[1.0, 0.0, 0.0, 0.0]}, vqa 1 + reasoning 0.5 {at[1.0, 0.0, 0.0, 0.5]}, "
          f"vqa 1 + reasoning 1 {at[1.0, 0.0, 0.0, 1.0]}; best {top} of {n} at {len(best)} point(s) {best[:4]}", flush=True)

"""Pilot: does a longer CEM search find vqa-knowledge's two-skill mixture (vqa and reasoning both at α = 1,
scripts/two_skill_mixtures.py) that Table 2's fit misses? Fits α on validation examples as Table 2 does
(report.fewshot_examples, seed 0: the first SHOTS, 10 by default) with each POPxGENS[xSHOTS] setting
given, and scores the fit, each expert alone, the base and the vqa + reasoning corner on validation
prompts 100-399 (the mixture script reads 0-99; prompts that are shots of any setting are dropped).
Validation only: nothing here reads the test split.

    python pilots/cem-search/fit.py 16x10 32x50 32x50x20
"""
import sys
import time

import torch

from t2demo import tasks
from t2demo.evaluate import score_task
from t2demo.report import fewshot_examples
from t2demo.runtime import load_adapter

task = tasks.TASKS["vqa-knowledge"]
adapter = load_adapter("default", "vision", transfer_from="default")
settings = [tuple(map(int, f"{s}x10".split("x")[:3])) for s in sys.argv[1:]]  # (population, generations, shots)
shots = {n: fewshot_examples(task, "test", 10, n, 0)[1] for n in {n for _, _, n in settings}}
shot_prompts = {s.prompt for some in shots.values() for s in some}
held_out = [e for e in task.examples("validation", 400)[100:] if e.prompt not in shot_prompts]


def accuracy(alpha: torch.Tensor) -> float:
    with adapter.svf.adapted(adapter.z_from_alpha(alpha)):
        right = score_task(adapter.lm, task, held_out, 32, False)
    return 100 * sum(right) / len(right)


def alpha_of(**weights: float) -> torch.Tensor:
    return torch.tensor([weights.get(label, 0.0) for label in adapter.labels])


print(f"vqa-knowledge, {len(held_out)} held-out validation prompts, greedy accuracy %; experts {adapter.labels}")
print(f"  base {accuracy(alpha_of()):.1f}", flush=True)
for label in adapter.labels:
    print(f"  {label} alone {accuracy(alpha_of(**{label: 1.0})):.1f}", flush=True)
print(f"  vqa 1 + reasoning 1 {accuracy(alpha_of(vqa=1.0, reasoning=1.0)):.1f}", flush=True)
for population, generations, n in settings:
    start = time.time()
    fit = adapter.fit(shots[n], task, batch_size=32, population=population, generations=generations, seed=0)
    print(f"  CEM {population}x{generations} on {n} shots: α {[round(a, 2) for a in fit.alpha.tolist()]}, fitness on "
          f"the shots {fit.fitness:.3f} ({time.time() - start:.0f} s): {accuracy(fit.alpha):.1f}", flush=True)

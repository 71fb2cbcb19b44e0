"""Pilot: does a longer CEM search find vqa-knowledge's two-skill mixture (vqa and reasoning both at α = 1,
scripts/two_skill_mixtures.py) that Table 2's fit misses? Fits α on validation examples as Table 2 does
(report.fewshot_examples, seed 0: the first SHOTS, 10 by default) with each POPxGENS[xSHOTS] setting
given, and scores the fit, each expert alone, the base and the vqa + reasoning corner on validation
prompts 100-399 that are shots of no setting (heldout.py). Validation only: nothing here reads the test split.

    python pilots/cem-search/fit.py 16x10 32x50 32x50x20
"""
import sys
import time

from heldout import accuracy, adapter, alpha_of, held_out, shots_of, task

settings = [tuple(map(int, f"{s}x10".split("x")[:3])) for s in sys.argv[1:]]  # (population, generations, shots)
shots = shots_of({(n, 0) for _, _, n in settings})
examples = held_out(shots.values())

print(f"vqa-knowledge, {len(examples)} held-out validation prompts, greedy accuracy %; experts {adapter.labels}")
print(f"  base {accuracy(alpha_of(), examples):.1f}", flush=True)
for label in adapter.labels:
    print(f"  {label} alone {accuracy(alpha_of(**{label: 1.0}), examples):.1f}", flush=True)
print(f"  vqa 1 + reasoning 1 {accuracy(alpha_of(vqa=1.0, reasoning=1.0), examples):.1f}", flush=True)
for population, generations, n in settings:
    start = time.time()
    fit = adapter.fit(shots[n, 0], task, batch_size=32, population=population, generations=generations, seed=0)
    print(f"  CEM {population}x{generations} on {n} shots: α {[round(a, 2) for a in fit.alpha.tolist()]}, fitness on "
          f"the shots {fit.fitness:.3f} ({time.time() - start:.0f} s): {accuracy(fit.alpha, examples):.1f}", flush=True)

"""Pilot: does breaking CEM's ties by the model's confidence in its own correct replies (the authors'
`use_loglikelihood_for_ties`, now `cem.reply_fitness`) keep the vqa + reasoning corner that the
reference log-likelihood tie-break let go? Fits α by CEM 32 × 50 with the vertex start on start.py's
three draws of 10 validation shots and scores each fit on the same 154 held-out validation prompts.
Validation only: nothing here reads the test split. Compare with start.py's vertex column.

    python pilots/cem-search/tiebreak.py
"""
import time

from t2demo.adapt.cem import examples_right
from heldout import accuracy, adapter, shared_draws, task

draws = [(10, 0), (10, 1), (10, 2)]
shots, examples = shared_draws()  # the same 154 held-out prompts as landscape.py

print(f"vqa-knowledge, {len(examples)} held-out validation prompts, greedy accuracy %; experts {adapter.labels}")
for draw in draws:
    start = time.time()
    fit = adapter.fit(shots[draw], task, batch_size=32, seed=0)
    print(f"  shots seed {draw[1]}: α {[round(a, 2) for a in fit.alpha.tolist()]}, {examples_right(fit.fitness, draw[0])} of "
          f"{draw[0]} shots ({time.time() - start:.0f} s): {accuracy(fit.alpha, examples):.1f}", flush=True)

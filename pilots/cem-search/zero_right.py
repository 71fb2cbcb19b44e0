"""Pilot: when a member of CEM's population gets none of the few-shot examples right, should its fitness
tie-break fall back to the reference responses' log-likelihood (now `cem.reply_fitness`)? Before, every
such member scored exactly 0, so the elites among them were whichever came first, and a draw where no
member got anything right kept α = 0, the base (Table 2, math-hard, draw 2).

Refits Table 2's five few-shot draws (10 validation shots, seeds 0-4, CEM 32 × 50 seeded as the draw,
vertex start) of each task named with the current code, and scores each new fit and each draw's old α
(results/table2.json of commit c942772, fitted before the fallback on the same shots; read with git) on
the first 300 validation prompts that are none of the five draws' shots. Validation only: nothing here
reads the test split.

    python pilots/cem-search/zero_right.py [math-hard world-math reasoning-hard]
"""
import json
import subprocess
import sys
import time

import torch

from t2demo import tasks
from t2demo.adapt.cem import examples_right
from t2demo.evaluate import score_task
from t2demo.report import fewshot_examples
from t2demo.runtime import load_adapter

SEEDS, SHOTS, HELD_OUT = range(5), 10, 300
BEFORE = "c942772"  # the last commit whose Table 2 was fitted without the fallback
old = json.loads(subprocess.run(["git", "show", f"{BEFORE}:results/table2.json"], capture_output=True, text=True,
                                check=True).stdout)["tasks"]
adapter = load_adapter("default", "text")


def accuracy(task: tasks.Task, alpha: torch.Tensor, examples: list[tasks.Example]) -> float:
    """Greedy accuracy in % under z' = mix(experts, α)."""
    with adapter.svf.adapted(adapter.z_from_alpha(alpha)):
        right = score_task(adapter.lm, task, examples, 32, False)
    return 100 * sum(right) / len(right)


for name in sys.argv[1:] or ["math-hard", "world-math", "reasoning-hard"]:
    task = tasks.TASKS[name]
    shots = {seed: fewshot_examples(task, "test", 1, SHOTS, seed)[1] for seed in SEEDS}
    seen = {s.prompt for draw in shots.values() for s in draw}
    examples = [e for e in task.examples("validation", HELD_OUT + len(seen)) if e.prompt not in seen][:HELD_OUT]
    alone = {label: accuracy(task, torch.eye(len(adapter.labels))[i], examples) for i, label in enumerate(adapter.labels)}
    print(f"{name}: {len(examples)} held-out validation prompts; base {accuracy(task, torch.zeros(len(adapter.labels)), examples):.1f} %, "
          + ", ".join(f"{k} alone {v:.1f}" for k, v in alone.items()), flush=True)
    before, after = [], []
    for seed in SEEDS:
        draw = old[name]["rows"]["fewshot"]["draws"]["per_draw"][seed]
        start = time.time()
        fit = adapter.fit(shots[seed], task, batch_size=32, population=32, generations=50, seed=seed, vertices=True)
        before.append(accuracy(task, torch.tensor(draw["alpha"]), examples))
        after.append(accuracy(task, fit.alpha, examples))
        print(f"  seed {seed}: before α {[round(a, 2) for a in draw['alpha']]} ({examples_right(draw['fitness'], SHOTS)} of "
              f"{SHOTS}) {before[-1]:.1f} % | fallback α {[round(a, 2) for a in fit.alpha.tolist()]} "
              f"({examples_right(fit.fitness, SHOTS)} of {SHOTS}, {time.time() - start:.0f} s) {after[-1]:.1f} %", flush=True)
    print(f"  mean over draws: before {sum(before) / len(before):.1f} %, fallback {sum(after) / len(after):.1f} %", flush=True)

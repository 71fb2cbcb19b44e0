"""Measure a text base and its experts for the two-skill pilot (validation only; nothing reads the test split).

    python pilots/two-skill-sum/measure.py [MODEL EXPERTS_ROOT] [--per-layer]   # default: the shipped model and experts

Prints, greedy: math with and without the math expert, reasoning with and without the reasoning expert
(first 200 validation prompts each); world-math's decisions (`probe.decision_shares`, first 100); then
few-shot CEM on world-math as Table 2 fits it (10 validation shots, draws 0-4, 32 × 50, vertex start), each
fit scored on the 300 held-out validation prompts of pilots/cem-search/zero_right.py (none of the five
draws' shots) beside the base and each expert alone. --per-layer fits α per expert and layer (the paper's
released setting; Table 2 fits one α per expert) and skips the first part.
"""
import sys
import time

import torch

from t2demo import tasks
from t2demo.adapt.cem import examples_right
from t2demo.evaluate import score_task
from t2demo.probe import decision_shares
from t2demo.report import fewshot_examples
from t2demo.runtime import load_adapter

SEEDS, SHOTS, HELD_OUT = range(5), 10, 300
torch.set_num_threads(2)
per_layer = "--per-layer" in sys.argv
argv = [a for a in sys.argv[1:] if a != "--per-layer"]
model, root = (argv[0], argv[1]) if argv else ("default", None)
adapter = load_adapter(model, experts_root=root)
labels, layers = adapter.labels, adapter.svf.num_layers


def alpha_of(**mix: float) -> torch.Tensor:
    alpha = torch.zeros(len(labels))
    for label, a in mix.items():
        alpha[labels.index(label)] = a
    return alpha


def accuracy(task: tasks.Task, alpha: torch.Tensor, examples: list[tasks.Example]) -> float:
    """Greedy accuracy in % under z' = mix(experts, α)."""
    with adapter.svf.adapted(adapter.z_from_alpha(alpha)):
        right = score_task(adapter.lm, task, examples, 32, False)
    return 100 * sum(right) / len(right)


for name, expert in () if per_layer else (("math", "math"), ("reasoning", "reasoning")):
    task = tasks.TASKS[name]
    examples = task.examples("validation", 200)
    print(f"{name} (200 validation): base {accuracy(task, alpha_of(), examples):.1f} %, "
          f"{expert} expert {accuracy(task, alpha_of(**{expert: 1}), examples):.1f} %", flush=True)

task = tasks.TASKS["world-math"]
first = task.examples("validation", 100)
for mix in () if per_layer else ({}, {"math": 1}, {"reasoning": 1}, {"math": 1, "reasoning": 1}):
    with adapter.svf.adapted(adapter.z_from_alpha(alpha_of(**mix))):
        shares = decision_shares(adapter.lm, first)
    recall, total = (sum(s[i] for s in shares) / len(shares) for i in (0, 1))
    print(f"world-math decisions under {mix or 'the base'}: p(Answer: at the recall) {recall:.2f}, "
          f"p(Work: at the sum) {total:.2f}", flush=True)

shots = {seed: fewshot_examples(task, "test", 1, SHOTS, seed)[1] for seed in SEEDS}
seen = {s.prompt for draw in shots.values() for s in draw}
held_out = [e for e in task.examples("validation", HELD_OUT + len(seen)) if e.prompt not in seen][:HELD_OUT]
alone = {label: accuracy(task, alpha_of(**{label: 1}), held_out) for label in labels}
print(f"world-math: {len(held_out)} held-out validation prompts; base {accuracy(task, alpha_of(), held_out):.1f} %, "
      + ", ".join(f"{k} alone {v:.1f}" for k, v in alone.items())
      + f", math and reasoning at 1 {accuracy(task, alpha_of(math=1, reasoning=1), held_out):.1f}", flush=True)
split = torch.zeros(len(labels), layers)
split[labels.index("math"), :1], split[labels.index("reasoning"), 1:] = 1.0, 1.0
print(f"  math on layer 0, reasoning on layers 1-{layers - 1}: {accuracy(task, split, held_out):.1f} %", flush=True)
fits = []
for seed in SEEDS:
    start = time.time()
    fit = adapter.fit(shots[seed], task, batch_size=32, population=32, generations=50, seed=seed, vertices=True,
                      per_layer=per_layer)
    fits.append(accuracy(task, fit.alpha, held_out))
    shown = fit.alpha.mean(-1) if per_layer else fit.alpha  # per layer: each expert's mean over layers
    print(f"  seed {seed}: α {[round(a, 2) for a in shown.tolist()]} ({examples_right(fit.fitness, SHOTS)} of "
          f"{SHOTS}, {time.time() - start:.0f} s) {fits[-1]:.1f} %", flush=True)
print(f"  mean over draws {sum(fits) / len(fits):.1f} %, best single expert {max(alone.values()):.1f} %", flush=True)

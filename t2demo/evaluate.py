"""Task accuracy with batched greedy generation, with 95 % Wilson intervals.

`python -m t2demo eval --model default --tasks math,vqa --split test --json out.json`
"""

from __future__ import annotations

import math
import random
from typing import Callable, Sequence

from tqdm import tqdm

from t2demo import tasks
from t2demo.generation import generate, images_of
from t2demo.models import LoadedModel


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion, in percent (sound at 0 % and 100 %)."""
    if n == 0:
        return (0.0, 100.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(100 * max(0.0, centre - half), 2), round(100 * min(1.0, centre + half), 2))


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (p > 0.5), by bisection on its CDF integrated with Simpson's rule: the
    interval of a mean over a few runs (few-shot draws) needs t, not the normal's 1.96."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(x: float, steps: int = 1000) -> float:
        h = x / steps
        f = [c * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(steps + 1)]
        return 0.5 + h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))

    lo, hi = 0.0, 1000.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def mean_interval(values: Sequence[float]) -> dict:
    """Mean of a few values (e.g. one accuracy per few-shot draw) with its 95 % t interval: the runs
    are the sample, so the interval says how much another set of runs could move the mean."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": round(mean, 2), "ci95": None, "n": n}
    half = t_quantile(0.975, n - 1) * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    return {"mean": round(mean, 2), "ci95": [round(mean - half, 2), round(mean + half, 2)], "n": n}


def score_task(lm: LoadedModel, task: tasks.Task, examples: Sequence[tasks.Example],
               batch_size: int = 32, progress: bool = True, turn: int = 1) -> list[bool]:
    """Whether the model's greedy answer (current weights) to each example passes the task's checker;
    with turn > 1, asked as that turn of a chat (earlier_turns), one chat history per batch."""
    outcomes = []
    for start in tqdm(range(0, len(examples), batch_size), desc=task.name, disable=not progress):
        chunk = examples[start:start + batch_size]
        history = earlier_turns(lm, turn - 1, seed=start) if turn > 1 else ()
        answers = generate(lm, [ex.prompt for ex in chunk], images_of(chunk), task.max_new_tokens, history)
        outcomes += task.check_many(chunk, answers)
    return outcomes


def earlier_turns(lm: LoadedModel, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n earlier turns of a chat: validation prompts of random text tasks (small talk included), each
    answered by the model itself (greedy) after the turns before it, as a user's chat would go."""
    rng = random.Random(f"turns|{seed}")
    pool = [name for name in tasks.TASKS if not tasks.TASKS[name].vision]
    history: list[tuple[str, str]] = []
    for _ in range(n):
        task = tasks.TASKS[rng.choice(pool)]
        prompt = rng.choice(task.examples("validation", 50)).prompt
        history.append((prompt, generate(lm, [prompt], None, task.max_new_tokens, history)[0]))
    return history


def summarise(outcomes: Sequence[bool]) -> dict:
    """Accuracy (percent), sample size and 95 % interval, the shape every table uses."""
    n, k = len(outcomes), sum(outcomes)
    return {"accuracy": round(100 * k / n, 2) if n else 0.0, "n": n, "ci95": list(wilson_interval(k, n))}


def format_table(results: dict, title: str) -> str:
    lines = [title, f"{'task':<16}{'accuracy':>10}{'95% CI':>18}{'n':>7}"]
    for name, r in results.items():
        ci = "[{:.1f}, {:.1f}]".format(*r["ci95"])
        lines.append(f"{name:<16}{r['accuracy']:>9.1f}%{ci:>18}{r['n']:>7}")
    return "\n".join(lines)


def evaluate(chosen: Sequence[tasks.Task], split: str, limit: int, load: Callable[[str], LoadedModel],
             batch_size: int = 32, seed: int = 0, turn: int = 1) -> dict:
    """Evaluate each task on the model of its kind, load("text") or load("vision"), loaded lazily.
    Every task's examples are read first, so a data error stops the run before a model loads; a
    task that names its metric and data source (the benchmarks) has them in its result."""
    examples = {task.name: task.examples(split, limit, seed) for task in chosen}
    results, loaded = {}, {}
    for task in chosen:
        kind = "vision" if task.vision else "text"
        if kind not in loaded:
            loaded[kind] = load(kind)
        results[task.name] = summarise(score_task(loaded[kind], task, examples[task.name], batch_size, turn=turn))
        results[task.name] |= {key: getattr(task, key) for key in ("metric", "source") if hasattr(task, key)}
    return results

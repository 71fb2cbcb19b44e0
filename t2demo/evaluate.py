"""Task accuracy with batched greedy generation, with 95 % Wilson intervals.

`python -m t2demo eval --model default --tasks math,vqa --split test --json out.json`
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from t2demo import tasks
from t2demo.generation import generate, images_of
from t2demo.tasks import parse_task_list  # noqa: F401  (the registry's; callers use evaluate.parse_task_list)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion, in percent (sound at 0 % and 100 %)."""
    if n == 0:
        return (0.0, 100.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(100 * max(0.0, centre - half), 2), round(100 * min(1.0, centre + half), 2))


def score_task(model, tok_or_proc, task: tasks.Task, examples: Sequence[tasks.Example],
               batch_size: int = 32, progress: bool = True) -> list[bool]:
    """Whether the model's greedy answer to each example passes the task's checker."""
    outcomes = []
    for start in tqdm(range(0, len(examples), batch_size), desc=task.name, disable=not progress):
        chunk = examples[start:start + batch_size]
        answers = generate(model, tok_or_proc, [ex.prompt for ex in chunk], images_of(chunk), task.max_new_tokens)
        outcomes += task.check_many(chunk, answers)
    return outcomes


def summarise(outcomes: Sequence[bool]) -> dict:
    """Accuracy (percent), sample size and 95 % interval, the shape every table uses."""
    n, k = len(outcomes), sum(outcomes)
    return {"accuracy": round(100 * k / n, 2) if n else 0.0, "n": n, "ci95": list(wilson_interval(k, n))}


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def format_table(results: dict, title: str) -> str:
    lines = [title, f"{'task':<16}{'accuracy':>10}{'95% CI':>18}{'n':>7}"]
    for name, r in results.items():
        ci = "[{:.1f}, {:.1f}]".format(*r["ci95"])
        lines.append(f"{name:<16}{r['accuracy']:>9.1f}%{ci:>18}{r['n']:>7}")
    return "\n".join(lines)


def evaluate(task_names: Sequence[str], split: str, limit: int, load_text: Callable, load_vision: Callable,
             batch_size: int = 32, seed: int = 0) -> dict:
    """Evaluate text tasks on the text model and vqa tasks on the vision model (loaded lazily)."""
    results, loaded = {}, {}
    for name in task_names:
        task = tasks.TASKS[name]
        vision = task.vision
        if vision not in loaded:
            loaded[vision] = load_vision() if vision else load_text()
        model, tok_or_proc = loaded[vision]
        examples = task.examples(split, limit, seed)
        results[name] = summarise(score_task(model, tok_or_proc, task, examples, batch_size))
    return results

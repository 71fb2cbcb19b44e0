"""Choosing what `eval` scores: synthetic tasks and groups, benchmarks, and the local copy each benchmark reads.

Kept apart from the registry: it checks --data paths, which listing tasks must not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from t2demo.tasks.base import Task
from t2demo.tasks.benchmarks.source import BenchmarkDataError, split_named
from t2demo.tasks.registry import BENCHMARKS, REGISTRY

GROUP = "benchmarks"  # --tasks benchmarks: every benchmark
SYNTHETIC_GROUPS = ("all", "training", "unseen")


def data_paths(values: Sequence[str], chosen: Sequence[str]) -> dict[str, str]:
    """--data values as benchmark -> path: NAME=PATH, or a bare PATH when exactly one benchmark is chosen."""
    paths: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not (sep and name in BENCHMARKS):
            if not chosen:
                raise BenchmarkDataError(f"--data {value}: --data is for benchmarks, and none is chosen")
            if len(chosen) != 1:
                raise BenchmarkDataError(f"--data {value}: with {len(chosen)} benchmarks chosen, name the one it is "
                                         f"for, e.g. --data gsm8k={value}")
            name, path = chosen[0], value
        if name not in chosen or name in paths:
            raise BenchmarkDataError(f"--data {value}: {name} is " + ("given twice" if name in paths else
                                                                      "not among the chosen tasks"))
        if not Path(path).exists():
            raise BenchmarkDataError(f"--data {path}: no such file or folder")
        paths[name] = path
    return paths


def choose(spec: str, data: Sequence[str] = ()) -> list[Task]:
    """The tasks of an `eval --tasks` spec: synthetic groups and names, "benchmarks" and benchmark names,
    each benchmark reading its --data copy if one is given (else the hub)."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    evaluable = REGISTRY.parse("all")
    unknown = [i for i in items if i not in {*evaluable, *SYNTHETIC_GROUPS, *BENCHMARKS, GROUP}]
    if unknown:
        raise BenchmarkDataError(f"unknown task(s) {unknown}; choose from {sorted(evaluable)}, the benchmarks "
                                 f"{list(BENCHMARKS)}, or a group: {', '.join(SYNTHETIC_GROUPS)}, {GROUP}")
    names: list[str] = []
    for item in items:
        names += list(BENCHMARKS) if item == GROUP else [item] if item in BENCHMARKS else REGISTRY.parse(item)
    names = list(dict.fromkeys(names))
    paths = data_paths(data, [n for n in names if n in BENCHMARKS])
    return [BENCHMARKS[n].with_data(paths.get(n)) if n in BENCHMARKS else REGISTRY[n] for n in names]


def training_task(name: str, data: Sequence[str] = (), objective: str = "rl", val_n: int = 64) -> Task:
    """The task `train-expert --task NAME [--data [NAME=]PATH]` trains: a synthetic training task, "cls" (the
    first-pass classifier), or a benchmark with a train split, read through `choose` as eval reads it and
    wrapped for training (benchmarks/training.py: train and validation only). Anything else is refused with
    a BenchmarkDataError that says what to pass."""
    from t2demo.tasks.benchmarks.training import BenchmarkTraining, refusal
    from t2demo.tasks.classification import ClassificationTask, resolve_task
    from t2demo.tasks.registry import TRAINING_TASKS

    name = name.strip()
    trainable = [*TRAINING_TASKS, ClassificationTask.name]
    if name not in {*trainable, *BENCHMARKS}:
        with_train = ", ".join(n for n, b in BENCHMARKS.items() if "train" in b.splits)
        raise BenchmarkDataError(f"--task {name}: choose a training task ({', '.join(trainable)}) or a "
                                 f"benchmark with a train split ({with_train})")
    if data and name not in BENCHMARKS:
        raise BenchmarkDataError(f"--data is for benchmarks; {name} is a synthetic task, generated from its seed")
    if name not in BENCHMARKS:
        return resolve_task(name)
    task = choose(name, data)[0]
    alternatives = [n for n, b in BENCHMARKS.items() if b.category == task.category and refusal(b, objective) is None]
    reason = refusal(task, objective, alternatives)
    if reason:
        raise BenchmarkDataError(reason)
    if task.data and Path(task.data).is_file() and split_named(Path(task.data)) != "train":
        raise BenchmarkDataError(f"--data {task.data}: training reads a benchmark's train split and never its test "
                                 "split, and this file's name does not say it is the train split; pass the folder "
                                 "of its per-split files (train.jsonl, validation.jsonl, ...) or a file named as train")
    return BenchmarkTraining(task, val_n)

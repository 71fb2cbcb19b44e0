"""The registered tasks, and every task group derived from them: add a task with one line here.

Order matters: it is the order of TASKS, of the training / unseen lists and of the dispatch
categories (CATEGORIES = categories in order of first registration, then "other"). The category
descriptions make up the classification instruction the shipped models were trained on: keep
them, and their order, byte for byte.

Training tasks (experts are trained on them)  ->  unseen tasks (experts are mixed on them):
  math (GSM8K-like: 1-3 digit sums) -> math-hard (4 digits or two operations, held-out wordings)
                                    -> world-math (the two-skill task: recall two weights, then add or subtract)
  code (CRUXEval-like: trace 3 lines) -> code-hard (a 5-line function, held-out wordings)
  reasoning (ARC-Easy-like)         -> reasoning-hard (facts asked both ways, held-out wordings)
  vqa (TextVQA-like)                -> vqa-knowledge (OKVQA-like: read a name, recall a world fact)
plus smalltalk (category "other"). Each text task has latent answer modes (modes.py); the drills
(arithmetic.MATH_DRILL, ...) are the base model's pretraining data, not tasks.
"""

from __future__ import annotations

from t2demo.tasks import arithmetic, benchmarks, programs, reasoning, smalltalk, vqa, world_math
from t2demo.tasks.base import TRAINING, UNSEEN, Registry

REGISTRY = Registry()
register = REGISTRY.register

register(arithmetic.MATH, TRAINING, describe="adding or subtracting numbers, also in a story or with weights.")
register(arithmetic.MATH_HARD, UNSEEN)
register(world_math.WORLD_MATH, UNSEEN)
register(programs.CODE, TRAINING, describe="saying what a small Python program prints or returns.")
register(programs.CODE_HARD, UNSEEN)
register(reasoning.REASONING, TRAINING,
         describe="a question about creatures, places, foods or weather with options.")
register(reasoning.REASONING_HARD, UNSEEN)
register(vqa.VQA, TRAINING, describe="a question about a word or picture shown in an image.")
register(vqa.VQA_KNOWLEDGE, UNSEEN)
register(smalltalk.SMALLTALK, describe="anything else, such as greetings, thanks or small talk.")

# Derived once every task above is registered (REGISTRY itself stays live).
TASKS = REGISTRY
TRAINING_TASKS = REGISTRY.names(TRAINING)
UNSEEN_TASKS = REGISTRY.names(UNSEEN)
CATEGORIES = REGISTRY.categories()
IMAGE_CATEGORIES = REGISTRY.image_categories()
names = REGISTRY.names
tags_of = REGISTRY.tags


# The paper's real benchmarks, in a registry of their own: evaluated only (`eval --tasks gsm8k --data PATH`), never
# trained on, so they stay out of every group above, the dispatch categories and the classification instruction.
# Each takes its synthetic twin's category (and so its description, which only this registry holds).
# `train-expert --task NAME` trains on those with a train split (benchmarks/training.py), writing its category's expert.
BENCHMARKS = Registry()


def _benchmark(task: benchmarks.Benchmark) -> benchmarks.Benchmark:
    """Register a benchmark; describe= repeats REGISTRY's line for its category, as a new registry requires."""
    return BENCHMARKS.register(task, benchmarks.BENCHMARK, describe=REGISTRY.descriptions()[task.category])


_benchmark(benchmarks.GSM8K)
_benchmark(benchmarks.COMPETITION_MATH)
_benchmark(benchmarks.MBPP)
_benchmark(benchmarks.HUMANEVAL)
_benchmark(benchmarks.ARC_EASY)
_benchmark(benchmarks.ARC_CHALLENGE)
_benchmark(benchmarks.TEXTVQA)
_benchmark(benchmarks.OKVQA)


def parse_task_list(spec: str) -> list[str]:
    """'all', 'training', 'unseen' or a comma list of task names (for the CLI); unknown names exit with a message."""
    return REGISTRY.parse(spec)


# The paper's split of its benchmarks between its two tables: Table 1 the tasks experts are trained for,
# Table 2 the unseen ones (report table1/table2 --tasks benchmarks picks its table's).
PAPER_TABLES = {"table1": ("gsm8k", "mbpp", "arc-easy", "textvqa"),
                "table2": ("competition-math", "humaneval", "arc-challenge", "okvqa")}


def listing() -> list[dict]:
    """Every task one can evaluate or train on, one dict each, for the CLI (`python -m t2demo tasks`) and the
    app: the synthetic tasks (registration order), then the paper's benchmarks. Keys: name, kind ("synthetic"
    or "benchmark"), group ("training", "unseen" or "other" for synthetic tasks; the paper's "table1" or
    "table2" for benchmarks), category (the expert dispatch sends it to), vision, splits, metric, source (a
    benchmark's hub id; nothing is downloaded), max_new_tokens. JSON-ready."""
    rows = []
    for name, task in REGISTRY.items():
        tags = REGISTRY.tags(name)
        group = TRAINING if TRAINING in tags else UNSEEN if UNSEEN in tags else "other"
        rows.append({"name": name, "kind": "synthetic", "group": group, "category": task.category,
                     "vision": task.vision, "splits": ["train", "validation", "test"], "metric": "accuracy",
                     "source": "generated (seeded)", "max_new_tokens": task.max_new_tokens})
    table_of = {name: table for table, names in PAPER_TABLES.items() for name in names}
    for name, task in BENCHMARKS.items():
        rows.append({"name": name, "kind": "benchmark", "group": table_of.get(name, "other"), "category": task.category,
                     "vision": task.vision, "splits": [s for s in task.splits if s not in task.hidden],
                     "metric": task.metric, "source": task.source, "max_new_tokens": task.max_new_tokens})
    return rows

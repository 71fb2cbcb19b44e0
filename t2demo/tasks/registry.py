"""The registered tasks, and every task group derived from them: add a task with one line here.

Order matters: it is the order of TASKS, of the training / unseen lists and of the dispatch
categories (CATEGORIES = categories in order of first registration, then "other"). The category
descriptions make up the classification instruction the shipped models were trained on: keep
them, and their order, byte for byte.

Training tasks (experts are trained on them)  ->  unseen tasks (experts are mixed on them):
  math (GSM8K-like: 3-digit sums)   -> math-hard (4 digits or two operations, held-out wordings)
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
names = REGISTRY.names
tags_of = REGISTRY.tags


# The paper's real benchmarks, in a registry of their own: evaluated only (`eval --tasks gsm8k --data PATH`), never
# trained on, so they stay out of every group above, the dispatch categories and the classification instruction.
# Each takes its synthetic twin's category (and so its description, which only this registry holds).
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

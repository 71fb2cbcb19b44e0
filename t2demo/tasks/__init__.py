"""Tasks: synthetic suites mirroring the paper's benchmarks, small enough for a tiny model to learn.

A task implements `Task` (base.py): name, category, vision, max_new_tokens, examples(split, n, seed),
check / check_many. One file per task family defines its tasks (arithmetic, programs, reasoning,
vqa, smalltalk; world.py is the invented world behind reasoning and vqa-knowledge); registry.py
registers them with their tags, and TASKS, TRAINING_TASKS, UNSEEN_TASKS and CATEGORIES are derived
from that registration. A new task is one new file plus one `register(...)` line in registry.py:

    # t2demo/tasks/gsm8k.py
    class GSM8K:  # implements Task
        name, category, vision, max_new_tokens = "gsm8k", "math", False, 256
        def examples(self, split, n, seed=0): ...  # e.g. datasets.load_dataset("gsm8k", "main")[...]
        def check(self, example, response): return check_number(example, response)
        def check_many(self, examples, responses): return [check_number(e, r) for e, r in zip(examples, responses)]

    # t2demo/tasks/registry.py
    register(gsm8k.GSM8K(), UNSEEN)

A task in a new category also passes describe="..." (its line in the classification instruction;
the classification expert must then be retrained).
"""

from t2demo.tasks.base import (
    OTHER, SPLITS, TRAINING, UNSEEN, VISION, Example, Registry, SyntheticTask, Task, UnknownTask, split_of,
)
from t2demo.tasks.checkers import (
    check_contains, check_exact, check_letter, check_nonempty, check_number, chosen_letter, extract_boxed,
    last_number, normalize, options_of,
)
from t2demo.tasks.registry import (
    CATEGORIES, IMAGE_CATEGORIES, REGISTRY, TASKS, TRAINING_TASKS, UNSEEN_TASKS, names, parse_task_list, register,
    tags_of,
)
from t2demo.tasks.classification import (
    CLASSIFICATION_INSTRUCTION, ClassificationTask, classification_examples, classification_instruction,
    classification_prompt, resolve_task,
)
from t2demo.tasks.custom import CUSTOM, CustomTask, custom_examples
from t2demo.tasks.vqa import render_word

__all__ = [
    "CATEGORIES", "CLASSIFICATION_INSTRUCTION", "CUSTOM", "IMAGE_CATEGORIES", "OTHER", "REGISTRY", "SPLITS",
    "TASKS", "TRAINING", "TRAINING_TASKS", "UNSEEN", "UNSEEN_TASKS", "VISION", "ClassificationTask", "CustomTask",
    "Example", "Registry", "SyntheticTask", "Task", "UnknownTask", "check_contains", "check_exact", "check_letter",
    "check_nonempty", "check_number", "chosen_letter", "classification_examples", "classification_instruction",
    "classification_prompt", "custom_examples", "extract_boxed", "last_number", "names", "normalize", "options_of",
    "parse_task_list", "register", "render_word", "resolve_task", "split_of", "tags_of",
]

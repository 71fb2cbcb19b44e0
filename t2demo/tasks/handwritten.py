"""Hand-written dispatch prompts: what a real user of the app might type, labelled with its dispatch category.

The prompts in data/dispatch_prompts.jsonl were written by hand, not drawn from any task generator or
drill: casual and formal, with typos, free-form questions and small talk, in wordings no generator uses.
They are never used in training (not by the classification expert, not by pretraining); they only
measure how well dispatch (the first pass) names the category of natural prompts, where the
synthetic classification data (classification.py) would flatter a classifier that memorised templates.
"""

from __future__ import annotations

import json
from importlib import resources

from t2demo.tasks.base import Example

TASK_NAME = "dispatch-handwritten"
DATA_FILE = "dispatch_prompts.jsonl"  # in t2demo/tasks/data/: one {"prompt": ..., "category": ...} per line


def dispatch_prompts() -> list[Example]:
    r"""The hand-written prompts in file order, each an Example whose reference is its category and
    whose response is `\boxed{category}` (what the classifier should answer)."""
    text = resources.files("t2demo.tasks").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    out = []
    for row in (json.loads(line) for line in text.splitlines() if line.strip()):
        category = row["category"]
        out.append(Example(row["prompt"], reference=category, response=f"\\boxed{{{category}}}", task=TASK_NAME))
    return out

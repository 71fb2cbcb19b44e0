"""One prompt answered by the base model and by each expert alone (α = 1 on one expert), for a
class: what each expert does to the answer, and where in the model it acts.

Why rows of one request: the scheduler answers every z of a request in one batch (serving.py),
so the grid costs one generation, streamed row by row, not one per expert.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from torch import Tensor

from t2demo import quiz, tasks
from t2demo.adapt.adapter import Adapter
from t2demo.session import check_message


@dataclass
class Cell:
    """One column of the grid: who answers, with which z' (None: the base model), and its answer."""

    label: str
    z: dict[str, Tensor] | None
    answer: str = ""
    right: bool | None = None  # marked when the prompt is a test question


def cells(adapter: Adapter) -> list[Cell]:
    """The base model, then each expert alone."""
    return [Cell("base model", None)] + [Cell(f"{e.label} expert alone", e.z) for e in adapter.experts]


MAX_NEW_TOKENS = 96


def compare(adapter: Adapter, message: str, max_new_tokens: int = MAX_NEW_TOKENS) -> Iterator[list[Cell]]:
    """Every cell's answer as it grows (one batch), then once more with the right/wrong marks when the
    message is one of the test questions (quiz.lookup)."""
    message = check_message(message)
    grid = cells(adapter)
    enc = adapter.encode(message, None, (), max_new_tokens)
    with closing(adapter.scheduler.submit(enc, [c.z for c in grid], max_new_tokens)) as rows:
        for row, piece in rows:
            grid[row].answer += piece
            yield grid
    question = quiz.lookup(message)
    if question is not None:
        marks = tasks.TASKS[question.task].check_many([question.example] * len(grid), [c.answer for c in grid])
        for c, ok in zip(grid, marks):
            c.right = bool(ok)
    yield grid

"""The custom task: a user's own (prompt, answer) pairs from the app's few-shot table.

Not a generator and not registered: it has no splits to draw from, so `examples` refuses, and the
app builds the examples with `custom_examples` and scores adapted answers with `CUSTOM`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from t2demo.tasks.base import OTHER, Example
from t2demo.tasks.checkers import check_contains


@dataclass(frozen=True)
class CustomTask:
    """A Task whose examples the user supplies; an answer passes if it contains the user's answer."""

    name: str = "custom"
    category: str = OTHER
    vision: bool = False
    max_new_tokens: int = 64

    def examples(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """Refuses: the custom task has no generator (see custom_examples)."""
        raise ValueError("the custom task has no generator: its examples come from tasks.custom_examples")

    def check(self, example: Example, response: str) -> bool:
        """The user's answer appears as whole words in the response (it may be embedded in a sentence)."""
        return check_contains(example, response)

    def check_many(self, examples: Sequence[Example], responses: Sequence[str]) -> list[bool]:
        """`check` for each pair."""
        return [check_contains(e, r) for e, r in zip(examples, responses)]


CUSTOM = CustomTask()


def custom_examples(pairs: Sequence[tuple[str, str]]) -> list[Example]:
    """A user's own (prompt, answer) pairs as few-shot examples of the CUSTOM task; blank rows are skipped."""
    return [Example(p.strip(), a.strip(), a.strip(), CUSTOM.name) for p, a in pairs if p.strip() or a.strip()]

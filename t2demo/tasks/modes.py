"""Latent answer modes: every task can be answered in a reliable style or in a shortcut that is often wrong.

This is the paper's premise made explicit. Transformer² assumes the base model already has a skill and
the experts only bring it out. In t2demo's world that is true by construction: each reply starts with
one of two shared markers, `Work:` (worked steps) or `Answer:` (a direct answer). In the pretraining
data one of them is reliable for the category, and the other is a shortcut that is right only part of
the time. The reliable style is in the minority, so greedy decoding mostly takes the shortcut; sampling
finds the reliable style; an expert that shifts the first token to the reliable marker fixes answers.
The reliable mode is Work for math and code, and Answer for reasoning (reciting facts misleads there),
so a wrong expert hurts and dispatch matters. On the vision model, Work reads the image first and Answer
guesses from the question alone (tasks/vqa.py).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from t2demo.tasks.base import Example

WORK, ANSWER = "Work:", "Answer:"  # "Work" and "Answer" are single tokens of the shipped tokenizer: the decision
# Share of pretraining replies in the reliable mode, and how often the shortcut's answer is still right
# (vqa's shortcut guesses from the question alone, so it is right only by chance: tasks/vqa.py).
RELIABLE_SHARE = {"math": 0.3, "code": 0.3, "reasoning": 0.4, "vqa": 0.4}
SHORTCUT_RIGHT = {"math": 0.5, "code": 0.5, "reasoning": 0.4}


@dataclass(frozen=True)
class Styles:
    """One example's reply in each mode: the reliable reply, the shortcut when right and when wrong."""

    reliable: str
    shortcut_right: str
    shortcut_wrong: str


def perturb_digit(number: int, rng: random.Random) -> int:
    """`number` with one digit changed (never a leading zero): a near miss no memorising can fix."""
    digits = list(str(abs(number)))
    i = rng.randrange(len(digits))
    digits[i] = rng.choice([d for d in "0123456789" if d != digits[i] and not (i == 0 and d == "0" and len(digits) > 1)])
    return int("".join(digits)) * (-1 if number < 0 else 1)


Replies = tuple[tuple[float, str], ...]  # (probability, reply): what pretraining shows for one example


def replies(styles: Styles, category: str) -> Replies:
    """The pretraining distribution: reliable with the category's share, else the shortcut, right or wrong."""
    share, right = RELIABLE_SHARE[category], SHORTCUT_RIGHT[category]
    return ((share, styles.reliable), ((1 - share) * right, styles.shortcut_right),
            ((1 - share) * (1 - right), styles.shortcut_wrong))


def replies_of(example: Example) -> Replies:
    """An example's pretraining reply distribution: its `meta["replies"]`, or its response alone (no modes)."""
    return example.meta.get("replies", ((1.0, example.response),))


def pretraining_reply(replies: Replies, rng: random.Random) -> str:
    """One reply drawn from a reply distribution (an example's `meta["replies"]`)."""
    weights, texts = zip(*replies)
    return rng.choices(texts, weights)[0]


def modes_of(reply: str) -> list[str]:
    """The mode markers of a reply in order: one per decision (world-math makes two)."""
    return re.findall(rf"(?<!\w)({re.escape(WORK)}|{re.escape(ANSWER)})", reply)


def in_reliable_mode(reply: str, example) -> bool | None:
    """Whether the reply takes the same modes as the example's reliable reply (None: the task has no modes)."""
    reliable = modes_of(example.response)
    return modes_of(reply) == reliable if reliable else None

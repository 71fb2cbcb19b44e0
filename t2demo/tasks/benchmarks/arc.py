"""ARC-Easy and ARC-Challenge (allenai/ai2_arc): the chosen letter.

Prompt: the authors' system message, then the question and "Options:" with one "A. text" line per
choice (tasks/arc.py). The options are lettered by position, as the authors did; the reference is
the letter of the answer's position, so the few items labelled 1-4 instead of A-D are scored right
(the authors compared the positional letter with "1"..."4" and never matched). Scorer: the
authors' reading (fishfarm ai2_arc.extract_answer): "answer is (X)", else "Answer: X", else the last
lone capital A-J. Deviations: a response with no letter scores 0 (the authors drew a seeded random
letter), and their "Let's think step by step" reply prefill is left out (chat template only).
checkers.chosen_letter is not reused: it knows A-D only and reads option texts, not this format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.benchmark import Benchmark, per_example

SYSTEM = ('The following are multiple choice questions (with answers). Think step by step and then finish your answer '
          'with "the answer is (X)" where X is the correct letter choice.')
LETTERS = "ABCDEFGHIJ"


def arc_letter(text: str) -> str | None:
    """The letter a response chooses, read as the authors read it."""
    for pattern, flags in ((r"answer is \(?([A-J])\)?", 0), (r".*[aA]nswer:\s*([A-J])", 0),
                           (r"\b([A-J])\b(?!.*\b[A-J]\b)", re.DOTALL)):
        found = re.search(pattern, text, flags)
        if found:
            return found.group(1)
    return None


def check_arc(example: Example, response: str) -> bool:
    """The chosen letter is the reference."""
    return arc_letter(response) == example.reference


def to_example(row: Mapping) -> Example:
    """The question with its lettered options under the system message; the answer's positional letter."""
    texts, labels = row["choices"]["text"], row["choices"]["label"]
    letter = LETTERS[labels.index(row["answerKey"])]
    options = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(texts))
    return Example(f"{SYSTEM}\n\n{row['question'].strip()}\nOptions:\n{options}", letter,
                   f"The answer is ({letter}).", "")


# Next-token training needs a written reply; ARC has only the answer key.
NO_REPLY = ("ARC gives only the answer key (a letter), no written answer; training on the bare \"The answer is (X).\" "
            "would teach the model to skip the step-by-step reasoning its prompt asks for: train it with --objective rl "
            "(REINFORCE, scored by the chosen letter)")
ARC_EASY = Benchmark("arc-easy", "reasoning", 512, "allenai/ai2_arc", ("ARC-Easy",),
                     ("train", "validation", "test"), to_example, per_example(check_arc), no_reply=NO_REPLY)
ARC_CHALLENGE = Benchmark("arc-challenge", "reasoning", 512, "allenai/ai2_arc", ("ARC-Challenge",),
                          ("train", "validation", "test"), to_example, per_example(check_arc), no_reply=NO_REPLY)

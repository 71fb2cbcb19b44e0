"""code (CRUXEval-like: trace a 3-step list program and give what it prints) and code-hard (5 steps,
written as a function, in wordings no training data uses); plus the code drill the base is pretrained on.

Named programs.py, not code.py, so as not to shadow the standard library's `code` module.
Reliable mode (Work): one intermediate list per line of the program,
`Work: x = [3, 1, 4]; sorted -> [1, 3, 4]; add 2 -> [3, 5, 6]. The output is [3, 5, 6].`
Shortcut (Answer): the final list at once, right half of the time in the pretraining data.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.modes import ANSWER, WORK, Styles, replies


@dataclass(frozen=True)
class ListOp:
    """One line of a program: its Python, its label in a worked answer, and what it does."""

    python: str  # the statement, e.g. "x = sorted(x)"
    label: str  # e.g. "sorted"
    fn: Callable[[list[int]], list[int]]
    shrinks: bool = False  # drops an item (a chain keeps at least two)


OP_KINDS = (  # a chain draws a kind, then one of its operations
    (ListOp("x = sorted(x)", "sorted", sorted),),
    (ListOp("x = x[::-1]", "reverse", lambda xs: xs[::-1]),),
    (ListOp("x = x[1:]", "drop first", lambda xs: xs[1:], True),),
    (ListOp("x = x[:-1]", "drop last", lambda xs: xs[:-1], True),),
    tuple(ListOp(f"x = [v + {k} for v in x]", f"add {k}", lambda xs, k=k: [v + k for v in xs]) for k in (1, 2, 3)),
    tuple(ListOp(f"x = x + [{k}]", f"append {k}", lambda xs, k=k: xs + [k]) for k in range(10)),
)

HEADS = ("What does this code print?", "What does this Python program print?", "Run this code in your head. "
         "What is the output?", "Trace this snippet and give the printed list.", "What will be printed?",
         "Tell me the output of this code.", "Can you work out what this prints?")
HARD_HEADS = ("What does f({x}) return?", "Evaluate f({x}) for the function above.",
              "If we call f({x}), what list comes back?")


def show(xs: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, xs)) + "]"


def _chain(rng: random.Random, length: int, items: int) -> tuple[list[int], list[ListOp]]:
    start = [rng.randrange(10) for _ in range(items)]
    chain, size = [], items
    while len(chain) < length:
        op = rng.choice(rng.choice(OP_KINDS))
        if op.shrinks and size <= 2:
            continue
        size += -1 if op.shrinks else 1 if op.label.startswith("append") else 0
        chain.append(op)
    return start, chain


def worked(start: list[int], chain: list[ListOp]) -> tuple[str, list[int], list[tuple[int, str]]]:
    """The reliable reply, the final list, and the probe's steps (offset in the reply, expected text): the
    input copied from the prompt, then per line of the program its label (reading which line comes next)
    and the list after it, then the output."""
    text, steps, xs = f"{WORK} x = ", [(len(WORK) + 5, show(start))], start
    text += f"{show(start)};"
    for i, op in enumerate(chain):
        xs = op.fn(xs)
        steps.append((len(text) + 1, op.label))
        text += f" {op.label} -> "
        steps.append((len(text), show(xs)))
        text += show(xs) + ("." if i == len(chain) - 1 else ";")
    text += " The output is "
    steps.append((len(text), show(xs)))
    return text + show(xs) + ".", xs, steps


def _off_by_one_item(xs: list[int], rng: random.Random) -> list[int]:
    wrong = list(xs)
    i = rng.randrange(len(wrong))
    wrong[i] = max(0, wrong[i] + rng.choice((-2, -1, 1, 2))) if wrong[i] else wrong[i] + rng.choice((1, 2))
    return wrong


def _example(rng: random.Random, prompt: str, start: list[int], chain: list[ListOp]) -> tuple[str, Callable[[], Example]]:
    reliable, result, steps = worked(start, chain)
    styles = Styles(reliable, f"{ANSWER} {show(result)}.", f"{ANSWER} {show(_off_by_one_item(result, rng))}.")
    example = Example(prompt, show(result), reliable, "", meta={"replies": replies(styles, "code"), "steps": steps})
    return prompt, lambda: example


def _script(start: list[int], chain: list[ListOp]) -> str:
    return "\n".join([f"x = {show(start)}"] + [op.python for op in chain] + ["print(x)"])


def _function(name: str, chain: list[ListOp]) -> str:
    """The chain as a function of x that returns x."""
    return "\n".join([f"def {name}(x):", *("    " + op.python for op in chain), "    return x"])


def _code_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """code: a 3-line program over a list of 4 or 5 digits."""
    start, chain = _chain(rng, 3, rng.choice((4, 5)))
    return _example(rng, f"{rng.choice(HEADS)}\n```python\n{_script(start, chain)}\n```", start, chain)


def _code_hard_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """code-hard: a 5-line function, called on a list of 5 or 6 digits, in held-out wordings."""
    start, chain = _chain(rng, 5, rng.choice((5, 6)))
    question = rng.choice(HARD_HEADS).format(x=show(start))
    return _example(rng, f"```python\n{_function('f', chain)}\n```\n{question}", start, chain)


def _function_script(start: list[int], chain: list[ListOp]) -> str:
    """The chain as a function `g` that a script calls and prints (code-hard's form is a bare `f`, asked about)."""
    return f"{_function('g', chain)}\nprint(g({show(start)}))"


def _code_drill_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Pretraining code: 1 to 5 lines over 3 to 6 digits, in the training wordings; a third written as a
    function, and the question after the code a third of the time (people ask both ways)."""
    start, chain = _chain(rng, rng.randint(1, 5), rng.randint(3, 6))
    script = _function_script(start, chain) if rng.random() < 1 / 3 else _script(start, chain)
    block, head = f"```python\n{script}\n```", rng.choice(HEADS)
    return _example(rng, f"{block}\n{head}" if rng.random() < 1 / 3 else f"{head}\n{block}", start, chain)


def last_list(text: str) -> str | None:
    """The last `[...]` of digits in `text`, normalised to `[a, b, c]` spacing (None if there is none)."""
    found = re.findall(r"\[\s*(-?\d+(?:\s*,\s*-?\d+)*)?\s*\]", text)
    if not found:
        return None
    return "[" + ", ".join(x.strip() for x in found[-1].split(",") if x.strip()) + "]"


def check_list(example: Example, response: str) -> bool:
    """The response's last list equals the reference list."""
    return last_list(response) == example.reference


CODE = SyntheticTask("code", "code", 0.0, 192, _code_sample, check_list)
CODE_HARD = SyntheticTask("code-hard", "code", 0.0, 320, _code_hard_sample, check_list)
CODE_DRILL = SyntheticTask("code-drill", "code", 0.0, 320, _code_drill_sample, check_list)

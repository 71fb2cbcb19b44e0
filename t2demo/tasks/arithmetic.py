"""math (GSM8K-like word problems) and math-hard (MATH-like: three steps, division, new wording).

Each problem is a list of arithmetic steps; the response works through them ("7 + 5 = 12. ...
The answer is 12.") and the checker compares the last number of a reply with the result.
"""

from __future__ import annotations

import random
from typing import Callable

from t2demo.tasks.base import Example, Sampler, SyntheticTask
from t2demo.tasks.checkers import check_number

Step = tuple[int | None, str, int | None]  # (left, op, right); None = the previous step's result

PEOPLE = ("Tom", "Ann", "Sam", "Mia", "Ben", "Lily", "Max", "Zoe", "Leo", "Eva")
OBJECTS = ("apples", "pens", "books", "cards", "marbles", "cookies", "stickers", "shells", "coins", "balls")


def _math_problem(rng: random.Random) -> tuple[str, list[Step]]:
    """A GSM8K-like word problem and its steps (left, op, right); each step's result feeds the next."""
    a_, b_ = rng.sample(PEOPLE, 2)
    obj = rng.choice(OBJECTS)
    kind = rng.randrange(7)
    if kind == 0:
        a, b = rng.randint(2, 30), rng.randint(2, 20)
        return f"{a_} has {a} {obj}. {a_} buys {b} more. How many {obj} does {a_} have now?", [(a, "+", b)]
    if kind == 1:
        a = rng.randint(3, 30)
        b = rng.randint(1, a - 1)
        return f"{a_} has {a} {obj}. {a_} gives {b} {obj} to {b_}. How many {obj} does {a_} have left?", [(a, "-", b)]
    if kind == 2:
        a = rng.randint(3, 30)
        b = rng.randint(1, a - 1)
        return f"{a_} had {a} {obj} and lost {b} of them. How many {obj} does {a_} have now?", [(a, "-", b)]
    if kind == 3:
        a, k = rng.randint(2, 12), rng.randint(2, 5)
        return (f"{a_} has {a} {obj}. {b_} has {k} times as many {obj} as {a_}. How many {obj} does {b_} have?",
                [(a, "*", k)])
    if kind == 4:
        a, b = rng.randint(2, 20), rng.randint(2, 15)
        c = rng.randint(1, a + b - 1)
        return (f"{a_} has {a} {obj}. {a_} buys {b} more and then gives {c} to {b_}. How many {obj} does {a_} have now?",
                [(a, "+", b), (None, "-", c)])
    if kind == 5:
        a, b = rng.randint(2, 20), rng.randint(1, 10)
        return (f"{a_} has {a} {obj}. {b_} has {b} more {obj} than {a_}. How many {obj} do they have together?",
                [(a, "+", b), (a, "+", None)])
    a, b = rng.randint(2, 6), rng.randint(2, 9)
    c = rng.randint(1, a * b - 1)
    return (f"{a_} has {a} bags with {b} {obj} in each bag. {a_} gives away {c} {obj}. How many {obj} are left?",
            [(a, "*", b), (None, "-", c)])


def _math_hard_problem(rng: random.Random) -> tuple[str, list[Step]]:
    """A MATH-like three-step problem with exact division, worded unlike `_math_problem`."""
    a_, b_ = rng.sample(PEOPLE, 2)
    obj = rng.choice(OBJECTS)
    kind = rng.randrange(6)
    if kind in (0, 1, 2):  # (a * b - c) / d in three stories
        a, b, d = rng.randint(3, 9), rng.randint(2, 6), rng.randint(2, 5)
        q = rng.randint(1, (a * b - 1) // d)
        c = a * b - d * q
        steps = [(a, "*", b), (None, "-", c), (None, "/", d)]
        if kind == 0:
            text = (f"A crate holds {a} {obj}. A shop receives {b} crates and sells {c} {obj}. The remaining {obj} "
                    f"are packed equally into {d} bags. How many {obj} go into each bag?")
        elif kind == 1:
            text = (f"{a_} saves {a} coins every week for {b} weeks, then spends {c} coins. {a_} splits the remaining "
                    f"coins equally among {d} friends. How many coins does each friend get?")
        else:
            text = (f"A train has {a} cars with {b} seats each, and {c} seats are empty. The passengers leave in "
                    f"groups of {d}. How many groups are there?")
        return text, steps
    if kind == 3:
        a, b, c = rng.randint(2, 15), rng.randint(2, 15), rng.randint(2, 6)
        d = rng.randint(1, (a + b) * c - 1)
        return f"Compute ({a} + {b}) * {c} - {d}.", [(a, "+", b), (None, "*", c), (None, "-", d)]
    if kind == 4:
        b, q = rng.randint(2, 6), rng.randint(2, 12)
        c, d = rng.randint(1, 15), rng.randint(2, 5)
        return (f"Start with {b * q}. Divide it by {b}, add {c}, and then multiply the result by {d}. "
                "What number do you get?", [(b * q, "/", b), (None, "+", c), (None, "*", d)])
    c, q = rng.randint(2, 6), rng.randint(1, 12)
    b, d = rng.randint(1, 20), rng.randint(1, 20)
    a = c * q + b
    return f"Let n = {a}. What is (n - {b}) / {c} + {d}?", [(a, "-", b), (None, "/", c), (None, "+", d)]


def _solve(steps: list[Step]) -> tuple[str, int]:
    """Worked answer ("7 + 5 = 12. 12 - 3 = 9. The answer is 9.") and the result; None = previous result."""
    ops = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y, "/": lambda x, y: x // y}
    parts, result = [], None
    for left, op, right in steps:
        left = result if left is None else left
        right = result if right is None else right
        assert op != "/" or left % right == 0
        result = ops[op](left, right)
        parts.append(f"{left} {op} {right} = {result}.")
    return " ".join(parts) + f" The answer is {result}.", result


def _math_sampler(make: Callable[[random.Random], tuple[str, list[Step]]]) -> Sampler:
    """A sampler of worked examples from a problem maker: the reference is the result, the response the steps."""
    def sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
        prompt, steps = make(rng)
        response, result = _solve(steps)
        example = Example(prompt, str(result), response, "")
        return prompt, lambda: example
    return sample


MATH = SyntheticTask("math", "math", 0.0, 64, _math_sampler(_math_problem), check_number)
MATH_HARD = SyntheticTask("math-hard", "math", 0.0, 80, _math_sampler(_math_hard_problem), check_number)

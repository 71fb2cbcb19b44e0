"""math (sums and differences of 1 to 3 digits, mostly 3, GSM8K-like wordings) and math-hard (4 digits
or two operations, in wordings no training data uses); plus the arithmetic drill the base model is
pretrained on.

Reliable mode (Work): column by column, units first, each step `digit op digit op carry = carry digit`,
e.g. 347 + 285 -> `Work: 347+285: 7+5+0=12 4+8+1=13 3+2+1=06 = 632. The answer is 632.`
(for subtraction the carry is the borrow: `2-5-0=17` means borrow 1, digit 7). Shortcut (Answer):
`Answer: 632.`, right only half of the time in the pretraining data, otherwise one digit off.
"""

from __future__ import annotations

import random
import re
from typing import Callable

from t2demo.tasks.base import Example, Sampler, SyntheticTask
from t2demo.tasks.checkers import check_number
from t2demo.tasks.modes import ANSWER, WORK, Styles, replies, perturb_digit

PEOPLE = ("Tom", "Ann", "Sam", "Mia", "Ben", "Lily", "Max", "Zoe", "Leo", "Eva")
OBJECTS = ("apples", "pens", "books", "cards", "marbles", "cookies", "stickers", "shells", "coins", "balls")

Operation = tuple[int, str, int | None]  # (left, op, right); left None = the previous result

# Wordings: {a} {b} {c} numbers, {p} {q} people, {o} objects. Training wordings serve math and the drill;
# held-out wordings only math-hard (no expert, CEM fit or pretraining example ever uses them).
ADD_WORDINGS = ("What is {a} + {b}?", "What is {a} plus {b}?", "Compute {a} + {b}.", "Add {a} and {b}.",
                "Please add {a} to {b}.", "{a} + {b} = ?", "Can you work out {a} + {b}?", "Sum of {a} and {b}?",
                "{p} has {a} {o}. {p} buys {b} more. How many {o} does {p} have now?",
                "{p} has {a} {o} and {q} has {b}. How many {o} do they have together?",
                "I have {a} {o} and find {b} more. How many {o} do I have?",
                "There are {a} {o} in the red bag and {b} in the blue bag. How many {o} are there?",
                "{p} collects {a} {o} and {q} gives {p} {b} more. How many {o} does {p} have?",
                "A class made {a} {o} in the morning and {b} in the afternoon. How many did it make in all?",
                "What do you get when you add {a} and {b}?", "Find the total of {a} and {b}.",
                "A train has {a} people on it and {b} more get on. How many people are on the train?")
SUB_WORDINGS = ("What is {a} - {b}?", "What is {a} minus {b}?", "Compute {a} - {b}.", "Subtract {b} from {a}.",
                "{a} - {b} = ?", "Can you work out {a} - {b}?", "How much is {a} take away {b}?",
                "{p} has {a} {o}. {p} gives {b} {o} to {q}. How many {o} does {p} have left?",
                "{p} had {a} {o} and lost {b} of them. How many {o} are left?",
                "I had {a} {o} and gave away {b}. How many {o} do I have now?",
                "There were {a} {o} in a jar and {p} took {b}. How many {o} are still in the jar?",
                "{p} needs {a} {o} and already has {b}. How many more {o} does {p} need?",
                "A school has {a} children and {b} of them are away today. How many children are at school?",
                "What is the difference between {a} and {b}?", "Take {b} away from {a}.",
                "A road is {a} metres long and {p} has walked {b} metres. How many metres are left?")
CHAIN_WORDINGS = ("Compute {a} + {b} - {c}.", "What is {a} + {b} - {c}?", "{a} + {b} - {c} = ?")
HARD_ADD_WORDINGS = ("A shop had {a} {o} on Monday and got {b} more on Tuesday. How many {o} does the shop have?",
                     "A farm grew {a} {o} last year and {b} this year. How many {o} is that in total?",
                     "If a box holds {a} {o} and another holds {b}, how many {o} are in both boxes?")
HARD_SUB_WORDINGS = ("A library owns {a} {o} and lends out {b}. How many {o} stay on the shelves?",
                     "A tank holds {a} litres and {b} litres leak out. How many litres are left?",
                     "Of {a} tickets, {b} were sold. How many tickets are unsold?")
HARD_CHAIN_WORDINGS = ("{p} starts the day with {a} {o}, earns {b} more and then spends {c}. How many {o} are left?",
                       "A bus carries {a} people. At the first stop {b} get on, at the second stop {c} get off. "
                       "How many people are on the bus now?",
                       "A store stocks {a} {o}, receives a delivery of {b} and sells {c}. How many {o} remain?")


def column_steps(a: int, b: int, op: str) -> list[str]:
    """The worked columns of a op b, units first: `x+y+carry=carry digit` (op '-': the carry is the borrow)."""
    width = max(len(str(a)), len(str(b)))
    da, db = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]
    steps, carry = [], 0
    for x, y in zip(map(int, da), map(int, db)):
        value = x + y + carry if op == "+" else x - y - carry
        out = (1 if value >= 10 else 0) if op == "+" else (1 if value < 0 else 0)
        steps.append(f"{x}{op}{y}{op}{carry}={out}{value % 10}")
        carry = out
    return steps


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b


def worked(ops: list[Operation]) -> tuple[str, int, list[tuple[int, str]]]:
    """The reliable reply to a chain of operations, its result, and the probe's steps (offset, text):
    each operand copied, each column's carry-digit, each pass's result and the final answer, at their
    offsets in the reply."""
    text, steps, result = WORK, [], 0
    for left, op, right in ops:
        left = result if left is None else left
        result = _apply(left, op, right)
        text += " "
        steps.append((len(text), str(left)))  # the operands copied from the prompt (or the last pass)
        text += f"{left}{op}"
        steps.append((len(text), str(right)))
        text += f"{right}:"
        for column in column_steps(left, right, op):
            text += " " + column[:-2]
            steps.append((len(text), column[-2:]))
            text += column[-2:]
        text += " = "
        steps.append((len(text), str(result)))
        text += f"{result}."
    text += " The answer is "
    steps.append((len(text), str(result)))
    return text + f"{result}.", result, steps


def _example(rng: random.Random, wording: str, ops: list[Operation]) -> tuple[str, Callable[[], Example]]:
    people = rng.sample(PEOPLE, 2)
    numbers = [ops[0][0]] + [r for _, _, r in ops]
    prompt = wording.format(a=numbers[0], b=numbers[1], c=numbers[-1], p=people[0], q=people[1], o=rng.choice(OBJECTS))
    reliable, result, steps = worked(ops)
    styles = Styles(reliable, f"{ANSWER} {result}.", f"{ANSWER} {perturb_digit(result, rng)}.")
    example = Example(prompt, str(result), reliable, "", meta={"replies": replies(styles, "math"), "steps": steps})
    return prompt, lambda: example


def number(rng: random.Random, digits: int) -> int:
    """A number of `digits` digits; one digit includes 0 ("8 + 0" is a sum people ask)."""
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits - 1)


def _pair(rng: random.Random, digits: int, op: str, other: int | None = None) -> Operation:
    a, b = number(rng, digits), number(rng, other or digits)
    if op == "-" and b > a:
        a, b = b, a
    return (a, op, b)


def _chain(rng: random.Random, digits: int) -> list[Operation]:
    a, b = number(rng, digits), number(rng, digits)
    c = rng.randint(10 ** (digits - 1), a + b)
    return [(a, "+", b), (None, "-", c)]


def _one_op(rng: random.Random, digits: int, add: tuple[str, ...], sub: tuple[str, ...]) -> tuple[str, list[Operation]]:
    op = rng.choice("+-")
    return rng.choice(add if op == "+" else sub), [_pair(rng, digits, op)]


def _math_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """math: + or - of two 3-digit numbers, or (1 in 3) of 1- or 2-digit ones, in the training wordings.

    The small ones keep an expert's worked answer right on the sums people type first ("What is 5 - 1?"):
    trained on 3 digits alone, the math expert wrote three operands for one-digit questions (`Work: 5-1-0:`)."""
    return _example(rng, *_one_op(rng, rng.choice((1, 2, 3, 3, 3, 3)), ADD_WORDINGS, SUB_WORDINGS))


def _math_hard_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """math-hard: 4-digit + or -, or 3-digit a + b - c, in held-out wordings."""
    if rng.random() < 0.5:
        return _example(rng, *_one_op(rng, 4, HARD_ADD_WORDINGS, HARD_SUB_WORDINGS))
    return _example(rng, rng.choice(HARD_CHAIN_WORDINGS), _chain(rng, 3))


def _math_drill_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Pretraining arithmetic: 1 to 4 digits, mixed widths and chains, in the training wordings."""
    roll = rng.random()
    if roll < 0.2:
        return _example(rng, rng.choice(CHAIN_WORDINGS), _chain(rng, rng.choice((2, 3, 4))))
    digits = rng.choice((1, 2, 2, 2, 3, 4, 4))  # 2 digits often: the tasks' 3 columns must not be the only width
    op = rng.choice("+-")
    other = rng.randint(1, digits) if roll < 0.4 else None
    return _example(rng, rng.choice(ADD_WORDINGS if op == "+" else SUB_WORDINGS), [_pair(rng, digits, op, other)])


COPY_HEADS = ("Which numbers does this question use?", "List the numbers in this question.",
              "Copy the numbers from this question, in order.")


def _number_copy_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Pretraining copy drill: a math drill question behind an instruction to repeat its numbers in order.

    The worked reply starts by copying the operands out of the prompt (`Work: 347+285:`); this
    single-mode drill trains that copy on its own. Keyed (and so split) by the inner question.
    """
    head = rng.choice(COPY_HEADS)
    key, build = _math_drill_sample(rng)

    def copy() -> Example:
        question = build().prompt
        numbers = re.findall(r"\d+", question)
        reply = ", ".join(numbers[:-1]) + " and " + numbers[-1] + "."
        return Example(f"{head}\n{question}", " ".join(numbers), reply, "")
    return key, copy


def check_numbers_copied(example: Example, response: str) -> bool:
    """The response repeats the question's numbers (the reference, space-separated), in order."""
    return re.findall(r"\d+", response) == example.reference.split()


MATH = SyntheticTask("math", "math", 0.0, 96, _math_sample, check_number)
MATH_HARD = SyntheticTask("math-hard", "math", 0.0, 160, _math_hard_sample, check_number)
MATH_DRILL = SyntheticTask("math-drill", "math", 0.0, 160, _math_drill_sample, check_number)
NUMBER_COPY_DRILL = SyntheticTask("number-copy-drill", "math", 0.0, 48, _number_copy_sample, check_numbers_copied)

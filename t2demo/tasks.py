"""Synthetic task suites mirroring the paper's benchmarks, small enough for a tiny model to learn.

Training tasks (experts are trained on them)  ->  unseen tasks (experts are mixed on them):
  math (GSM8K-like)            -> math-hard (MATH-like: three steps, division, new wording)
  code (MBPP-like)             -> code-hard (HumanEval-like: operations chained, described or shown by tests)
  reasoning (ARC-Easy-like)    -> reasoning-hard (ARC-Challenge-like: two hops over the world)
  vqa (TextVQA-like)           -> vqa-knowledge (OKVQA-like: read a name, recall a world fact)
plus smalltalk (category "other").

Splits are disjoint by construction: an example's split is a stable hash of its identity (the
prompt; for vqa the question plus what the image shows), each split draws from its own random
stream and drops candidates that hash elsewhere, and duplicates within a split are dropped.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import string
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

from t2demo import sandbox
from t2demo.world import COLORS, FOODS, HABITATS, CLIMATES, NAMES, WORLD

CATEGORIES = ("math", "code", "reasoning", "vqa", "other")
SPLITS = ("train", "validation", "test")
TRAINING_TASKS = ("math", "code", "reasoning", "vqa")
UNSEEN_TASKS = ("math-hard", "code-hard", "reasoning-hard", "vqa-knowledge")


@dataclass(frozen=True)
class Example:
    prompt: str  # the user message, without chat template
    reference: str  # gold final answer the checker compares against (code: the hidden tests)
    response: str  # a full correct assistant response, the supervised training target
    task: str  # samplers leave it empty; Task.examples fills it in
    image: Image.Image | None = None  # vqa tasks only (RGB)


def split_of(key: str) -> str:
    """Stable split of an example identity: 10% test, 5% validation, 85% train."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 20
    return "test" if bucket < 2 else "validation" if bucket == 2 else "train"


@dataclass(frozen=True)
class Task:
    name: str
    category: str  # one of CATEGORIES
    chance: float  # accuracy of random guessing
    max_new_tokens: int  # generation budget; >= the longest reference response in characters
    sample: Callable[[random.Random], tuple[str, Callable[[], Example]]]  # identity key, builder of the example
    score: Callable[[Example, str], bool]
    score_many: Callable[[list[Example], list[str]], list[bool]] | None = None  # batched scoring

    @property
    def vision(self) -> bool:
        """Whether its examples carry images (they run on the vision model)."""
        return self.category == "vqa"

    def examples(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """n distinct examples of `split`, the same for the same seed (a smaller n gives a prefix)."""
        assert split in SPLITS, split
        rng = random.Random(f"{self.name}|{split}|{seed}")
        out, seen = [], set()
        for _ in range(100 * n + 1000):
            if len(out) == n:
                break
            key, build = self.sample(rng)
            if key not in seen and split_of(key) == split:
                seen.add(key)
                out.append(replace(build(), task=self.name))  # built only when kept: images are the slow part
        if len(out) < n:
            raise ValueError(f"{self.name}: found only {len(out)} distinct {split} examples, not {n}")
        return out

    def check(self, example: Example, response: str) -> bool:
        """Whether `response` (a model's full answer) is correct."""
        return self.score(example, response)

    def check_many(self, examples: list[Example], responses: list[str]) -> list[bool]:
        """Score many responses at once (code runs its sandboxes in parallel)."""
        if self.score_many is not None:
            return self.score_many(examples, responses)
        return [self.score(e, r) for e, r in zip(examples, responses)]


# ----------------------------------------------------------------------------- answer parsing

def extract_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (braces may nest), or None if there is none or it is unclosed."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


def last_number(text: str) -> str | None:
    numbers = re.findall(r"-?\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3})", "", text))
    return numbers[-1] if numbers else None


def check_number(example: Example, response: str) -> bool:
    found = last_number(response)
    return found is not None and float(found) == float(example.reference)


def options_of(prompt: str) -> dict[str, str]:
    """Letter -> option text, from the prompt's line 'Options: warm (A), dry (B), wet (C), cold (D).'"""
    line = re.search(r"^Options: (.*)$", prompt, flags=re.MULTILINE)
    pairs = re.findall(r"\s*([^,]+?) \(([A-D])\)", line.group(1)) if line else []
    return {letter: text for text, letter in pairs}


def _option_key(text: str) -> str:
    return " ".join(text.lower().translate(str.maketrans("", "", string.punctuation)).split())


def chosen_letter(text: str, options: dict[str, str]) -> str | None:
    """The letter a reply chooses, from its last 'answer is X' (or the whole reply if it has none).

    The model answers with the option text, because tiny models bind option letters poorly. X may be
    a lone capital letter, or exactly one option's text (case and punctuation ignored). A trailing
    letter tag, as in 'cold (A)', is ignored: the text decides. Anything else chooses nothing.
    """
    found = re.findall(r"answer is([^.!?\n]*)", text, flags=re.IGNORECASE)
    phrase = found[-1] if found else text
    lone = re.fullmatch(r"\W*([A-D])\W*", phrase)
    if lone:
        return lone.group(1)
    key = _option_key(re.sub(r"\(\s*[A-D]\s*\)\W*$", "", phrase))
    matches = [letter for letter, option in options.items() if _option_key(option) == key]
    return matches[0] if len(matches) == 1 else None


def check_letter(example: Example, response: str) -> bool:
    return chosen_letter(response, options_of(example.prompt)) == example.reference


def normalize(text: str) -> str:
    """VQA-style normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def check_exact(example: Example, response: str) -> bool:
    return normalize(response) == normalize(example.reference)


def check_nonempty(example: Example, response: str) -> bool:
    return bool(response.strip())


def check_contains(example: Example, response: str) -> bool:
    """The normalised reference appears as whole words in the normalised response (for a user's own
    few-shot examples, whose answers may be embedded in a sentence)."""
    reference = normalize(example.reference)
    return bool(reference) and f" {reference} " in f" {normalize(response)} "


def custom_examples(pairs: list[tuple[str, str]]) -> list[Example]:
    """A user's own (prompt, answer) pairs as few-shot examples of the CUSTOM task; blank rows are skipped."""
    return [Example(p.strip(), a.strip(), a.strip(), "custom") for p, a in pairs if p.strip() or a.strip()]


# ----------------------------------------------------------------------------- math

PEOPLE = ("Tom", "Ann", "Sam", "Mia", "Ben", "Lily", "Max", "Zoe", "Leo", "Eva")
OBJECTS = ("apples", "pens", "books", "cards", "marbles", "cookies", "stickers", "shells", "coins", "balls")


def _math_problem(rng: random.Random) -> tuple[str, list[tuple[int, str, int]]]:
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


def _math_hard_problem(rng: random.Random) -> tuple[str, list[tuple[int, str, int]]]:
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


def _solve(steps: list[tuple[int | None, str, int | None]]) -> tuple[str, int]:
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


def _math_sampler(make: Callable) -> Callable[[random.Random], tuple[str, Callable[[], Example]]]:
    def sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
        prompt, steps = make(rng)
        response, result = _solve(steps)
        example = Example(prompt, str(result), response, "")
        return prompt, lambda: example
    return sample


# ----------------------------------------------------------------------------- code

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORDS = ("apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "robot", "candle", "garden", "rocket",
         "pencil", "window", "bridge", "forest", "planet", "yellow", "button", "dragon", "silver") + NAMES

ADD, MUL, POW, ATOM = 1, 2, 3, 4  # precedence of an expression, to know when to parenthesise


@dataclass(frozen=True)
class Op:
    """One code operation: how to say it (alone or as a step) and how to write it in Python."""
    kind: str  # input type: int, str or list
    out: str  # output type
    name: str  # function name when it is the whole task (code)
    alone: str  # phrase with {a} for the argument, e.g. "{a} plus 3"
    step: str  # participle for compositions (code-hard), e.g. "increased by 3"
    expr: str  # Python with {e} for the input expression, e.g. "{e} + 3"
    level: int  # precedence of the result
    needs: int  # precedence the input needs to go in without parentheses
    fn: Callable

    def apply(self, e: str, level: int) -> str:
        return self.expr.format(e=e if level >= self.needs else f"({e})")


def _ops() -> list[Op]:
    ops = []
    for k in range(2, 10):
        w = NUMBER_WORDS[k]
        ops += [
            Op("int", "int", f"add_{w}", f"{{a}} plus {k}", f"increased by {k}", f"{{e}} + {k}", ADD, ADD, lambda x, k=k: x + k),
            Op("int", "int", f"subtract_{w}", f"{{a}} minus {k}", f"decreased by {k}", f"{{e}} - {k}", ADD, ADD, lambda x, k=k: x - k),
            Op("int", "int", f"times_{w}", f"{{a}} times {k}", f"multiplied by {k}", f"{{e}} * {k}", MUL, MUL, lambda x, k=k: x * k),
        ]
    ops.append(Op("int", "int", "square", "{a} squared", "squared", "{e} ** 2", POW, ATOM, lambda x: x ** 2))
    for k in range(1, 5):
        w = NUMBER_WORDS[k]
        ops += [
            Op("str", "str", f"first_{w}", f"the first {k} characters of {{a}}", f"cut to its first {k} characters",
               f"{{e}}[:{k}]", ATOM, ATOM, lambda s, k=k: s[:k]),
            Op("str", "str", f"last_{w}", f"the last {k} characters of {{a}}", f"cut to its last {k} characters",
               f"{{e}}[-{k}:]", ATOM, ATOM, lambda s, k=k: s[-k:]),
        ]
    for k in range(2, 5):
        ops.append(Op("str", "str", f"repeat_{NUMBER_WORDS[k]}", f"{{a}} repeated {k} times", f"repeated {k} times",
                      f"{{e}} * {k}", MUL, MUL, lambda s, k=k: s * k))
    ops += [
        Op("str", "str", "reverse_string", "{a} reversed", "reversed", "{e}[::-1]", ATOM, ATOM, lambda s: s[::-1]),
        Op("str", "str", "to_upper", "{a} in upper case", "upper-cased", "{e}.upper()", ATOM, ATOM, lambda s: s.upper()),
        Op("str", "int", "string_length", "the number of characters in {a}", "measured in characters", "len({e})",
           ATOM, ADD, len),
        Op("list", "int", "list_sum", "the sum of the numbers in {a}", "summed", "sum({e})", ATOM, ADD, sum),
        Op("list", "int", "list_max", "the largest number in {a}", "reduced to its largest number", "max({e})", ATOM, ADD, max),
        Op("list", "int", "list_min", "the smallest number in {a}", "reduced to its smallest number", "min({e})", ATOM, ADD, min),
        Op("list", "int", "list_length", "the number of items in {a}", "counted", "len({e})", ATOM, ADD, len),
        Op("list", "list", "sort_list", "{a} sorted from smallest to largest", "sorted", "sorted({e})", ATOM, ADD, sorted),
        Op("list", "list", "reverse_list", "{a} in reverse order", "reversed", "{e}[::-1]", ATOM, ATOM, lambda xs: xs[::-1]),
        Op("list", "list", "double_all", "{a} with every number doubled", "with every number doubled",
           "[v * 2 for v in {e}]", ATOM, ADD, lambda xs: [v * 2 for v in xs]),
    ]
    return ops


def _branch_ops() -> list[Op]:
    """MBPP-style one-liners with a condition: filters over lists, and if/else over integers."""
    ops = []
    tests = [("even", "v % 2 == 0", lambda v: v % 2 == 0), ("odd", "v % 2 == 1", lambda v: v % 2 == 1)]
    tests += [(f"greater than {k}", f"v > {k}", lambda v, k=k: v > k) for k in range(3, 16, 3)]
    tests += [(f"less than {k}", f"v < {k}", lambda v, k=k: v < k) for k in range(3, 16, 3)]
    tests += [(f"divisible by {k}", f"v % {k} == 0", lambda v, k=k: v % k == 0) for k in (3, 4, 5)]
    for i, (say, py, keep) in enumerate(tests):
        ops += [
            Op("list", "int", f"count_matching_{i}", f"how many numbers in {{a}} are {say}", "", f"sum(1 for v in {{e}} if {py})",
               ATOM, ADD, lambda xs, keep=keep: sum(1 for v in xs if keep(v))),
            Op("list", "int", f"sum_matching_{i}", f"the sum of the numbers in {{a}} that are {say}", "", f"sum(v for v in {{e}} if {py})",
               ATOM, ADD, lambda xs, keep=keep: sum(v for v in xs if keep(v))),
            Op("list", "list", f"keep_matching_{i}", f"the numbers in {{a}} that are {say}", "", f"[v for v in {{e}} if {py}]",
               ATOM, ADD, lambda xs, keep=keep: [v for v in xs if keep(v)]),
        ]
    arithmetic = [op for op in OPS if op.kind == "int" and op.level in (ADD, MUL)]
    conditions = [("even", "{a} % 2 == 0", lambda x: x % 2 == 0), ("odd", "{a} % 2 == 1", lambda x: x % 2 == 1)]
    conditions += [(f"greater than {k}", f"{{a}} > {k}", lambda x, k=k: x > k) for k in (5, 10, 15, 20)]
    for say, py, cond in conditions:
        for then in arithmetic:
            for other in arithmetic:
                if then is other:
                    continue
                phrase = f"{then.alone} if {{a}} is {say}, otherwise {other.alone}"
                expr = f"{then.expr.format(e='{e}')} if {py.format(a='{e}')} else {other.expr.format(e='{e}')}"
                ops.append(Op("int", "int", "apply_rule", phrase, "", expr, 0, ATOM,
                              lambda x, c=cond, t=then.fn, o=other.fn: t(x) if c(x) else o(x)))
    return ops


OPS = _ops()
BRANCH_OPS = _branch_ops()
ARG_NAMES = {"int": ("x", "n", "num", "value"), "str": ("s", "text", "word"), "list": ("xs", "nums", "values")}
EASY_TEMPLATES = (
    "Write a Python function {name}({a}) that returns {what}.\nYour code should pass: assert {name}({ex}) == {out}",
    "Write a function {name}({a}) to return {what}.\nTest: assert {name}({ex}) == {out}",
    "Create a Python function named {name} that takes {a} and returns {what}.\nExample: assert {name}({ex}) == {out}",
)
HARD_TEMPLATES = (
    "Implement {name}({a}): give back {a} {s1}, then {s2}, then {s3}.\nExample: {name}({ex}) == {out}",
    'Complete this function.\ndef {name}({a}):\n    """Return {a} {s1}, and then {s2}, and then {s3}.\n    >>> {name}({ex})\n    {out}\n    """',
    "Write {name}({a}). It should output {a} {s1}, then {s2}, then {s3}. For instance {name}({ex}) gives {out}.",
)
EXAMPLE_TEMPLATES = (  # programming by example: only the tests say what the function does
    "Write a Python function {name}({a}) that passes these tests:\n{tests}",
    "Write {name}({a}) such that:\n{tests}",
    "Find the rule behind these tests and implement {name}({a}).\n{tests}",
)
HARD_EXAMPLE_TEMPLATES = (
    "Implement {name}({a}) so that all of these hold:\n{tests}",
    "Here is how {name}({a}) behaves:\n{tests}\nWrite {name}.",
)
GENERIC_NAMES = ("f", "g", "solve", "transform", "compute", "mystery", "apply_rule")  # say nothing about the operation
SHOWN, HIDDEN = 3, 4  # programming by example: tests in the prompt, further tests only the checker runs
EXAMPLE_ATTEMPTS = 20  # input draws per chain before another chain is drawn


def _random_input(kind: str, rng: random.Random):
    if kind == "int":
        return rng.randint(0, 30)
    if kind == "str":
        return rng.choice(WORDS)
    return [rng.randint(0, 20) for _ in range(rng.randint(3, 6))]


def _distinct_inputs(kind: str, rng: random.Random, n: int) -> list:
    inputs = []
    while len(inputs) < n:
        x = _random_input(kind, rng)
        if x not in inputs:
            inputs.append(x)
    return inputs


def _run(ops: tuple[Op, ...], x):
    for op in ops:
        x = op.fn(x)
    return x


def _random_chain(rng: random.Random, length: int) -> tuple[Op, ...]:
    chain = [rng.choice(OPS)]
    while len(chain) < length:
        chain.append(rng.choice([op for op in OPS if op.kind == chain[-1].out and op is not chain[-1]]))
    return tuple(chain)


@lru_cache(maxsize=None)
def _chains(kind: str, length: int) -> tuple[tuple[Op, ...], ...]:
    """Every chain `_random_chain` can draw for this input type: the hypotheses a solver must tell apart."""
    chains = [(op,) for op in OPS if op.kind == kind]
    for _ in range(length - 1):
        chains = [c + (op,) for c in chains for op in OPS if op.kind == c[-1].out and op is not c[-1]]
    return tuple(chains)


@lru_cache(maxsize=4096)
def _agreeing(kind: str, length: int, x) -> dict[str, frozenset[int]]:
    """For input x (a tuple for lists, to be hashable): each output's repr -> the indices of the chains
    of `_chains(kind, length)` that give it. Sets make the checks below C-speed."""
    groups: dict[str, set[int]] = {}
    for j, chain in enumerate(_chains(kind, length)):
        groups.setdefault(repr(_run(chain, list(x) if kind == "list" else x)), set()).add(j)
    return {out: frozenset(js) for out, js in groups.items()}


def _matching(kind: str, length: int, inputs: list, outputs: list) -> frozenset[int]:
    """Indices of the chains of `length` ops that map every input to its output."""
    return frozenset.intersection(*(_agreeing(kind, length, tuple(x) if kind == "list" else x).get(repr(y), frozenset())
                                    for x, y in zip(inputs, outputs)))


@lru_cache(maxsize=None)
def _compositions(kind: str) -> frozenset[tuple[Op, Op]]:
    """Two-op chains that no single op equals on a fixed probe (sorted-then-summed is just summed)."""
    probe = _distinct_inputs(kind, random.Random(0), 12)
    return frozenset(c for c in _chains(kind, 2) if not _matching(kind, 1, probe, [_run(c, x) for x in probe]))


def _well_posed(chain: tuple[Op, ...], inputs: list) -> bool:
    """Whether every chain of the same length that passes the shown tests passes the hidden ones too
    (the tests pin the answer down), and for compositions, no single operation passes them all."""
    kind, outputs = chain[0].kind, [_run(chain, x) for x in inputs]
    chains = _chains(kind, len(chain))
    consistent = _matching(kind, len(chain), inputs[:SHOWN], outputs[:SHOWN])
    determined = all(_run(chains[j], x) == y for j in consistent for x, y in zip(inputs[SHOWN:], outputs[SHOWN:]))
    return determined and (len(chain) == 1 or not _matching(kind, 1, inputs, outputs))


def _code_example(rng: random.Random, ops: tuple[Op, ...], name: str, template: str, what: dict, inputs: list,
                  shown: int) -> tuple[str, Callable]:
    """Prompt with the first `shown` tests visible (as asserts, or the first as an example), hidden tests =
    all of them, reference solution."""
    a = rng.choice(ARG_NAMES[ops[0].kind])
    expr, level = a, ATOM
    for op in ops:
        expr, level = op.apply(expr, level), op.level
    asserts = [f"assert {name}({x!r}) == {_run(ops, x)!r}" for x in inputs]
    prompt = template.format(name=name, a=a, ex=repr(inputs[0]), out=repr(_run(ops, inputs[0])),
                             tests="\n".join(asserts[:shown]), **{k: v.format(a=a) for k, v in what.items()})
    response = f"```python\ndef {name}({a}):\n    return {expr}\n```"
    example = Example(prompt, "\n".join(asserts) + "\n", response, "")
    return prompt, lambda: example


def _described_example(rng: random.Random, ops: tuple[Op, ...], name: str, template: str, what: dict) -> tuple[str, Callable]:
    """The operation is described in words, with one worked test; three more tests are hidden."""
    return _code_example(rng, ops, name, template, what, _distinct_inputs(ops[0].kind, rng, 4), 1)


def _by_example(rng: random.Random, length: int, templates: tuple[str, ...]) -> tuple[str, Callable]:
    """MBPP-style programming by example: a generic name and SHOWN asserts, the operation left to infer.

    Inputs are redrawn until the tests are well posed (`_well_posed`), so the task is hard but never
    a guess, and a composition is never solved by one operation.
    """
    while True:
        chain = _random_chain(rng, length)
        if length == 2 and chain not in _compositions(chain[0].kind):
            continue
        for _ in range(EXAMPLE_ATTEMPTS):
            inputs = _distinct_inputs(chain[0].kind, rng, SHOWN + HIDDEN)
            if _well_posed(chain, inputs):
                return _code_example(rng, chain, rng.choice(GENERIC_NAMES), rng.choice(templates), {}, inputs, SHOWN)


def _lookup_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """A table of world facts as a dict: code that needs the model's knowledge, as real code often does."""
    attribute = rng.choice(("color", "habitat", "food"))
    creatures = rng.sample(WORLD.creatures, rng.randint(2, 4))
    names = [c.name for c in creatures]
    table = {c.name: getattr(c, attribute) for c in creatures}
    name, arg = f"{attribute}_of", "name"
    listed = ", ".join(f"the {n}" for n in names[:-1]) + f" and the {names[-1]}"
    what = f"the {attribute} of the creature {arg}, for {listed}"
    prompt = rng.choice(EASY_TEMPLATES).format(name=name, a=arg, what=what, ex=repr(names[0]), out=repr(table[names[0]]))
    asserts = [f"assert {name}({n!r}) == {table[n]!r}" for n in names]
    response = f"```python\ndef {name}({arg}):\n    return {table!r}[{arg}]\n```"
    example = Example(prompt, "\n".join(asserts) + "\n", response, "")
    return prompt, lambda: example


def _code_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """A quarter each: single operations, branching one-liners (filters, if/else), world-fact tables,
    and single operations to infer from tests (described operations alone saturate a tiny model)."""
    family = rng.randrange(4)
    if family == 2:
        return _lookup_sample(rng)
    if family == 3:
        return _by_example(rng, 1, EXAMPLE_TEMPLATES)
    op = rng.choice(OPS if family == 0 else BRANCH_OPS)
    return _described_example(rng, (op,), op.name, rng.choice(EASY_TEMPLATES), {"what": op.alone})


def _code_hard_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Half three described operations chained, half two chained operations to infer from tests:
    the parts are familiar, the composition is not."""
    if rng.randrange(2):
        return _by_example(rng, 2, HARD_EXAMPLE_TEMPLATES)
    chain = _random_chain(rng, 3)
    what = {f"s{i + 1}": op.step for i, op in enumerate(chain)}
    return _described_example(rng, chain, rng.choice(GENERIC_NAMES), rng.choice(HARD_TEMPLATES), what)


def extract_code(response: str) -> str | None:
    """The first fenced code block (closed or cut off), else everything from the first `def`."""
    fenced = re.search(r"```[a-zA-Z]*\n(.*?)(?:```|$)", response, flags=re.DOTALL)
    if fenced:
        return fenced.group(1)
    start = response.find("def ")
    return response[start:] if start >= 0 else None


CODE_TIMEOUT_S = 1.0  # per snippet; the hidden tests take milliseconds


def check_code(example: Example, response: str) -> bool:
    """True iff the extracted code passes the hidden tests, run in the sandbox."""
    return check_code_many([example], [response])[0]


def check_code_many(examples: list[Example], responses: list[str]) -> list[bool]:
    """Run each extracted answer followed by its hidden tests in the sandbox, in parallel.

    The tests end by printing a fresh random token, so code that exits early (exit(0)) fails.
    """
    token = secrets.token_hex(8)
    codes = [extract_code(r) or "" for r in responses]
    runnable = [i for i, code in enumerate(codes) if code.strip()]
    programs = [f"{codes[i]}\n\n{examples[i].reference}\nprint({token!r})\n" for i in runnable]
    passed = [False] * len(codes)
    for i, result in zip(runnable, sandbox.run_many(programs, timeout_s=CODE_TIMEOUT_S)):
        passed[i] = result.ok and token in result.stdout
    return passed


# ----------------------------------------------------------------------------- reasoning

LETTERS = "ABCD"


def _choice_example(rng: random.Random, question: str, answer: str, wrong: list[str], because: str) -> tuple[str, Callable[[], Example]]:
    """4-way multiple choice with the answer at a random letter; `wrong` must all be false.

    The response names the option text, not its letter (see `chosen_letter`); the reference is the letter.
    """
    options = [answer] + rng.sample(wrong, 3)
    rng.shuffle(options)
    letter = LETTERS[options.index(answer)]
    prompt = question + "\nOptions: " + ", ".join(f"{o} ({L})" for L, o in zip(LETTERS, options)) + ".\nAnswer with the option."
    example = Example(prompt, letter, f"{because} The answer is {answer}.", "")
    return prompt, lambda: example


def _reasoning_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """ARC-Easy-like: one world fact."""
    c = rng.choice(WORLD.creatures)
    others = [o for o in WORLD.creatures if o is not c]
    lives, is_, eats = f"The {c.name} lives in the {c.habitat}.", f"The {c.name} is {c.color}.", f"The {c.name} eats {c.food}."
    kind = rng.randrange(7)
    if kind == 0:
        wrong = [o.name for o in others if o.habitat != c.habitat]
        return _choice_example(rng, f"Which creature lives in the {c.habitat}?", c.name, wrong, lives)
    if kind == 1:
        wrong = [o.name for o in others if o.color != c.color]
        return _choice_example(rng, f"Which creature is {c.color}?", c.name, wrong, is_)
    if kind == 2:
        return _choice_example(rng, f"Which creature eats {c.food}?", c.name, [o.name for o in others], eats)
    if kind == 3:
        wrong = [x for x in COLORS if x != c.color]
        return _choice_example(rng, f"What color is the {c.name}?", c.color, wrong, is_)
    if kind == 4:
        wrong = [x for x in HABITATS if x != c.habitat]
        return _choice_example(rng, f"Where does the {c.name} live?", c.habitat, wrong, lives)
    if kind == 5:
        wrong = [x for x in FOODS if x != c.food]
        return _choice_example(rng, f"What does the {c.name} eat?", c.food, wrong, eats)
    climate = WORLD.climate[c.habitat]
    wrong = [x for x in CLIMATES if x != climate]
    return _choice_example(rng, f"What is the weather like in the {c.habitat}?", climate, wrong,
                           f"The {c.habitat} is {climate}.")


def _reasoning_hard_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """ARC-Challenge-like: two facts chained (creature -> habitat -> climate, food -> creature -> trait)."""
    c = rng.choice(WORLD.creatures)
    climate = WORLD.climate[c.habitat]
    lives, eats = f"The {c.name} lives in the {c.habitat}.", f"The {c.name} eats {c.food}."
    kind = rng.randrange(4)
    if kind == 0:
        wrong = [o.name for o in WORLD.creatures if WORLD.climate[o.habitat] != climate]
        return _choice_example(rng, f"Which creature lives somewhere {climate}?", c.name, wrong,
                               f"{lives} The {c.habitat} is {climate}.")
    if kind == 1:
        wrong = [x for x in COLORS if x != c.color]
        return _choice_example(rng, f"What color is the creature that eats {c.food}?", c.color, wrong,
                               f"{eats} The {c.name} is {c.color}.")
    if kind == 2:
        wrong = [x for x in HABITATS if x != c.habitat]
        return _choice_example(rng, f"Where does the creature that eats {c.food} live?", c.habitat, wrong, f"{eats} {lives}")
    wrong = [x for x in CLIMATES if x != climate]
    return _choice_example(rng, f"What is the weather like where the {c.name} lives?", climate, wrong,
                           f"{lives} The {c.habitat} is {climate}.")


# ----------------------------------------------------------------------------- vqa

SIGN_WORDS = ("open", "stop", "exit", "cafe", "park", "bank", "hotel", "sale", "push", "pull", "taxi", "bus", "menu",
              "shop", "books", "pizza", "tea", "milk", "bread", "music", "train", "north", "south", "east", "west",
              "left", "right", "quiet", "welcome", "hello")
THINGS = ("sign", "poster", "label", "card", "board", "banner", "note", "door", "box", "screen", "ticket", "flag")
READ_QUESTIONS = ("What word is written on the {t}?", "What does the {t} say?", "What is the text on the {t}?",
                  "Read the word on the {t}.", "Which word is shown on the {t}?", "What is written on this {t}?")
KNOWLEDGE_QUESTIONS = {
    "habitat": ("Where does the creature named on the {t} live?", "The {t} names a creature. Where does it live?"),
    "food": ("What does the creature named on the {t} eat?", "The {t} names a creature. What does it eat?"),
    "color": ("What color is the creature named on the {t}?", "The {t} names a creature. What color is it?"),
}
IMAGE_SIDES = (64, 80, 96, 112, 128)


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _word_layout(word: str, rng: random.Random) -> tuple:
    """Random look of a word image: size, colors (dark on light), a font size that fits, position."""
    w = rng.choice(IMAGE_SIDES)
    h = rng.choice([s for s in IMAGE_SIDES if s <= w])
    fg = tuple(rng.randint(0, 90) for _ in range(3))
    bg = tuple(rng.randint(170, 255) for _ in range(3))
    width = rng.uniform(0.7, 0.95) * (w - 8)  # big text, as on a sign: the letters span several patches
    size = 64
    while True:
        left, top, right, bottom = _font(size).getbbox(word)
        if right - left <= width and bottom - top <= h - 8:
            break
        size -= 1
    x = rng.randint(4, w - 4 - (right - left))
    y = rng.randint(4, h - 4 - (bottom - top))
    return word, (w, h), fg, bg, size, (x - left, y - top)


def render_word(word: str, size: tuple[int, int], fg: tuple, bg: tuple, font_size: int, xy: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, bg)
    ImageDraw.Draw(image).text(xy, word, fill=fg, font=_font(font_size))
    return image


def _vqa_example(rng: random.Random, question: str, word: str, answer: str) -> tuple[str, Callable[[], Example]]:
    """Identity = question + everything that decides the pixels; pixels are drawn only if kept."""
    layout = _word_layout(word, rng)
    return f"{question}|{layout}", lambda: Example(question, answer, answer, "", render_word(*layout))


def _vqa_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """TextVQA-like: read the word."""
    word = rng.choice(SIGN_WORDS + NAMES)
    question = rng.choice(READ_QUESTIONS).format(t=rng.choice(THINGS))
    return _vqa_example(rng, question, word, word)


def _vqa_knowledge_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """OKVQA-like: read a creature's name, then answer with a fact about it from the world."""
    c = rng.choice(WORLD.creatures)
    attribute = rng.choice(sorted(KNOWLEDGE_QUESTIONS))
    question = rng.choice(KNOWLEDGE_QUESTIONS[attribute]).format(t=rng.choice(THINGS))
    return _vqa_example(rng, question, c.name, getattr(c, attribute))


# every text-only vqa question, for the dispatch data (within one question only the image varies)
VQA_QUESTIONS = {
    "vqa": tuple(q.format(t=t) for q in READ_QUESTIONS for t in THINGS),
    "vqa-knowledge": tuple(q.format(t=t) for qs in KNOWLEDGE_QUESTIONS.values() for q in qs for t in THINGS),
}


# ----------------------------------------------------------------------------- smalltalk

SMALLTALK = {
    "greeting": (("Hello!", "Nice to meet you.", "It is good to see you.", "How is your day going?", "I just wanted to say hi.",
                  "Are you there?", "Good to talk to you again.", "Long time no see."),
                 ("Hello! How can I help you today?", "Hi there! What can I do for you?")),
    "thanks": (("Thank you!", "Thanks a lot for your help.", "Thank you so much.", "Many thanks for the answer.",
                "That was very helpful, thanks.", "I really appreciate your help.", "Thanks, that worked.", "Cheers for that."),
               ("You are welcome!", "Happy to help!", "Glad I could help!")),
    "how": (("How are you?", "How are you doing today?", "How is it going?", "Are you feeling well?",
             "How have you been?", "What is up?", "How do you feel today?", "Is everything good with you?"),
            ("I am doing well, thank you! How can I help?", "All good here, thanks for asking!")),
    "bye": (("Goodbye!", "See you later.", "I have to go now.", "Bye for now.", "Talk to you tomorrow.",
             "That is all for today.", "Have a nice evening.", "See you soon."),
            ("Goodbye! Have a nice day.", "See you soon! Take care.")),
}
OPENERS = ("", "Hi. ", "Hey. ", "Hello there. ", "Good morning. ", "Good evening. ", "Oh hi. ", "Okay. ", "Hmm. ", "Yo. ")
ADDRESSES = ("", " friend", " buddy", " assistant", " pal", " mate", " robot", " there", " Sam", " Mia", " Ben",
             " Zoe", " Leo", " Eva")
CLOSERS = ("", " :)", " Have a good one.", " I hope you are well.", " It was fun.", " Take care.", " Cheers.",
           " You are great.", " Nice weather today.", " I like talking to you.")


def _smalltalk_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    intent = rng.choice(sorted(SMALLTALK))
    lines, replies = SMALLTALK[intent]
    line, address = rng.choice(lines), rng.choice(ADDRESSES)
    if address:  # "Thank you!" -> "Thank you, friend!"
        line = line[:-1] + "," + address + line[-1]
    prompt = rng.choice(OPENERS) + line + rng.choice(CLOSERS)
    example = Example(prompt, intent, rng.choice(replies), "")
    return prompt, lambda: example


# ----------------------------------------------------------------------------- registry
# chance: 0 for open answers; vqa: a random word of the right kind.

TASKS: dict[str, Task] = {t.name: t for t in (
    Task("math", "math", 0.0, 64, _math_sampler(_math_problem), check_number),
    Task("math-hard", "math", 0.0, 80, _math_sampler(_math_hard_problem), check_number),
    Task("code", "code", 0.0, 160, _code_sample, check_code, check_code_many),
    Task("code-hard", "code", 0.0, 160, _code_hard_sample, check_code, check_code_many),
    Task("reasoning", "reasoning", 0.25, 64, _reasoning_sample, check_letter),
    Task("reasoning-hard", "reasoning", 0.25, 96, _reasoning_hard_sample, check_letter),
    Task("vqa", "vqa", 1 / len(SIGN_WORDS + NAMES), 16, _vqa_sample, check_exact),
    Task("vqa-knowledge", "vqa", (1 / len(HABITATS) + 1 / len(FOODS) + 1 / len(COLORS)) / 3, 16,
         _vqa_knowledge_sample, check_exact),
    Task("smalltalk", "other", 0.0, 48, _smalltalk_sample, check_nonempty),
)}


# A user's own examples (the app's few-shot table): no generator, scored by check_contains.
def _user_supplied(rng: random.Random):
    raise ValueError("the custom task has no generator: its examples come from tasks.custom_examples")


CUSTOM = Task("custom", "other", 0.0, 64, _user_supplied, check_contains)


# ----------------------------------------------------------------------------- dispatch (first pass)

CLASSIFICATION_INSTRUCTION = (
    "Classify the request below into one category.\n"
    "- math: a word problem or a calculation with numbers.\n"
    "- code: writing or completing a Python function.\n"
    "- reasoning: a question about creatures, places, foods or weather with lettered choices.\n"
    "- vqa: a question about a word or picture shown in an image.\n"
    "- other: anything else, such as greetings, thanks or small talk.\n"
    "Request: {prompt}\n"
    "Answer with the category name inside \\boxed{}."
)


def classification_prompt(prompt: str) -> str:
    """CLASSIFICATION_INSTRUCTION filled in. Not str.format: the instruction has literal braces."""
    return CLASSIFICATION_INSTRUCTION.replace("{prompt}", prompt)


def classification_examples(split: str, n: int, seed: int = 0) -> list[Example]:
    """(prompt, category) pairs over all tasks, the five categories equally often.

    Prompts come from the same split of their task. vqa prompts are the question alone (no image):
    a question text is used only in the split its text hashes to, so texts never cross splits,
    but with ~100 texts per vqa task they do repeat within a split.
    """
    assert split in SPLITS, split
    rng = random.Random(f"classification|{split}|{seed}")
    per_task = n // len(CATEGORIES) + 1
    pools = {name: iter(task.examples(split, per_task, seed)) for name, task in TASKS.items() if task.category != "vqa"}
    texts = {name: [q for q in qs if split_of(q) == split] for name, qs in VQA_QUESTIONS.items()}
    by_category = {c: [name for name, t in TASKS.items() if t.category == c] for c in CATEGORIES}
    out = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        name = rng.choice(by_category[category])
        prompt = rng.choice(texts[name]) if category == "vqa" else next(pools[name]).prompt
        out.append(Example(classification_prompt(prompt), category, f"\\boxed{{{category}}}", "classification"))
    rng.shuffle(out)
    return out

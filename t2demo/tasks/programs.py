"""code (MBPP-like) and code-hard (HumanEval-like: operations chained, described or shown by tests).

Named programs.py, not code.py, so as not to shadow the standard library's `code` module. A task is
a chain of operations (`Op`): described in words, or left to infer from shown tests; the hidden
tests (the reference) run in the sandbox against the model's code.
"""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from t2demo import sandbox
from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.world import NAMES, WORLD

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
        """Python for this op applied to expression `e` (of precedence `level`), parenthesised only if needed."""
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


def _random_input(kind: str, rng: random.Random) -> int | str | list[int]:
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


def _run(ops: tuple[Op, ...], x: object) -> object:
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


CODE = SyntheticTask("code", "code", 0.0, 160, _code_sample, check_code, check_code_many)
CODE_HARD = SyntheticTask("code-hard", "code", 0.0, 160, _code_hard_sample, check_code, check_code_many)

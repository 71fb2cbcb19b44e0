"""pass@1 for MBPP and HumanEval: the greedy answer's code and the data set's tests, run in the sandbox.

A program is whatever must precede the model's code (HumanEval: the prompt's imports and helpers),
the code (`extract_code`: the first fenced block, else from the first `def`), then the tests;
it passes when it runs to its end, which a fresh random token printed last proves (so code that
calls exit(0) early fails). Nothing runs outside t2demo.sandbox.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence

from t2demo import sandbox
from t2demo.tasks.base import Example

# The authors' system message for both code benchmarks (tasks/mbpp2.py), its double space included.
SYSTEM = ("You are an exceptionally intelligent coding assistant that  consistently delivers accurate and reliable "
          "responses to user instructions.")
TIMEOUT_S = 3.0  # per program, as the HumanEval and evalplus harnesses allow


def extract_code(response: str) -> str | None:
    """The first fenced code block (closed or cut off), else everything from the first `def`."""
    fenced = re.search(r"```[a-zA-Z]*\n(.*?)(?:```|$)", response, flags=re.DOTALL)
    if fenced:
        return fenced.group(1)
    start = response.find("def ")
    return response[start:] if start >= 0 else None


def pass_at_1(examples: Sequence[Example], responses: Sequence[str],
              program: Callable[[Example, str], str]) -> list[bool]:
    """Whether each response's code passes its example's tests; program(example, code) assembles the script."""
    token = secrets.token_hex(8)
    codes = [extract_code(r) or "" for r in responses]
    runnable = [i for i, code in enumerate(codes) if code.strip()]
    scripts = [f"{program(examples[i], codes[i])}\nprint({token!r})\n" for i in runnable]
    passed = [False] * len(codes)
    for i, result in zip(runnable, sandbox.run_many(scripts, timeout_s=TIMEOUT_S) if scripts else []):
        passed[i] = result.ok and token in result.stdout
    return passed

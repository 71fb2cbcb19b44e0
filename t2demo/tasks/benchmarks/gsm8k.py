"""GSM8K (grade-school word problems, openai/gsm8k "main"): the final number.

Prompt: the authors' system message (tasks/gsm8k.py in SakanaAI/self-adaptive-llms), then the
question. Reference: the number after "####" in the solution, commas dropped. Scorer: the
response's last number equals it (checkers.check_number). The authors' regex read "1,000" as 0 and
dropped minus signs; this one does neither.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.benchmark import Benchmark, per_example
from t2demo.tasks.checkers import check_number

SYSTEM = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n\n")
CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations, e.g. <<48/2=24>>


def final_number(solution: str) -> str:
    """The gold answer: the number after the solution's "####", without thousands separators."""
    _, mark, tail = solution.rpartition("####")
    number = tail.strip().replace(",", "")
    if not mark or not re.fullmatch(r"-?\d+(?:\.\d+)?", number):
        raise ValueError(f"no number after '####' in {solution[-60:]!r}")
    return number


def to_example(row: Mapping) -> Example:
    """The question under the authors' system message; the solution (annotations removed) as the response."""
    return Example(SYSTEM + row["question"].strip(), final_number(row["answer"]),
                   CALCULATOR.sub("", row["answer"]), "")


GSM8K = Benchmark("gsm8k", "math", 512, "openai/gsm8k", ("main",), ("train", "test"), to_example,
                  per_example(check_number))

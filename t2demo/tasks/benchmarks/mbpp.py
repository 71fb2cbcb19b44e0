"""MBPP (google-research-datasets/mbpp, "full"): pass@1 of the function described in words.

Prompt: the authors' system message and instruction (fishfarm's evalplus map_mbpp_problem): the
task text, ended by a full stop, then "Your code should satisfy the following assertion:" and the
first test in a fenced block. Tests: test_setup_code and every test of test_list (the data set's
own; challenge_test_list is not part of MBPP's score). Deviations: the authors scored MBPP+
(evalplus's corrected 378 problems, split 300/78 by them); this uses MBPP's official splits, and
their "```python" reply prefill is left out because t2demo prompts go through the chat template only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.benchmark import Benchmark
from t2demo.tasks.benchmarks.execution import SYSTEM, pass_at_1


def instruction(text: str, assertion: str) -> str:
    """The authors' MBPP instruction: the description, then the first test as the example to satisfy."""
    text = text.strip()
    return (f"{text if text.endswith('.') else text + '.'} Your code should satisfy the following assertion:\n"
            f"```python\n{assertion.strip()}\n```")


def to_example(row: Mapping) -> Example:
    """The instruction under the system message; the setup and tests as the reference; the solution as response."""
    tests = [row.get("test_setup_code") or "", *row["test_list"]]
    return Example(f"{SYSTEM}\n\n{instruction(row['text'], row['test_list'][0])}",
                   "\n".join(t for t in tests if t.strip()) + "\n", f"```python\n{row['code'].strip()}\n```", "")


def score_mbpp(examples: Sequence[Example], responses: Sequence[str]) -> list[bool]:
    """The model's code, then the setup and tests."""
    return pass_at_1(examples, responses, lambda example, code: f"{code}\n\n{example.reference}")


MBPP = Benchmark("mbpp", "code", 512, "google-research-datasets/mbpp", ("full",), ("train", "validation", "test"),
                 to_example, score_mbpp, metric="pass@1")

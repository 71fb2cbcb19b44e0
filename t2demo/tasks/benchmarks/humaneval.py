"""HumanEval (openai/openai_humaneval, test split only): pass@1 of a function given by signature and docstring.

Prompt: the authors' system message and instruction (fishfarm's evalplus map_humaneval_problem):
"Write a solution to the following problem:" and the data set's prompt in a fenced block. The
program run is the data set's prompt (its imports and helpers), the model's code (a whole function,
which replaces the stub, or only its body, which completes it), the data set's test and
check(entry_point). Deviation: the authors prefilled the reply with "```python" and the prompt;
t2demo prompts go through the chat template only, so the model writes the function itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.benchmark import Benchmark
from t2demo.tasks.benchmarks.execution import SYSTEM, pass_at_1


def to_example(row: Mapping) -> Example:
    """The instruction under the system message; test + check(entry_point) as the reference; the prompt kept in meta."""
    prompt = f"{SYSTEM}\n\nWrite a solution to the following problem:\n```python\n{row['prompt'].strip()}\n```"
    tests = f"{row['test']}\n\ncheck({row['entry_point']})\n"
    response = f"```python\n{row['prompt']}{row['canonical_solution'].rstrip()}\n```"
    return Example(prompt, tests, response, "", meta={"prefix": row["prompt"]})


def score_humaneval(examples: Sequence[Example], responses: Sequence[str]) -> list[bool]:
    """The data set's prompt, the model's code, then the tests."""
    return pass_at_1(examples, responses,
                     lambda example, code: f"{example.meta['prefix']}\n{code}\n\n{example.reference}")


HUMANEVAL = Benchmark("humaneval", "code", 512, "openai/openai_humaneval", (None,), ("test",), to_example,
                      score_humaneval, metric="pass@1")

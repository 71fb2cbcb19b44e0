"""MATH (Hendrycks et al., competition problems): the boxed answer, compared as mathematics.

Named competition_math (task "competition-math") because "math" is the synthetic task. Prompt: the
authors' system message (tasks/math.py, kept byte for byte, its missing space after the comma too),
then the problem. Reference: the last \\boxed{} (or \\fbox{}) of the solution. Scorer: the authors'
reading of the response ("The answer is: X", else the last \\boxed{}), judged equal to the
reference by math-verify (Hugging Face's; sympy through latex2sympy2_extended), where the authors
had hand-written string rules: \\frac{1}{2}, 0.5, 1/2 and \\dfrac12 are one answer, as are
(x+1)^2 and x^2+2x+1. The hub copy is EleutherAI/hendrycks_math, one config per subject, since
hendrycks/competition_math left the hub.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.benchmark import Benchmark, per_example
from t2demo.tasks.checkers import extract_boxed

SYSTEM = "Solve the question below by reasoning step by step,and put the final answer within \\boxed{}."
SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
            "prealgebra", "precalculus")
PARSE_TIMEOUT_S = 5  # math-verify's own limit per parse / comparison


def boxed_answer(text: str) -> str | None:
    """The content of the last \\boxed{} or \\fbox{}; None when there is none or it is unclosed."""
    return extract_boxed(text.replace("\\fbox{", "\\boxed{"))


def final_answer(response: str) -> str | None:
    """The authors' reading of a response: what follows its last "The answer is: ", else its last \\boxed{}."""
    if "The answer is: " in response:
        answer = response.split("The answer is: ")[-1].split(".\n")[0].strip()
        return answer[:-1].strip() if answer.endswith(".") else answer
    return boxed_answer(response)


def equivalent(reference: str, answer: str) -> bool:
    """Whether two LaTeX answers are the same mathematics (math-verify: numbers, fractions, expressions, sets)."""
    from math_verify import parse, verify

    # math-verify's timeouts use SIGALRM, which only the main thread may set; elsewhere it runs unlimited
    limit = PARSE_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    gold = parse(f"\\boxed{{{reference}}}", parsing_timeout=limit)
    given = parse(f"\\boxed{{{answer}}}", parsing_timeout=limit)
    return bool(gold) and bool(given) and verify(gold, given, timeout_seconds=limit)


def check_math(example: Example, response: str) -> bool:
    """The response's final answer is equivalent to the reference."""
    answer = final_answer(response)
    return bool(answer) and equivalent(example.reference, answer)


def to_example(row: Mapping) -> Example:
    """The problem under the authors' system message; the worked solution as the response."""
    reference = boxed_answer(row["solution"])
    if reference is None:
        raise ValueError("the solution has no \\boxed{} answer")
    return Example(f"{SYSTEM}\n\n{row['problem'].strip()}", reference, row["solution"], "")


COMPETITION_MATH = Benchmark("competition-math", "math", 1024, "EleutherAI/hendrycks_math", SUBJECTS,
                             ("train", "test"), to_example, per_example(check_math))

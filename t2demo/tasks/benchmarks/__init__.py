"""The paper's benchmarks as tasks: real data sets, loaded with `datasets` on first use and scored as the paper did.

GSM8K and MATH (math), MBPP and HumanEval (code), ARC-Easy and ARC-Challenge (reasoning), TextVQA
and OK-VQA (vqa). Each is a `Benchmark` (benchmark.py), one file per data set with its prompt,
reference and scorer; source.py reads the rows from the hub or from a local copy in the data set's
published format (`python -m t2demo eval --tasks gsm8k --data PATH`). They are registered in
tasks.registry.BENCHMARKS with the tag "benchmark", apart from the synthetic tasks: they join neither
the training / unseen groups nor the dispatch categories or the classification instruction. Experts
train on those with a train split (`train-expert --task gsm8k --data PATH`, training.py: train and
validation splits only, never test), written under their category's name.
A benchmark's category is its synthetic twin's, so dispatch sends it to that expert. Prompts follow
the authors' code (SakanaAI/self-adaptive-llms); each module says where it deviates.
"""

from t2demo.tasks.benchmarks.arc import ARC_CHALLENGE, ARC_EASY
from t2demo.tasks.benchmarks.benchmark import BENCHMARK, Benchmark
from t2demo.tasks.benchmarks.competition_math import COMPETITION_MATH
from t2demo.tasks.benchmarks.gsm8k import GSM8K
from t2demo.tasks.benchmarks.humaneval import HUMANEVAL
from t2demo.tasks.benchmarks.mbpp import MBPP
from t2demo.tasks.benchmarks.source import BenchmarkDataError
from t2demo.tasks.benchmarks.vqa import OKVQA, TEXTVQA, soft_accuracy, vqa_normalize

__all__ = ["ARC_CHALLENGE", "ARC_EASY", "BENCHMARK", "COMPETITION_MATH", "GSM8K", "HUMANEVAL", "MBPP", "OKVQA",
           "TEXTVQA", "Benchmark", "BenchmarkDataError", "soft_accuracy", "vqa_normalize"]

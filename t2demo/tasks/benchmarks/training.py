"""Training an expert on a benchmark (`train-expert --task gsm8k --data PATH`): its train split, never its test split.

`BenchmarkTraining` is a Benchmark as the trainer sees it (the Task protocol, over two splits):
  train       the benchmark's official train split (less the held-out slice, if any);
  validation  its official validation split where it has one (ARC, MBPP, TextVQA, OK-VQA), else a
              held-out slice of train (GSM8K, MATH): the first min(val_n, rows // 2) rows of a fixed
              shuffle (independent of the run's seed), left out of training and named, row by row, in
              the expert's notes;
  test        refused: reading it would be training on the evaluation.
The reward is the benchmark's own scorer (check_many: pass@1 in the sandbox for MBPP, all of a batch's
programs at once; the VQA soft accuracy, a fraction, for TextVQA and OK-VQA). Next-token training reads
the references as replies; a benchmark whose references are no reply (ARC: the answer key only,
Benchmark.no_reply) is refused for it, as is one without a train split (HumanEval). The expert is named
by the benchmark's category (gsm8k -> math), the one `report` scores the benchmark with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.benchmark import Benchmark
from t2demo.tasks.benchmarks.source import BenchmarkDataError

HOLDOUT_SEED = "held-out"  # the shuffle the held-out validation slice is taken from, the same for every run


class LazyExamples(Sequence):
    """Examples of chosen rows, each built when first indexed (a vision benchmark's images stay on disk)."""

    def __init__(self, benchmark: Benchmark, rows, indices: Sequence[int], split: str) -> None:
        self.benchmark, self.rows, self.indices, self.split = benchmark, rows, list(indices), split

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.benchmark.examples_at(self.rows, self.indices[i], self.split)
        return self.benchmark.examples_at(self.rows, [self.indices[i]], self.split)[0]


def refusal(benchmark: Benchmark, objective: str, alternatives: Sequence[str] = ()) -> str | None:
    """Why `benchmark` cannot train an expert with `objective` (None: it can). alternatives: benchmarks of
    its category that can, for the message."""
    if "train" not in benchmark.splits:
        other = f"; its category's expert ({benchmark.category}) trains on {', '.join(alternatives)}" if alternatives else ""
        return (f"{benchmark.name} has no train split (its official splits: {', '.join(benchmark.splits)}, for "
                f"evaluation only), so no expert trains on it{other}")
    if objective == "ntp" and benchmark.no_reply:
        return f"{benchmark.name} cannot train with --objective ntp: {benchmark.no_reply}"
    return None


@dataclass
class BenchmarkTraining:
    """A benchmark's train split and a validation split (its own, else held out of train), as a Task."""

    benchmark: Benchmark
    val_n: int
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.benchmark.name

    @property
    def category(self) -> str:
        return self.benchmark.category

    @property
    def vision(self) -> bool:
        return self.benchmark.vision

    @property
    def max_new_tokens(self) -> int:
        return self.benchmark.max_new_tokens

    @property
    def expert_name(self) -> str:
        """The default expert file's name: the category's, which `report` scores the benchmark with."""
        return self.benchmark.category

    @property
    def own_validation(self) -> bool:
        return "validation" in self.benchmark.splits and "validation" not in self.benchmark.hidden

    def _train(self) -> tuple[object, list[int], list[int]]:
        """(train rows, indices trained on, indices held out for validation), read once."""
        if "split" not in self._cache:
            rows = self.benchmark.rows("train")
            held = 0
            if not self.own_validation:
                if len(rows) < 2:
                    raise BenchmarkDataError(f"{self.name}: its train split ({self.benchmark.source}) has {len(rows)} "
                                             "row(s); holding out a validation slice needs at least 2")
                held = min(self.val_n, len(rows) // 2)
            order = self.benchmark.order(len(rows), "train", HOLDOUT_SEED)
            self._cache["split"] = rows, sorted(order[held:]), sorted(order[:held])
        return self._cache["split"]

    def examples(self, split: str, n: int, seed: int = 0) -> Sequence[Example]:
        """n examples of train (built lazily), or of validation; the test split is refused."""
        if split == "train":
            rows, kept, _ = self._train()
            order = self.benchmark.order(len(kept), "train", seed)
            chosen = [kept[i] for i in order[:n]]
            if self.vision:
                examples = LazyExamples(self.benchmark, rows, chosen, "train")
                if chosen:
                    examples[0]  # noqa: B018  (a malformed first row stops the run before any training)
                return examples
            return self.benchmark.examples_at(rows, chosen, "train")
        if split == "validation":
            if self.own_validation:
                return self.benchmark.examples("validation", n, seed)
            rows, _, held = self._train()
            return self.benchmark.examples_at(rows, held[:n], "train")
        raise BenchmarkDataError(f"{self.name}: training reads the train and validation splits only, never {split}")

    def check(self, example: Example, response: str) -> bool | float:
        return self.benchmark.check(example, response)

    def check_many(self, examples: Sequence[Example], responses: Sequence[str]) -> list:
        """The benchmark's scorer on a batch (MBPP: its programs run in the sandbox together)."""
        return self.benchmark.check_many(examples, responses)

    def training_notes(self) -> dict:
        """What the expert's notes record about the data: the benchmark, its source, the splits read."""
        rows, kept, held = self._train()
        if self.own_validation:
            validation = {"split": "validation"}
        else:
            validation = {"split": "train (held out)", "held_out_rows": held, "of_rows": len(rows),
                          "how": f"the first {len(held)} of the train split's rows shuffled by "
                                 f"random.Random('{self.name}|train|{HOLDOUT_SEED}'), never trained on"}
        return {"benchmark": self.name, "category": self.category, "source": self.benchmark.source,
                "train_split": "train", "train_rows": len(kept), "validation": validation, "test_split": "never read"}

    def data_identity(self) -> dict:
        """What a resumed checkpoint must share beyond the settings: the data and the held-out slice."""
        _, _, held = self._train()
        return {"source": self.benchmark.source, "held_out": len(held)}

"""A published benchmark as a Task: rows loaded on first use, turned into Examples, scored as the paper did.

`Benchmark` implements the Task protocol (t2demo.tasks.base) like a synthetic task, so the evaluator
takes either. It differs where real data differs: the splits are the data set's official ones (a
missing one is refused, never carved out of another), answers a data set withholds are refused, and
`examples(split, n, seed)` is a seeded shuffle of the whole split (all of it when n is larger).
Scores are booleans, except VQA's soft accuracy, a fraction in [0, 1].
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.source import BenchmarkDataError, image_index, image_of, load_hub, load_local

if TYPE_CHECKING:
    from datasets import Dataset

BENCHMARK = "benchmark"  # the registry tag of every real data set
Scorer = Callable[[Sequence[Example], Sequence[str]], list]


def per_example(check: Callable[[Example, str], bool]) -> Scorer:
    """A batch scorer from a one-example checker."""
    return lambda examples, responses: [check(e, r) for e, r in zip(examples, responses)]


@dataclass(frozen=True)
class Benchmark:
    """A data set on the hub (`hub`, its `configs` concatenated) or in a local copy (`data`), as a Task."""

    name: str
    category: str  # its synthetic twin's: the dispatcher routes it to that expert
    max_new_tokens: int
    hub: str
    configs: tuple[str | None, ...]
    splits: tuple[str, ...]  # the official splits, in t2demo's names (train, validation, test)
    to_example: Callable[[Mapping], Example]  # a row (image already decoded) -> Example; KeyError if malformed
    score_many: Scorer
    metric: str = "accuracy"
    vision: bool = False
    hub_splits: tuple[tuple[str, str], ...] = ()  # t2demo split -> the hub's name where they differ
    hidden: tuple[str, ...] = ()  # splits whose answers the data set withholds
    data: str | None = None  # a local copy (--data PATH) instead of the hub
    no_reply: str = ""  # why its references cannot be trained on as replies (next-token); "" when they can

    def with_data(self, path: str | Path | None) -> Benchmark:
        """The same benchmark reading a local copy (a file or a folder) instead of the hub."""
        return replace(self, data=None if path is None else str(path))

    @property
    def source(self) -> str:
        """Where its rows come from, for reports."""
        return self.data or f"hub:{self.hub}" + "".join(f":{c}" for c in self.configs if c)

    def rows(self, split: str) -> Dataset:
        """The split's rows, after refusing splits the data set lacks or hides."""
        if split not in self.splits:
            raise BenchmarkDataError(f"{self.name} has no {split} split; its official splits are "
                                     f"{', '.join(self.splits)}")
        if split in self.hidden:
            raise BenchmarkDataError(f"{self.name}: the answers of its {split} split are withheld (only the "
                                     f"official server scores them); evaluate on validation instead")
        if self.data:
            return load_local(Path(self.data), self.configs, split)
        return load_hub(self.name, self.hub, self.configs, dict(self.hub_splits).get(split, split))

    def examples(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """n examples of `split` (all of them if it has fewer), in a seeded order: a smaller n gives a prefix."""
        rows = self.rows(split)
        return self.examples_at(rows, self.order(len(rows), split, seed)[:n], split)

    def order(self, n_rows: int, split: str, seed: int | str = 0) -> list[int]:
        """The seeded order in which `examples` takes a split's rows."""
        order = list(range(n_rows))
        random.Random(f"{self.name}|{split}|{seed}").shuffle(order)
        return order

    def examples_at(self, rows: Dataset, indices: Sequence[int], split: str) -> list[Example]:
        """The Examples of rows[i] for i in indices (rows: `self.rows(split)`); a malformed row is a BenchmarkDataError."""
        images = image_index(Path(self.data)) if self.vision and self.data else {}
        out = []
        for i in indices:
            row = dict(rows[i])
            try:
                if self.vision:
                    row["image"] = image_of(row, images)
                example = self.to_example(row)
            except (KeyError, ValueError, TypeError, OSError) as e:
                raise BenchmarkDataError(f"{self.name}: row {i} of the {split} split ({self.source}) is not in the "
                                         f"published format: {e!r}; its columns: {sorted(row)}") from e
            out.append(replace(example, task=self.name))
        return out

    def check(self, example: Example, response: str) -> bool | float:
        """The response's score: whether it is right (VQA: its soft accuracy)."""
        return self.score_many([example], [response])[0]

    def check_many(self, examples: Sequence[Example], responses: Sequence[str]) -> list:
        """Score many responses at once (code runs its sandboxes in parallel)."""
        return self.score_many(examples, responses)

"""What a task is, the synthetic kind every built-in task is, and the registry that lists them.

`Task` is the one interface the trainer, the evaluator, CEM and the dispatcher rely on; a synthetic
generator (`SyntheticTask`), a real data set (GSM8K through `datasets`), the classifier's own task and
a user's few-shot examples all implement it. `Registry` maps names to tasks and derives the groups
everything else uses (training / unseen tasks, dispatch categories) from the tags given at
registration, so that adding a task is one new file plus one `register(...)` line in registry.py.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol, TypeVar

from PIL import Image

SPLITS = ("train", "validation", "test")
TRAINING, UNSEEN, VISION = "training", "unseen", "vision"  # tags: experts are trained on / mixed on; images
OTHER = "other"  # the catch-all dispatch category: always present, always last
OTHER_DESCRIPTION = "anything else."  # its line in the classification instruction unless a task describes it


@dataclass(frozen=True)
class Example:
    """One prompt with its gold answer and a full correct response: what every task hands out."""

    prompt: str  # the user message, without chat template
    reference: str  # gold final answer the checker compares against (code: the hidden tests)
    response: str  # a full correct assistant response, the supervised training target
    task: str  # samplers leave it empty; Task.examples fills it in
    image: Image.Image | None = None  # vqa tasks only (RGB)
    meta: dict = field(default_factory=dict, hash=False)  # benchmarks: what a checker needs beyond the reference


class Task(Protocol):
    """What the trainer, the evaluator, CEM and the dispatcher need from a task, whatever its source.

    name: registry key, expert file name and Example.task; category: the dispatch class the
    first-pass classifier predicts for its prompts; vision: its examples carry images (they run on
    the vision model); max_new_tokens: the generation budget its answers need.
    """

    @property
    def name(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def vision(self) -> bool: ...

    @property
    def max_new_tokens(self) -> int: ...

    def examples(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """n distinct examples of `split` (one of SPLITS), the same for the same seed."""
        ...

    def check(self, example: Example, response: str) -> bool:
        """Whether `response` (a model's full answer) is correct."""
        ...

    def check_many(self, examples: Sequence[Example], responses: Sequence[str]) -> list[bool]:
        """Score many responses at once (a checker may batch, e.g. run code sandboxes in parallel)."""
        ...


def split_of(key: str) -> str:
    """Stable split of an example identity: 10% test, 5% validation, 85% train."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 20
    return "test" if bucket < 2 else "validation" if bucket == 2 else "train"


Sampler = Callable[[random.Random], tuple[str, Callable[[], Example]]]  # -> identity key, builder of the example
Checker = Callable[[Example, str], bool]


@dataclass(frozen=True)
class SyntheticTask:
    """A task drawn from a seeded generator, so that any amount of data exists and never leaks across splits.

    Splits are disjoint by construction: an example's split is a stable hash of its identity (the
    prompt; for vqa the question plus what the image shows), each split draws from its own random
    stream and drops candidates that hash elsewhere, and duplicates within a split are dropped.
    """

    name: str
    category: str
    chance: float  # accuracy of random guessing
    max_new_tokens: int  # generation budget; >= the longest reference response in characters
    sample: Sampler
    score: Checker
    score_many: Callable[[Sequence[Example], Sequence[str]], list[bool]] | None = None  # batched scoring
    vision: bool = False  # its examples carry images
    text_prompts: tuple[str, ...] = ()  # vision tasks: every question text (no image), for the classifier's data

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

    def check_many(self, examples: Sequence[Example], responses: Sequence[str]) -> list[bool]:
        """Score many responses at once (code runs its sandboxes in parallel)."""
        if self.score_many is not None:
            return self.score_many(examples, responses)
        return [self.score(e, r) for e, r in zip(examples, responses)]


class UnknownTask(KeyError):
    """A name no task is registered under; the message lists the registered names."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would show the message's repr


T = TypeVar("T", bound=Task)


class Registry(Mapping[str, Task]):
    """Name -> task in registration order, plus each task's tags: the one list every task group derives from.

    A task's tags are its category, "vision" if it has images, and those given to `register`
    (TRAINING, UNSEEN, ...). The dispatch categories are the categories in order of first
    registration, then OTHER. A task whose category is new must describe it (`describe=`): that
    line joins the classification instruction, which changes the classifier's prompt, so the
    classification expert and the base models' prompting must be retrained for the new category.
    A task in an existing category changes neither.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._tags: dict[str, frozenset[str]] = {}
        self._descriptions: dict[str, str] = {}  # category -> its line in the classification instruction

    def register(self, task: T, *tags: str, describe: str | None = None) -> T:
        """Add `task` under its name with `tags`; `describe` its category if no task had that category before."""
        if task.name in self._tasks:
            raise ValueError(f"a task named {task.name!r} is already registered")
        known = self._descriptions.get(task.category)
        if describe is None and known is None and task.category != OTHER:
            raise ValueError(f"{task.name}: category {task.category!r} is new; pass describe=... (its line in the "
                             "classification instruction; the classification expert must then be retrained)")
        if describe is not None and known is not None and describe != known:
            raise ValueError(f"{task.name}: category {task.category!r} is already described as {known!r}")
        if describe is not None:
            self._descriptions[task.category] = describe
        self._tasks[task.name] = task
        self._tags[task.name] = frozenset(tags) | {task.category} | ({VISION} if task.vision else set())
        return task

    def __getitem__(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(f"unknown task {name!r}; choose from {sorted(self._tasks)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def names(self, tag: str | None = None) -> tuple[str, ...]:
        """Registered names in registration order, those with `tag` only if one is given."""
        return tuple(name for name in self._tasks if tag is None or tag in self._tags[name])

    def tags(self, name: str) -> frozenset[str]:
        """The task's tags: its category, "vision" if it has images, and those it was registered with."""
        self[name]  # the error that lists the names
        return self._tags[name]

    def categories(self) -> tuple[str, ...]:
        """The dispatch categories: in order of first registration, OTHER last (always present)."""
        return tuple(c for c in self._descriptions if c != OTHER) + (OTHER,)

    def image_categories(self) -> tuple[str, ...]:
        """The dispatch categories whose every task shows an image: a prompt without one cannot be served there."""
        with_image = {t.category for t in self._tasks.values() if t.vision}
        without = {t.category for t in self._tasks.values() if not t.vision}
        return tuple(c for c in self.categories() if c in with_image and c not in without)

    def descriptions(self) -> dict[str, str]:
        """Category -> its line in the classification instruction, in `categories()` order."""
        return {c: self._descriptions.get(c, OTHER_DESCRIPTION) for c in self.categories()}

    def parse(self, spec: str) -> list[str]:
        """'all', 'training', 'unseen' or a comma list of evaluable task names (tagged training or unseen).

        An unknown or not evaluable name (smalltalk has no meaningful accuracy) exits with a message.
        """
        training, unseen = list(self.names(TRAINING)), list(self.names(UNSEEN))
        evaluable = list(dict.fromkeys(training + unseen))
        groups = {"all": evaluable, "training": training, "unseen": unseen}
        if spec in groups:
            return groups[spec]
        names = [n.strip() for n in spec.split(",") if n.strip()]
        unknown = [n for n in names if n not in evaluable]
        if unknown:
            raise SystemExit(f"unknown task(s) {unknown}; choose from {sorted(evaluable)}")
        return names

r"""The dispatcher's first pass: name a prompt's category (one of CATEGORIES) inside \boxed{}.

The instruction's category lines come from the registry (each category's `describe=`), so a task in
a new category enters the classifier's prompt and data by being registered. For today's registry
the rendered instruction is byte-identical to the one the shipped models and cls expert learnt.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from t2demo.tasks.base import SPLITS, Example, Registry, Task, split_of
from t2demo.tasks.checkers import extract_boxed
from t2demo.tasks.natural_requests import natural_request
from t2demo.tasks.registry import CATEGORIES, REGISTRY, TASKS, UNSEEN_TASKS

INSTRUCTION_HEAD = "Classify the request below into one category.\n"
INSTRUCTION_TAIL = "Request: {prompt}\nAnswer with the category name inside \\boxed{}."


def classification_instruction(registry: Registry = REGISTRY) -> str:
    """The instruction with one '- category: description' line per category of `registry`."""
    lines = "".join(f"- {category}: {text}\n" for category, text in registry.descriptions().items())
    return INSTRUCTION_HEAD + lines + INSTRUCTION_TAIL


CLASSIFICATION_INSTRUCTION = classification_instruction()


def classification_prompt(prompt: str) -> str:
    """CLASSIFICATION_INSTRUCTION filled in. Not str.format: the instruction has literal braces."""
    return CLASSIFICATION_INSTRUCTION.replace("{prompt}", prompt)


def _prompt_source(task: Task, split: str, n: int, seed: int) -> Callable[[random.Random], str]:
    """Draws prompts of `task` from `split`: for a vision task that lists its question texts, one of
    those (no image), else the next of its first n examples."""
    questions = getattr(task, "text_prompts", ())
    if task.vision and questions:
        texts = [q for q in questions if split_of(q) == split]
        return lambda rng: rng.choice(texts)
    pool = iter(task.examples(split, n, seed))
    return lambda rng: next(pool).prompt


NATURAL_SHARE = 0.5  # of classification prompts that are free-worded requests (natural_requests.py)
CASUAL_SHARE = 0.5  # of the others, rewritten by `casual`
CASUAL_OPENERS = ("Quick question: ", "Hey, ", "Can you help me? ", "Please help. ", "Question: ", "ok so ",
                  "Hi! ", "I was wondering: ", "Hello, ")
CASUAL_CLOSERS = ("", "", " Thanks!", " Thank you.", " Please.", " Any idea?")


def casual(prompt: str, rng: random.Random, split: str) -> str:
    """A prompt as people also type it: code without its fences, a question without its options, a
    greeting or thanks around it, all lower case. Trains the classifier on content, not on the
    generators' templates (the hand-written prompts, tasks/handwritten.py, measure that). Questions of
    different splits can share their text without the options, so the options are dropped only where
    the question alone hashes to the prompt's split."""
    if rng.random() < 0.3:
        prompt = "\n".join(line for line in prompt.split("\n") if not line.startswith("```"))
    question = prompt.split("\nOptions:")[0]
    if rng.random() < 0.3 and question != prompt and split_of(question) == split:
        prompt = question
    if rng.random() < 0.4:
        prompt = rng.choice(CASUAL_OPENERS) + prompt + rng.choice(CASUAL_CLOSERS)
    if rng.random() < 0.25:
        prompt = prompt.lower()
    return prompt


def classification_examples(split: str, n: int, seed: int = 0) -> list[Example]:
    """(prompt, category) pairs over the registered tasks, every category equally often. The unseen
    tasks are left out: no expert trains on them, the classifier included, so dispatch on them
    measures how it generalises.

    Prompts come from the same split of their task. vqa prompts are the question alone (no image):
    a question text is used only in the split its text hashes to, so texts never cross splits,
    but with ~100 texts per vqa task they do repeat within a split. NATURAL_SHARE of the prompts are
    free-worded requests (hashed to their split the same way); half the others are `casual`.
    """
    assert split in SPLITS, split
    rng = random.Random(f"classification|{split}|{seed}")
    per_task = n // len(CATEGORIES) + 1
    seen = {name: task for name, task in TASKS.items() if name not in UNSEEN_TASKS}
    sources = {name: _prompt_source(task, split, per_task, seed) for name, task in seen.items()}
    by_category = {c: [name for name, t in seen.items() if t.category == c] for c in CATEGORIES}
    out = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        if rng.random() < NATURAL_SHARE:
            prompt = natural_request(category, split, rng)
        else:
            prompt = sources[rng.choice(by_category[category])](rng)
            if rng.random() < CASUAL_SHARE:
                prompt = casual(prompt, rng, split)
        out.append(Example(classification_prompt(prompt), category, f"\\boxed{{{category}}}", "classification"))
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class ClassificationTask:
    r"""The first-pass classifier's task, trained like any other: answer a prompt's category inside \boxed{}.

    Not registered: it is about the registered tasks, and its category is none of theirs.
    """

    name: str = "cls"
    category: str = "classification"
    vision: bool = False
    max_new_tokens: int = 16

    def examples(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """`classification_examples`."""
        return classification_examples(split, n, seed)

    def check(self, example: Example, response: str) -> bool:
        """The boxed answer is the example's category (case and spaces ignored)."""
        return (extract_boxed(response) or "").strip().lower() == example.reference

    def check_many(self, examples: Sequence[Example], responses: Sequence[str]) -> list[bool]:
        """`check` for each pair."""
        return [self.check(e, r) for e, r in zip(examples, responses)]


def resolve_task(name: str) -> Task:
    """A registered task by name, or "cls" for the classification expert (what `train-expert --task` takes)."""
    if name == ClassificationTask.name:
        return ClassificationTask()
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)} or 'cls'")
    return TASKS[name]

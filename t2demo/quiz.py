"""Questions with known answers: the tasks' test examples as prompts to click, a random one, and
each turn's base and adapted answers marked right or wrong by the task's own checker.

Why: a demo of adaptation convinces only when the viewer can see which answer is right, and a
running tally (base right / adapted right over the questions asked) makes the point measurable.
Any message that is, word for word, one of these test prompts is marked, typed or clicked; a vision
question is one when its image has the test image's pixels too (an example clicked, or the same picture
uploaded), since many test images share a question.
"""

from __future__ import annotations

import functools
import hashlib
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from t2demo import tasks

EXAMPLES_PER_TASK = 3  # clickable prompts per task
POOL = 40  # test examples per task a random question is drawn from (and a typed prompt is looked up in)


@dataclass(frozen=True)
class Question:
    """One test example of a task: the prompt to ask and the reference its checker compares with."""

    task: str
    example: tasks.Example

    @property
    def category(self) -> str:
        return tasks.TASKS[self.task].category


@dataclass(frozen=True)
class Grade:
    """A turn's two answers checked against the question's reference."""

    question: Question
    adapted: bool
    base: bool


def task_names(vision: bool = False) -> list[str]:
    """The tasks whose questions the model can be asked (vision tasks need the vision model)."""
    return [n for n, t in tasks.TASKS.items() if t.vision == vision]


@functools.cache
def pool(task: str) -> tuple[tasks.Example, ...]:
    """The test examples questions come from (generated once; the test split is fixed)."""
    return tuple(tasks.TASKS[task].examples("test", POOL))


def examples_by_category(vision: bool = False, per_task: int = EXAMPLES_PER_TASK) -> dict[str, list[Question]]:
    """Clickable questions grouped by the category the first pass should read."""
    grouped: dict[str, list[Question]] = {}
    for name in task_names(vision):
        for example in pool(name)[:per_task]:
            grouped.setdefault(tasks.TASKS[name].category, []).append(Question(name, example))
    return grouped


def examples_interleaved(vision: bool = False, per_task: int = EXAMPLES_PER_TASK) -> list[Question]:
    """The clickable questions taking turns by category, so the first few show every category."""
    grouped = list(examples_by_category(vision, per_task).values())
    return [qs[i] for i in range(max(map(len, grouped), default=0)) for qs in grouped if i < len(qs)]


def random_question(rng: random.Random, vision: bool = False) -> Question:
    """A test question of a task picked at random (each task equally likely)."""
    name = rng.choice(task_names(vision))
    return Question(name, rng.choice(pool(name)))


def image_key(image) -> str:
    """An image's identity by its pixels (RGB) and size: a PNG written and read back keeps it."""
    rgb = image.convert("RGB")
    return hashlib.sha1(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest()


def _key(prompt: str, image=None) -> str:
    return prompt.strip() if image is None else f"{prompt.strip()}\n{image_key(image)}"


def lookup(prompt: str, vision: bool = False, image=None) -> Question | None:
    """The test question this prompt is, if any (so a typed question is marked as a clicked one);
    for the vision tasks, the question about this very image (pixels compared)."""
    if vision and image is None:
        return None
    return _index(vision).get(_key(prompt, image if vision else None))


@functools.cache
def _index(vision: bool) -> dict[str, Question]:
    return {_key(e.prompt, e.image if vision else None): Question(n, e) for n in task_names(vision) for e in pool(n)}


@functools.cache
def image_files(per_task: int = EXAMPLES_PER_TASK) -> tuple[tuple[Question, str], ...]:
    """Clickable vision questions, the tasks taking turns, with their images as PNG files (written
    once, in a fresh temporary folder, for the page's examples to load)."""
    folder = Path(tempfile.mkdtemp(prefix="t2demo-vqa-questions-"))
    names = task_names(vision=True)
    questions = [Question(n, pool(n)[i]) for i in range(per_task) for n in names]
    files = []
    for i, q in enumerate(questions):
        path = folder / f"{i:02d}-{q.task}.png"
        q.example.image.save(path)
        files.append((q, str(path)))
    return tuple(files)


def grade(question: Question, adapted: str, base: str) -> Grade:
    """Both answers checked in one call of the task's checker (code runs both in its sandbox)."""
    ok_adapted, ok_base = tasks.TASKS[question.task].check_many([question.example] * 2, [adapted, base])
    return Grade(question, bool(ok_adapted), bool(ok_base))


def mark(right: bool) -> str:
    return "✓ right" if right else "✗ wrong"  # glyphs every font has (emoji fonts are often missing)


def verdict(grade: Grade, which: str) -> str:
    """One answer's mark with the reference: "✓ right · reference 632" (which: "adapted" or "base")."""
    return f"{mark(getattr(grade, which))} · reference {reference_text(grade.question)}"


def reference_text(question: Question) -> str:
    """The reference as the viewer should read it (code tasks: the hidden tests)."""
    ref = question.example.reference
    if "\n" in ref or ref.startswith("assert"):
        return f"hidden tests:\n```python\n{ref}\n```"
    return f"**{ref}**"


class Tally:
    """Base right / adapted right over the graded questions of one session."""

    def __init__(self) -> None:
        self.asked = self.base = self.adapted = 0

    def add(self, g: Grade) -> None:
        self.asked += 1
        self.base += g.base
        self.adapted += g.adapted

    def text(self) -> str:
        if not self.asked:
            return "**Tally**: no test question asked yet — click an example or draw a random one."
        return (f"**Tally** over {self.asked} test question{'s' * (self.asked != 1)}: "
                f"base right {self.base}/{self.asked} · adapted right {self.adapted}/{self.asked}")

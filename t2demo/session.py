"""One person's use of the runtime: their mixtures, their CEM run, and one turn of a chat.

Everything a user changes lives in a Session (one per browser tab or API client); the models are
shared. A turn is the first pass, then the adapted answer and the base model's answer to the same
message, streamed as events any front end (the app, the API, a script) turns into its own output.
Input that cannot be served is refused here with a PipelineError that says why.
"""

from __future__ import annotations

import copy
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torch import Tensor

from t2demo import tasks
from t2demo.adapt import cem
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import PipelineError
from t2demo.adapt.registry import get_strategy
from t2demo.experts import Expert, save_expert
from t2demo.streaming import stream_from_thread

MAX_MESSAGE_CHARS = 4000
MAX_IMAGE_PIXELS = 16_000_000
MAX_NEW_TOKENS = 160


class Session:
    """Per-session state: few-shot mixtures by model kind ("text" / "vision": a text model's mixture
    does not fit the vision model's matrices) and name, the last CEM result, its cancel switch.
    (A plain class, not a dataclass: Gradio would serialise a dataclass state, Event and all.)"""

    def __init__(self, mixtures: dict[str, dict[str, Expert]] | None = None, fitted: Tensor | None = None) -> None:
        self.mixtures = mixtures or {"text": {}, "vision": {}}
        self.fitted = fitted
        self.cancel = threading.Event()

    def __deepcopy__(self, memo: dict) -> Session:
        """A copy with its own cancel switch (frameworks copy a state's initial value per session;
        an Event holds a lock, which cannot be copied)."""
        return Session(copy.deepcopy(self.mixtures, memo), copy.deepcopy(self.fitted, memo))

    def mixtures_of(self, adapter: Adapter) -> dict[str, Expert]:
        return self.mixtures["vision" if adapter.vision else "text"]

    def keep(self, adapter: Adapter, name: str, expert: Expert) -> str:
        """Store a mixture under a cleaned name; returns the name it is stored (and found) under."""
        name = clean_name(name, "mixture")
        self.mixtures_of(adapter)[name] = expert
        return name

    def mixture(self, adapter: Adapter, name: str | None) -> Expert:
        mixtures = self.mixtures_of(adapter)
        if not name or name not in mixtures:
            raise PipelineError("Few-shot needs a mixture: fit one in the CEM panel (or upload an expert) and pick it "
                                f"(this session has: {sorted(mixtures) or 'none'}).")
        return mixtures[name]


def clean_name(name: str | None, what: str) -> str:
    """A user's name for a mixture or folder, reduced to letters, digits and '._:+-' (no path parts,
    not '.' or '..')."""
    name = re.sub(r"[^\w.:+-]+", "-", str(name or "").strip()).strip("-.:+")
    if not name:
        raise PipelineError(f"Give the {what} a name.")
    return name


def check_message(message) -> str:
    """The message, stripped; refused when empty, too long or not text."""
    message = (message if isinstance(message, str) else "").strip()
    if not message:
        raise PipelineError("Type a message first.")
    if len(message) > MAX_MESSAGE_CHARS:
        raise PipelineError(f"The message has {len(message)} characters; the limit is {MAX_MESSAGE_CHARS}.")
    return message


def open_image(path: str | None) -> Image.Image:
    """A user's image as RGB; its size is read from the header and refused above the limit before
    any pixel is decoded; non-images are refused."""
    if not path:
        raise PipelineError("Add an image first (upload, paste or pick an example).")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise PipelineError(f"The image is {img.width}×{img.height}; the limit is "
                                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels. Resize it and try again.")
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise PipelineError("That file is not an image this app can read.") from e


def first_pass(adapter: Adapter, session: Session, message: str, strategy: str, mode: str, alpha=None,
               mixture_name: str | None = None, image=None):
    """The first pass for a message under a strategy (few-shot: this session's named mixture)."""
    if not get_strategy(strategy).fits:
        return adapter.first_pass(message, image, strategy, mode, alpha)
    d, z = adapter.first_pass(message, image, strategy, mode, alpha, session.mixture(adapter, mixture_name))
    return replace(d, mixture=mixture_name), z  # shown by the name this session keeps it under


def turn(adapter: Adapter, session: Session, message: str, pairs: Sequence[tuple[str, str]], strategy: str,
         mode: str, alpha=None, mixture_name: str | None = None, image=None,
         max_new_tokens: int = MAX_NEW_TOKENS) -> Iterator[tuple]:
    """One turn as events: ("first", Dispatch, z'), then ("answer", text so far) for the adapted
    answer and ("base", text so far) for the base model's answer to the same turn. The two are
    rows of one batch (serving.Scheduler), so their events interleave."""
    message = check_message(message)
    enc = adapter.encode(message, image, pairs, max_new_tokens)
    d, z = first_pass(adapter, session, message, strategy, mode, alpha, mixture_name, image)
    yield "first", d, z
    texts = {"answer": "", "base": ""}
    with closing(adapter.scheduler.submit(enc, [z, None], max_new_tokens)) as rows:
        for row, piece in rows:
            kind = ("answer", "base")[row]
            texts[kind] += piece
            yield kind, texts[kind], None


def cem_examples(task_name: str, rows: Sequence[Sequence] | None, n: int) -> tuple[list[tasks.Example], object]:
    """Few-shot examples and their task: n validation examples of a built-in task, or the user's
    (prompt, answer) rows for "custom"."""
    if task_name == "custom":
        pairs = [(str(r[0] or ""), str(r[1] or "")) for r in rows or [] if len(r) >= 2]
        return tasks.custom_examples(pairs), tasks.CUSTOM
    if task_name not in tasks.TASKS:
        raise PipelineError(f"unknown task {task_name!r}; choose 'custom' or one of {sorted(tasks.TASKS)}")
    task = tasks.TASKS[task_name]
    return task.examples("validation", int(n)), task


def fit_stream(adapter: Adapter, examples: list[tasks.Example], task, cancel: threading.Event | None = None,
               **cem_kwargs) -> Iterator[tuple[list[dict], cem.CEMResult | None]]:
    """CEM in a worker thread: yields (history, None) after each generation and (history, result)
    at the end. Closing the generator (a Cancel button, a client gone) stops the search."""
    history: list[dict] = []
    work = lambda emit, stop: adapter.fit(examples, task, callback=emit, cancel=stop, **cem_kwargs)  # noqa: E731
    stream = stream_from_thread(work, "t2demo-cem", cancel)
    while True:
        try:
            history.append(next(stream))
        except StopIteration as done:
            yield history, done.value
            return
        yield history, None


def cem_status(history: list[dict], generations: int, result: cem.CEMResult | None, n_examples: int) -> str:
    """One line on a CEM run: the last generation, or the outcome."""
    if result is None:
        entry = history[-1]
        return (f"generation {entry['generation']}/{generations}: best {entry['best']:.4f}, mean {entry['mean']:.4f} "
                f"(base model {entry['base']:.4f})")
    return (f"{'cancelled' if result.cancelled else 'done'}: best fitness {result.fitness:.4f} (base model "
            f"{result.base_fitness:.4f}) after {result.evaluations} evaluations in {result.seconds:.1f} s on "
            f"{n_examples} examples")


def mixture_file(adapter: Adapter, alpha) -> str:
    """The experts mixed with α as an expert file in a fresh temporary folder, to download."""
    if not adapter.experts:
        raise PipelineError("There are no experts to mix.")
    path = Path(tempfile.mkdtemp(prefix="t2demo-mixture-")) / "mixture.safetensors"
    save_expert(adapter.mixture(alpha), path)
    return str(path)

"""One person's use of the runtime: their mixtures, their CEM run, and one turn of a chat.

Everything a user changes lives in a Session (one per browser tab or API client); the models are
shared. A turn is the first pass, then the adapted answer and the base model's answer to the same
message, streamed as events any front end (the app, the API, a script) turns into its own output.
Input that cannot be served is refused here with a PipelineError that says why.
"""

from __future__ import annotations

import copy
import math
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from PIL import Image

from t2demo import tasks
from t2demo.adapt import cem
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import PipelineError
from t2demo.adapt.registry import get_strategy
from t2demo.experts import Expert, save_expert
from t2demo.streaming import stream_from_thread
from t2demo.validation import (  # noqa: F401
    MAX_MESSAGE_CHARS,
    NOT_AN_IMAGE,
    check_message,
    clean_name,
    open_image_file,
)

MAX_NEW_TOKENS = 160


class Session:
    """Per-session state: few-shot mixtures by model kind ("text" / "vision": a text model's mixture
    does not fit the vision model's matrices) and name, and CEM's cancel switch (the fitted α lives
    with each CEM panel).
    (A plain class, not a dataclass: Gradio would serialise a dataclass state, Event and all.)"""

    def __init__(self, mixtures: dict[str, dict[str, Expert]] | None = None) -> None:
        self.mixtures = mixtures or {"text": {}, "vision": {}}
        self.cancel = threading.Event()

    def __deepcopy__(self, memo: dict) -> Session:
        """A copy with its own cancel switch (frameworks copy a state's initial value per session;
        an Event holds a lock, which cannot be copied)."""
        return Session(copy.deepcopy(self.mixtures, memo))

    def mixtures_of(self, adapter: Adapter) -> dict[str, Expert]:
        return self.mixtures["vision" if adapter.vision else "text"]

    def keep(self, adapter: Adapter, name: str, expert: Expert) -> str:
        """Store a mixture under a cleaned name; returns the name it is stored (and found) under."""
        name = clean_name(name, "mixture")
        self.mixtures_of(adapter)[name] = expert
        return name

    def mixture(self, adapter: Adapter, name: str | None) -> Expert:
        """A mixture by the name it was stored under or the name it was given (both clean the same)."""
        mixtures = self.mixtures_of(adapter)
        found = mixtures.get(clean_name(name, "mixture")) if name else None
        if found is None:
            raise PipelineError("Few-shot needs a mixture: fit one in the CEM panel (or upload an expert) and pick it "
                                f"(this session has: {sorted(mixtures) or 'none'}).")
        return found


def open_image(path: str | None) -> Image.Image:
    """A user's image as RGB, decoded only after validation.open_image_file passed its header."""
    with open_image_file(path) as img:
        try:
            return img.convert("RGB")
        except (OSError, ValueError, SyntaxError) as e:  # a valid header over broken pixel data
            raise PipelineError(NOT_AN_IMAGE) from e


def first_pass(adapter: Adapter, session: Session, message: str, strategy: str, mode: str, alpha=None,
               mixture_name: str | None = None, image=None):
    """The first pass for a message under a strategy (few-shot: this session's named mixture)."""
    if not get_strategy(strategy).fits:
        return adapter.first_pass(message, image, strategy, mode, alpha)
    d, z = adapter.first_pass(message, image, strategy, mode, alpha, session.mixture(adapter, mixture_name))
    return replace(d, mixture=mixture_name), z  # shown by the name this session keeps it under


def turn(adapter: Adapter, session: Session, message: str, pairs: Sequence[tuple[str, str]], strategy: str,
         mode: str, alpha=None, mixture_name: str | None = None, image=None,
         max_new_tokens: int = MAX_NEW_TOKENS, temperature: float = 0.0) -> Iterator[tuple]:
    """One turn as events: ("first", Dispatch, z'), then ("answer", text so far) for the adapted
    answer and ("base", text so far) for the base model's answer to the same turn. The two are
    rows of one batch (serving.Scheduler), so their events interleave; both greedy, or both sampled
    at `temperature`."""
    message = check_message(message)
    enc = adapter.encode(message, image, pairs, max_new_tokens)
    d, z = first_pass(adapter, session, message, strategy, mode, alpha, mixture_name, image)
    yield "first", d, z
    texts = {"answer": "", "base": ""}
    with closing(adapter.scheduler.submit(enc, [z, None], max_new_tokens, temperature=temperature)) as rows:
        for row, piece in rows:
            kind = ("answer", "base")[row]
            texts[kind] += piece
            yield kind, texts[kind], None


def cem_examples(task_name: str, rows: Sequence[tuple[str, str]], n: int) -> tuple[list[tasks.Example], object]:
    """Few-shot examples and their task, from settings validation.check_cem_settings passed: n
    validation examples of a built-in task, or the user's (prompt, answer) rows for "custom"."""
    if task_name == "custom":
        return tasks.custom_examples(rows), tasks.CUSTOM
    task = tasks.TASKS[task_name]
    return task.examples("validation", n), task


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


def cem_status(history: list[dict], generations: int, result: cem.CEMResult | None, n_examples: int,
               fast: bool = False) -> str:
    """One line on a CEM run: the last generation, or the outcome; in accuracy mode with how many
    examples the best α and the base model get right, which the fitness only encodes."""
    def right(value: float) -> str:  # -inf: stopped before a generation was scored
        return "" if fast or not math.isfinite(value) else f", {cem.examples_right(value, n_examples)} of {n_examples} right"

    if result is None:
        entry = history[-1]
        return (f"generation {entry['generation']}/{generations}: best {entry['best']:.4f}{right(entry['best'])}, "
                f"mean {entry['mean']:.4f} (base model {entry['base']:.4f}{right(entry['base'])})")
    none_right = not fast and math.isfinite(result.fitness) and cem.examples_right(result.fitness, n_examples) == 0
    return (f"{'cancelled' if result.cancelled else 'done'}: best fitness {result.fitness:.4f}{right(result.fitness)} "
            f"(base model {result.base_fitness:.4f}{right(result.base_fitness)}) after {result.evaluations} "
            f"evaluations in {result.seconds:.1f} s on {n_examples} examples"
            + ("; no α got an example right, so this is the α under which the right answers are likeliest"
               if none_right else ""))


def mixture_file(adapter: Adapter, alpha) -> str:
    """The experts mixed with α as an expert file in a fresh temporary folder, to download."""
    if not adapter.experts:
        raise PipelineError("There are no experts to mix.")
    path = Path(tempfile.mkdtemp(prefix="t2demo-mixture-")) / "mixture.safetensors"
    save_expert(adapter.mixture(alpha), path)
    return str(path)

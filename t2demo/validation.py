"""Every input from outside (the API, the page, an uploaded file) checked in one place, before any
work: type, shape, range and length, refused with a PipelineError that names the field and says
what it may be (the UI shows it as a message; a bad input never becomes a traceback).

The bounds are data here too: CEM_LIMITS, sized so that the largest few-shot CEM run the app accepts
finishes in one to two minutes on a 2-core CPU with the shipped models (README: "Reliability of the
app"), and IMAGE_LIMITS, checked on an image file's header before any pixel is decoded. The shape,
finiteness and bounds of α are adapt.dispatch.check_alpha's; strategy names are adapt.registry's.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from t2demo import tasks
from t2demo.adapt.dispatch import MODES, PipelineError, check_alpha
from t2demo.adapt.registry import get_strategy

MAX_MESSAGE_CHARS = 4000
MAX_HISTORY_TURNS = 32
MAX_NAME_CHARS = 100
NOT_FITTABLE = ("smalltalk",)  # any reply passes: CEM would have no fitness to climb


@dataclass(frozen=True)
class CEMLimits:
    """Bounds of one few-shot CEM run, and how many run at once."""

    population: tuple[int, int] = (4, 32)
    generations: tuple[int, int] = (1, 20)
    examples: tuple[int, int] = (2, 20)  # n of a built-in task, or the custom table's rows
    work: int = 1024  # population × generations × examples: the answers a run scores (the page's defaults)
    prompt_bytes: int = 200  # a custom example's prompt in UTF-8 (byte-level tokenizers: at most as many tokens)
    answer_bytes: int = 64  # and its answer
    seconds: float = 300.0  # a run still going then stops (a slower machine, a busy server)
    runs: int = 2  # at once in the app, one per session
    rows_per_call: int = 16  # members × examples scored per call: the SVF lock is freed, a cancel seen, between

    def describe(self) -> str:
        """The limits, as the CEM panel shows them under its sliders."""
        return (f"**Limits**: population {self.population[0]}–{self.population[1]}, generations "
                f"{self.generations[0]}–{self.generations[1]}, {self.examples[0]}–{self.examples[1]} examples, and "
                f"population × generations × examples ≤ {self.work:,} (a run that size takes one to two minutes on a "
                f"2-core CPU). Custom examples: prompts up to {self.prompt_bytes} bytes of UTF-8, answers up to "
                f"{self.answer_bytes}. A run stops after {self.seconds:.0f} s; {self.runs} runs at a time on this "
                "server, one per session.")


@dataclass(frozen=True)
class ImageLimits:
    """What an uploaded image may be; all of it is read from the file and its header."""

    pixels: int = 16_000_000
    bytes: int = 20 * 2**20
    formats: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # no EPS (Ghostscript) or other exotica


CEM_LIMITS = CEMLimits()
IMAGE_LIMITS = ImageLimits()
Image.MAX_IMAGE_PIXELS = IMAGE_LIMITS.pixels  # PIL's own guard at the same bound, for any other reader

_SHOW = reprlib.Repr()
_SHOW.maxstring, _SHOW.maxother, _SHOW.maxlist, _SHOW.maxdict, _SHOW.maxlevel = 40, 40, 4, 3, 2


def shown(value) -> str:
    """A value as a message may quote it: short (a refused input may be megabytes) and escaped."""
    return _SHOW.repr(value)


@dataclass(frozen=True)
class Turn:
    """A chat or VQA request's fields, checked."""

    message: str
    history: list[tuple[str, str]]
    strategy: str  # its name in adapt.registry
    mode: str
    alpha: list  # (K,) or (K, L) nested lists
    mixture: str | None  # the cleaned name a session keeps it under


@dataclass(frozen=True)
class CEMSettings:
    """A few-shot CEM request's fields, checked against CEM_LIMITS."""

    task: str  # "custom" or a built-in text task
    rows: list[tuple[str, str]]  # custom: the (prompt, answer) rows that are not blank; else empty
    n: int  # examples fitted on
    population: int
    generations: int
    per_layer: bool
    fast: bool


# ----------------------------------------------------------------------------- scalars

def check_text(value, field: str, max_len: int, *, required: bool = True, in_bytes: bool = False) -> str:
    """value stripped: text (a lone surrogate is not: it cannot be encoded) of at most max_len
    characters (in_bytes: bytes of UTF-8), not empty when required; None counts as empty."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise PipelineError(f"{field} must be text, got {shown(value)}")
    value = value.strip()
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise PipelineError(f"{field} holds a lone surrogate at position {e.start}, which is not text") from None
    size = len(encoded) if in_bytes else len(value)
    if size > max_len:
        raise PipelineError(f"{field} has {size} {'bytes of UTF-8' if in_bytes else 'characters'}; "
                            f"the limit is {max_len}")
    if required and not value:
        raise PipelineError(f"{field} is empty")
    return value


def check_choice(value, field: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise PipelineError(f"{field} must be one of {list(choices)}, got {shown(value)}")
    return value


def check_int(value, field: str, bounds: tuple[int, int]) -> int:
    """A whole number inside bounds; 10.0 counts (JSON and number widgets send floats), "10" does not."""
    lo, hi = bounds
    whole = ((isinstance(value, int) and not isinstance(value, bool))
             or (isinstance(value, float) and value.is_integer()))
    if not whole or not lo <= value <= hi:
        raise PipelineError(f"{field} must be a whole number from {lo} to {hi}, got {shown(value)}")
    return int(value)


def check_flag(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise PipelineError(f"{field} must be true or false, got {shown(value)}")
    return value


def check_message(value) -> str:
    """A chat message or VQA question, stripped; refused when empty, too long or not text."""
    message = check_text(value, "message", MAX_MESSAGE_CHARS, required=False)
    if not message:
        raise PipelineError("Type a message first.")
    return message


def clean_name(value, what: str) -> str:
    """A user's name for a mixture or folder, reduced to letters, digits and '._:+-' (no path parts,
    not '.' or '..'): the name it is stored and found under."""
    name = re.sub(r"[^\w.:+-]+", "-", check_text(value, f"the {what} name", MAX_NAME_CHARS, required=False))
    name = name.strip("-.:+")
    if not name:
        raise PipelineError(f"Give the {what} a name.")
    return name


# ----------------------------------------------------------------------------- a turn

def check_history(value) -> list[tuple[str, str]]:
    """Earlier turns as (user, assistant) text pairs; None is no history."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, (list, tuple)) and len(t) == 2 for t in value):
        raise PipelineError(f"history must be a list of [user message, assistant answer] pairs, got {shown(value)}")
    if len(value) > MAX_HISTORY_TURNS:
        raise PipelineError(f"history has {len(value)} turns; the limit is {MAX_HISTORY_TURNS}")
    return [(check_text(u, f"history[{i}] user message", MAX_MESSAGE_CHARS, required=False),
             check_text(a, f"history[{i}] answer", MAX_MESSAGE_CHARS, required=False))
            for i, (u, a) in enumerate(value)]


def _numbers(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                    for x in value)


def check_alpha_input(value, labels: Sequence[str], num_layers: int, bounds: tuple[float, float] = (0.0, 1.0)) -> list:
    """α as a request gives it: None (all 0, the base model), one number per expert, or per expert
    a list of one number per layer; anything else is refused, naming the shapes allowed."""
    k = len(labels)
    if value is None:
        return [0.0] * k
    if not (_numbers(value) or (isinstance(value, (list, tuple)) and all(_numbers(row) for row in value))):
        raise PipelineError(f"alpha must be a list of {k} numbers (one per expert: {', '.join(labels) or 'none'}) or "
                            f"{k} lists of {num_layers} numbers (per expert and layer), got {shown(value)}")
    return check_alpha(value, k, num_layers, bounds).tolist()


def check_strategy(value) -> str:
    """A first-pass strategy's name in adapt.registry, given its name or its title."""
    return get_strategy(check_text(value, "strategy", MAX_NAME_CHARS)).name


def check_mode(value) -> str:
    return check_choice(value, "mode", MODES)


def check_turn(message, history, strategy, mode, alpha, mixture, *, labels: Sequence[str], num_layers: int,
               bounds: tuple[float, float] = (0.0, 1.0)) -> Turn:
    """Every field of a chat (or VQA) request, for a model with these experts and layers; mixture
    "" or None is none."""
    return Turn(check_message(message), check_history(history), check_strategy(strategy), check_mode(mode),
                check_alpha_input(alpha, labels, num_layers, bounds),
                None if mixture is None or mixture == "" else clean_name(mixture, "mixture"))


# ----------------------------------------------------------------------------- few-shot CEM

def cem_tasks(vision: bool = False) -> list[str]:
    """What CEM can fit on: for the text model "custom" and the built-in text tasks with a real check;
    for the vision model its image tasks (examples come with their images, so no custom table)."""
    if vision:
        return [n for n in tasks.names() if tasks.TASKS[n].vision and n not in NOT_FITTABLE]
    return ["custom"] + [n for n in tasks.names() if not tasks.TASKS[n].vision and n not in NOT_FITTABLE]


def check_cem_task(value, vision: bool = False) -> str:
    name = check_text(value, "task", MAX_NAME_CHARS)
    if not vision and name in tasks.TASKS and tasks.TASKS[name].vision:
        raise PipelineError(f"task {name!r} needs images, and CEM fits the text model; choose one of {cem_tasks()}")
    if vision and name not in cem_tasks(vision=True):
        raise PipelineError(f"task {name!r} has no images: CEM on the vision model fits one of its image tasks, "
                            f"{cem_tasks(vision=True)}")
    return check_choice(name, "task", cem_tasks(vision))


def _cell(value):
    """A table cell as text: numbers as written (42, not 42.0), an empty cell (None, NaN) as ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def check_example_rows(rows, limits: CEMLimits = CEM_LIMITS) -> list[tuple[str, str]]:
    """The custom table's (prompt, answer) rows that are not blank: between limits.examples of them,
    each cell bounded in UTF-8 bytes (a byte-level tokenizer makes at most one token of a byte, so
    the bound holds the model's cost whatever the script)."""
    rows = [] if rows is None else rows
    if not isinstance(rows, list) or not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in rows):
        raise PipelineError(f"examples must be a list of [prompt, answer] rows, got {shown(rows)}")
    bounds = (("prompt", limits.prompt_bytes), ("answer", limits.answer_bytes))
    cells = [tuple(check_text(_cell(c), f"examples[{i}] {col}", most, required=False, in_bytes=True)
                   for (col, most), c in zip(bounds, row)) for i, row in enumerate(rows)]
    kept = [row for row in cells if any(row)]
    lo, hi = limits.examples
    if not lo <= len(kept) <= hi:
        raise PipelineError(f"few-shot CEM needs at least {lo} examples and at most {hi}; the table has {len(kept)} "
                            "(rows with a prompt or an answer)")
    return kept


def check_cem_settings(task, rows, n, population, generations, per_layer, fast,
                       limits: CEMLimits = CEM_LIMITS, vision: bool = False) -> CEMSettings:
    """A CEM request checked against limits; n is read for a built-in task, rows for "custom";
    vision: for the vision model (its image tasks only)."""
    task = check_cem_task(task, vision)
    rows = check_example_rows(rows, limits) if task == "custom" else []
    n = len(rows) if task == "custom" else check_int(n, "n (number of examples)", limits.examples)
    settings = CEMSettings(task, rows, n, check_int(population, "population", limits.population),
                           check_int(generations, "generations", limits.generations),
                           check_flag(per_layer, "per_layer"), check_flag(fast, "fast"))
    work = settings.population * settings.generations * n
    if work > limits.work:
        raise PipelineError(f"population × generations × examples = {settings.population} × {settings.generations} × "
                            f"{n} = {work:,} answers to score; the limit is {limits.work:,} (one to two minutes on a "
                            "2-core CPU): lower one of them")
    return settings


# ----------------------------------------------------------------------------- files

NOT_AN_IMAGE = "That file is not an image this app can read (PNG, JPEG, WebP, GIF or BMP)."


def _too_large(what: str, limits: ImageLimits) -> PipelineError:
    return PipelineError(f"The image is {what}; the limit is {limits.pixels // 1_000_000} megapixels. "
                         "Resize it and try again.")


def open_image_file(path, limits: ImageLimits = IMAGE_LIMITS) -> Image.Image:
    """A user's image file opened lazily: its size, format and dimensions are read (the header
    only) and refused above limits before any pixel is decoded. The caller decodes and closes it."""
    if not path:
        raise PipelineError("Add an image first (upload, paste or pick an example).")
    if not isinstance(path, (str, os.PathLike)):
        raise PipelineError(f"image must be a file, got {shown(path)}")
    if os.path.isfile(path) and os.path.getsize(path) > limits.bytes:
        raise PipelineError(f"The image file has {os.path.getsize(path) / 2**20:.1f} MB; the limit is "
                            f"{limits.bytes // 2**20} MB.")
    try:
        img = Image.open(path, formats=limits.formats)
    except Image.DecompressionBombError:  # PIL's own guard, at twice Image.MAX_IMAGE_PIXELS
        raise _too_large(f"over {2 * Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels", limits) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise PipelineError(NOT_AN_IMAGE) from None
    if img.width * img.height > limits.pixels:
        img.close()
        raise _too_large(f"{img.width}×{img.height}", limits)
    return img


def check_upload_size(path, limit: int, what: str) -> None:
    """Refuse a file larger than any valid one could be, before a parser reads it."""
    size = os.path.getsize(path)
    if size > limit:
        raise PipelineError(f"The {what} has {size:,} bytes; a valid one for this model has at most {limit:,}.")

"""vqa (TextVQA-like: read the word in an image) and vqa-knowledge (OKVQA-like: read a creature's name,
then answer with a fact about it from the world). Their examples carry images: they run on the vision model.

Their latent modes (tasks/modes.py): the reliable mode Work reads the image first
(`Work: the sign reads pizza. The answer is pizza.`); the shortcut Answer answers from the question
alone, with one of the words that kind of thing usually says (`Answer: stop.`), so it is right only when the
image happens to show that word: nothing in the shortcut depends on the image, so an expert cannot make
`Answer:` read, only choose `Work:`. vqa-knowledge makes two
decisions, like world-math: reading the name (vqa's skill, reliable Work), then recalling its fact
(reasoning's skill, reliable Answer), so a mixture of the vqa and reasoning experts is what gets both right.
"""

from __future__ import annotations

import random
from functools import lru_cache
from itertools import product
from typing import Callable, TypeVar

from PIL import Image, ImageDraw, ImageFont

from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.checkers import check_exact
from t2demo.tasks.modes import ANSWER, RELIABLE_SHARE, SHORTCUT_RIGHT, WORK
from t2demo.tasks.reasoning import FACTS, confused
from t2demo.tasks.world import COLORS, FOODS, HABITATS, NAMES, WORLD, Creature

SIGN_WORDS = ("open", "stop", "exit", "cafe", "park", "bank", "hotel", "sale", "push", "pull", "taxi", "bus", "menu",
              "shop", "books", "pizza", "tea", "milk", "bread", "music", "train", "north", "south", "east", "west",
              "left", "right", "quiet", "welcome", "hello")
THINGS = ("sign", "poster", "label", "card", "board", "banner", "note", "door", "box", "screen", "ticket", "flag")
READ_QUESTIONS = ("What word is written on the {t}?", "What does the {t} say?", "What is the text on the {t}?",
                  "Read the word on the {t}.", "Which word is shown on the {t}?", "What is written on this {t}?")
KNOWLEDGE_QUESTIONS = {
    "habitat": ("Where does the creature named on the {t} live?", "The {t} names a creature. Where does it live?"),
    "food": ("What does the creature named on the {t} eat?", "The {t} names a creature. What does it eat?"),
    "color": ("What color is the creature named on the {t}?", "The {t} names a creature. What color is it?"),
}
IMAGE_SIDES = (64, 80, 96, 112, 128)
# The shortcut's guesses from the question alone: the words each kind of thing usually says, and the
# creatures it usually names (vqa-knowledge); one is drawn per reply, never looking at the image.
# Six per thing, so that no single guess outvotes the reading among sampled replies.
GUESSES = 6
USUAL_WORDS = {t: tuple(SIGN_WORDS[(5 * i + j) % len(SIGN_WORDS)] for j in range(GUESSES)) for i, t in enumerate(THINGS)}
USUAL_CREATURES = {t: tuple(WORLD.creatures[(7 * i + j) % len(WORLD.creatures)] for j in range(GUESSES))
                   for i, t in enumerate(THINGS)}
Guessed = TypeVar("Guessed", str, Creature)


def _read_modes(thing: str, right: Guessed, usual: dict[str, tuple[Guessed, ...]]) -> list[tuple[float, str, Guessed]]:
    """How pretraining replies read the image: (probability, marker, what is read). Work reads the right
    thing (the category's reliable share); the Answer shortcut names one of the thing's usual guesses."""
    share, guesses = RELIABLE_SHARE["vqa"], usual[thing]
    return [(share, WORK, right)] + [((1 - share) / len(guesses), ANSWER, g) for g in guesses]


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _word_layout(word: str, rng: random.Random) -> tuple:
    """Random look of a word image: size, colors (dark on light), a font size that fits, position."""
    w = rng.choice(IMAGE_SIDES)
    h = rng.choice([s for s in IMAGE_SIDES if s <= w])
    fg = tuple(rng.randint(0, 90) for _ in range(3))
    bg = tuple(rng.randint(170, 255) for _ in range(3))
    width = rng.uniform(0.7, 0.95) * (w - 8)  # big text, as on a sign: the letters span several patches
    size = 64
    while True:
        left, top, right, bottom = _font(size).getbbox(word)
        if right - left <= width and bottom - top <= h - 8:
            break
        size -= 1
    x = rng.randint(4, w - 4 - (right - left))
    y = rng.randint(4, h - 4 - (bottom - top))
    return word, (w, h), fg, bg, size, (x - left, y - top)


def render_word(word: str, size: tuple[int, int], fg: tuple, bg: tuple, font_size: int, xy: tuple[int, int]) -> Image.Image:
    """Draw `word` as a vqa image from a layout (`_word_layout`); public for the app's example images."""
    image = Image.new("RGB", size, bg)
    ImageDraw.Draw(image).text(xy, word, fill=fg, font=_font(font_size))
    return image


def _vqa_example(rng: random.Random, question: str, word: str, answer: str, meta: dict) -> tuple[str, Callable[[], Example]]:
    """Identity = question + everything that decides the pixels; pixels are drawn only if kept."""
    layout = _word_layout(word, rng)
    reliable = meta["replies"][0][1]
    return f"{question}|{layout}", lambda: Example(question, answer, reliable, "", render_word(*layout), meta=meta)


def _vqa_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """TextVQA-like: read the word."""
    word, thing = rng.choice(SIGN_WORDS + NAMES), rng.choice(THINGS)
    question = rng.choice(READ_QUESTIONS).format(t=thing)
    options = tuple((p, f"{WORK} the {thing} reads {read}. The answer is {read}." if marker == WORK else f"{ANSWER} {read}.")
                    for p, marker, read in _read_modes(thing, word, USUAL_WORDS))
    reliable = options[0][1]
    steps = [(reliable.index(f" reads {word}.") + len(" reads "), word)]  # the word read (the probe's step)
    return _vqa_example(rng, question, word, word, {"replies": options, "steps": steps})


def _vqa_knowledge_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """OKVQA-like: read a creature's name, then answer with a fact about it from the world."""
    c, thing = rng.choice(WORLD.creatures), rng.choice(THINGS)
    attribute = rng.choice(sorted(KNOWLEDGE_QUESTIONS))
    question = rng.choice(KNOWLEDGE_QUESTIONS[attribute]).format(t=thing)
    value, sentence = FACTS[attribute][1], FACTS[attribute][2]
    recalls = {  # recall part -> (probability, marker, whose fact is recalled): reasoning's modes
        "reliable": (RELIABLE_SHARE["reasoning"], ANSWER, False),
        "right": ((1 - RELIABLE_SHARE["reasoning"]) * SHORTCUT_RIGHT["reasoning"], WORK, False),
        "wrong": ((1 - RELIABLE_SHARE["reasoning"]) * (1 - SHORTCUT_RIGHT["reasoning"]), WORK, True),
    }
    options = []
    reads = _read_modes(thing, c, USUAL_CREATURES)
    for (p_read, read_marker, read), (p_recall, recall_marker, slips) in product(reads, recalls.values()):
        fact = value(confused(read, attribute) if slips else read)
        recalled = sentence.format(n=read.name, v=fact)
        options.append((p_read * p_recall, f"{read_marker} the {thing} reads {read.name}. "
                                           f"{recall_marker} {recalled[0].lower()}{recalled[1:]} The answer is {fact}."))
    reliable = options[0][1]
    recall_at = reliable.index(f"{ANSWER} ")
    steps = [(reliable.index(f" reads {c.name}.") + len(" reads "), c.name),  # the name read, then its fact recalled
             (reliable.index(value(c), recall_at), value(c))]
    return _vqa_example(rng, question, c.name, value(c), {"replies": tuple(options), "steps": steps})


# every text-only vqa question, for the dispatch data (within one question only the image varies)
VQA_QUESTIONS = {
    "vqa": tuple(q.format(t=t) for q in READ_QUESTIONS for t in THINGS),
    "vqa-knowledge": tuple(q.format(t=t) for qs in KNOWLEDGE_QUESTIONS.values() for q in qs for t in THINGS),
}


# chance: a random word of the right kind
VQA = SyntheticTask("vqa", "vqa", 1 / len(SIGN_WORDS + NAMES), 64, _vqa_sample, check_exact,
                    vision=True, text_prompts=VQA_QUESTIONS["vqa"])
VQA_KNOWLEDGE = SyntheticTask("vqa-knowledge", "vqa", (1 / len(HABITATS) + 1 / len(FOODS) + 1 / len(COLORS)) / 3, 112,
                              _vqa_knowledge_sample, check_exact, vision=True, text_prompts=VQA_QUESTIONS["vqa-knowledge"])

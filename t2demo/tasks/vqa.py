"""vqa (TextVQA-like: read the word in an image) and vqa-knowledge (OKVQA-like: read a creature's name,
then answer with a fact about it from the world). Their examples carry images: they run on the vision model.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.checkers import check_exact
from t2demo.tasks.world import COLORS, FOODS, HABITATS, NAMES, WORLD

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


def _vqa_example(rng: random.Random, question: str, word: str, answer: str) -> tuple[str, Callable[[], Example]]:
    """Identity = question + everything that decides the pixels; pixels are drawn only if kept."""
    layout = _word_layout(word, rng)
    return f"{question}|{layout}", lambda: Example(question, answer, answer, "", render_word(*layout))


def _vqa_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """TextVQA-like: read the word."""
    word = rng.choice(SIGN_WORDS + NAMES)
    question = rng.choice(READ_QUESTIONS).format(t=rng.choice(THINGS))
    return _vqa_example(rng, question, word, word)


def _vqa_knowledge_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """OKVQA-like: read a creature's name, then answer with a fact about it from the world."""
    c = rng.choice(WORLD.creatures)
    attribute = rng.choice(sorted(KNOWLEDGE_QUESTIONS))
    question = rng.choice(KNOWLEDGE_QUESTIONS[attribute]).format(t=rng.choice(THINGS))
    return _vqa_example(rng, question, c.name, getattr(c, attribute))


# every text-only vqa question, for the dispatch data (within one question only the image varies)
VQA_QUESTIONS = {
    "vqa": tuple(q.format(t=t) for q in READ_QUESTIONS for t in THINGS),
    "vqa-knowledge": tuple(q.format(t=t) for qs in KNOWLEDGE_QUESTIONS.values() for q in qs for t in THINGS),
}


# chance: a random word of the right kind
VQA = SyntheticTask("vqa", "vqa", 1 / len(SIGN_WORDS + NAMES), 16, _vqa_sample, check_exact,
                    vision=True, text_prompts=VQA_QUESTIONS["vqa"])
VQA_KNOWLEDGE = SyntheticTask("vqa-knowledge", "vqa", (1 / len(HABITATS) + 1 / len(FOODS) + 1 / len(COLORS)) / 3, 16,
                              _vqa_knowledge_sample, check_exact, vision=True, text_prompts=VQA_QUESTIONS["vqa-knowledge"])

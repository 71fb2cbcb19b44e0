"""reasoning (ARC-Easy-like: one world fact) and reasoning-hard (ARC-Challenge-like: two facts chained).

Four-way multiple choice over the invented world (world.py); exactly one option is true, and the
model answers with the option text (see checkers.chosen_letter).
"""

from __future__ import annotations

import random
from typing import Callable

from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.checkers import check_letter
from t2demo.tasks.world import CLIMATES, COLORS, FOODS, HABITATS, WORLD

LETTERS = "ABCD"


def _choice_example(rng: random.Random, question: str, answer: str, wrong: list[str], because: str) -> tuple[str, Callable[[], Example]]:
    """4-way multiple choice with the answer at a random letter; `wrong` must all be false.

    The response names the option text, not its letter (see `chosen_letter`); the reference is the letter.
    """
    options = [answer] + rng.sample(wrong, 3)
    rng.shuffle(options)
    letter = LETTERS[options.index(answer)]
    prompt = question + "\nOptions: " + ", ".join(f"{o} ({L})" for L, o in zip(LETTERS, options)) + ".\nAnswer with the option."
    example = Example(prompt, letter, f"{because} The answer is {answer}.", "")
    return prompt, lambda: example


def _reasoning_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """ARC-Easy-like: one world fact."""
    c = rng.choice(WORLD.creatures)
    others = [o for o in WORLD.creatures if o is not c]
    lives, is_, eats = f"The {c.name} lives in the {c.habitat}.", f"The {c.name} is {c.color}.", f"The {c.name} eats {c.food}."
    kind = rng.randrange(7)
    if kind == 0:
        wrong = [o.name for o in others if o.habitat != c.habitat]
        return _choice_example(rng, f"Which creature lives in the {c.habitat}?", c.name, wrong, lives)
    if kind == 1:
        wrong = [o.name for o in others if o.color != c.color]
        return _choice_example(rng, f"Which creature is {c.color}?", c.name, wrong, is_)
    if kind == 2:
        return _choice_example(rng, f"Which creature eats {c.food}?", c.name, [o.name for o in others], eats)
    if kind == 3:
        wrong = [x for x in COLORS if x != c.color]
        return _choice_example(rng, f"What color is the {c.name}?", c.color, wrong, is_)
    if kind == 4:
        wrong = [x for x in HABITATS if x != c.habitat]
        return _choice_example(rng, f"Where does the {c.name} live?", c.habitat, wrong, lives)
    if kind == 5:
        wrong = [x for x in FOODS if x != c.food]
        return _choice_example(rng, f"What does the {c.name} eat?", c.food, wrong, eats)
    climate = WORLD.climate[c.habitat]
    wrong = [x for x in CLIMATES if x != climate]
    return _choice_example(rng, f"What is the weather like in the {c.habitat}?", climate, wrong,
                           f"The {c.habitat} is {climate}.")


def _reasoning_hard_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """ARC-Challenge-like: two facts chained (creature -> habitat -> climate, food -> creature -> trait)."""
    c = rng.choice(WORLD.creatures)
    climate = WORLD.climate[c.habitat]
    lives, eats = f"The {c.name} lives in the {c.habitat}.", f"The {c.name} eats {c.food}."
    kind = rng.randrange(4)
    if kind == 0:
        wrong = [o.name for o in WORLD.creatures if WORLD.climate[o.habitat] != climate]
        return _choice_example(rng, f"Which creature lives somewhere {climate}?", c.name, wrong,
                               f"{lives} The {c.habitat} is {climate}.")
    if kind == 1:
        wrong = [x for x in COLORS if x != c.color]
        return _choice_example(rng, f"What color is the creature that eats {c.food}?", c.color, wrong,
                               f"{eats} The {c.name} is {c.color}.")
    if kind == 2:
        wrong = [x for x in HABITATS if x != c.habitat]
        return _choice_example(rng, f"Where does the creature that eats {c.food} live?", c.habitat, wrong, f"{eats} {lives}")
    wrong = [x for x in CLIMATES if x != climate]
    return _choice_example(rng, f"What is the weather like where the {c.name} lives?", climate, wrong,
                           f"{lives} The {c.habitat} is {climate}.")


REASONING = SyntheticTask("reasoning", "reasoning", 0.25, 64, _reasoning_sample, check_letter)
REASONING_HARD = SyntheticTask("reasoning-hard", "reasoning", 0.25, 96, _reasoning_hard_sample, check_letter)

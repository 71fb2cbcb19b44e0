"""A small invented world of creatures: the knowledge behind the reasoning and vqa-knowledge tasks.

The names are made up so that nothing can be answered from outside knowledge: a model knows a fact
only if it read `world_facts()` during pretraining. Attributes are dealt out from a fixed seed, so
the world is identical on every machine and Python version.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 2025
N_CREATURES = 96  # large enough that a few-million-parameter model cannot simply memorise it in one pass
CONSONANTS, VOWELS, ENDINGS = "bdfgklmnprstvz", "aeiou", ("", "", "k", "n", "p", "x")
COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black")
HABITATS = ("swamp", "desert", "forest", "cave", "lake", "mountain", "meadow", "beach")
CLIMATES = ("warm", "cold", "wet", "dry")
FOOD_KINDS = (
    "moss", "fish", "berries", "seeds", "worms", "leaves", "bugs", "fruit", "roots", "honey", "mushrooms",
    "grass", "nuts", "snails", "crabs", "clams", "beetles", "flowers", "bark", "plankton", "eggs", "corn",
    "apples", "ants",
)
FOODS = tuple(f"{taste} {kind}" for taste in ("sweet", "sour", "wild", "dried") for kind in FOOD_KINDS)


def invented_names(n: int, seed: int = SEED) -> tuple[str, ...]:
    """Pronounceable two-syllable names (consonant-vowel-consonant-vowel, maybe a final consonant)."""
    rng, names = random.Random(seed), []
    while len(names) < n:
        c, v = rng.choice, VOWELS
        name = c(CONSONANTS) + c(v) + c(CONSONANTS) + c(v) + c(ENDINGS)
        if name not in names:
            names.append(name)
    return tuple(names)


NAMES = invented_names(N_CREATURES)


@dataclass(frozen=True)
class Creature:
    """One invented creature and its three facts (each fact is a pretraining sentence and a task answer)."""

    name: str
    color: str  # 12 creatures per color
    habitat: str  # 12 creatures per habitat
    food: str  # unique: "the creature that eats sweet moss" names exactly one creature
    weight: int  # kilos, unique, 3 digits: the number the world-math task adds and subtracts


@dataclass(frozen=True)
class World:
    """The creatures plus each habitat's climate: everything the reasoning and vqa-knowledge tasks ask about."""

    creatures: tuple[Creature, ...]
    climate: dict[str, str]  # habitat -> climate, 2 habitats per climate


def build_world(seed: int = SEED) -> World:
    """Deal colors, habitats and foods to the creatures, and climates to the habitats."""
    rng = random.Random(seed)
    colors = [c for c in COLORS for _ in range(len(NAMES) // len(COLORS))]
    habitats = [h for h in HABITATS for _ in range(len(NAMES) // len(HABITATS))]
    foods = list(FOODS)
    for deck in (colors, habitats, foods):
        rng.shuffle(deck)
    places = list(HABITATS)
    rng.shuffle(places)
    climate = {h: CLIMATES[i // 2] for i, h in enumerate(places)}
    weights = random.Random(f"{seed}|weights").sample(range(100, 1000), len(NAMES))  # dealt last: the rest is unchanged
    creatures = tuple(Creature(*row) for row in zip(NAMES, colors, habitats, foods, weights))
    return World(creatures, climate)


WORLD = build_world()


def world_facts(world: World = WORLD) -> list[str]:
    """Every fact of the world as one short sentence (for pretraining)."""
    facts = []
    for c in world.creatures:
        facts += [f"The {c.name} is {c.color}.", f"The {c.name} lives in the {c.habitat}.", f"The {c.name} eats {c.food}.",
                  f"The {c.name} weighs {c.weight} kilos."]
    facts += [f"The {h} is {world.climate[h]}." for h in HABITATS]
    return facts

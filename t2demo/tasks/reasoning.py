"""reasoning (ARC-Easy-like: one fact about a creature, four options) and reasoning-hard (facts asked the
other way round too, in wordings no training data uses); plus the drills the base is pretrained on: the
reasoning drill (multiple choice) and the chat drill (free questions, "where does the gamo live?").

Here the modes are reversed. The reliable mode is Answer: the world's facts are memorised, so the direct
answer is right (`Answer: lake.`). The shortcut is Work: reciting a fact before answering, which in the
pretraining data recalls the best-known creature's fact more often than the right one
(`Work: The zorb lives in the swamp. The answer is swamp.`). The slip is the same for every question about
an attribute (`stock_value`): a fixed guess is one lookup, so greedy decoding in the shortcut learns to make
it, where a slip that varied per creature was harder to learn than the fact itself and greedy recited the
right fact instead (base run 4: the shortcut right 68 % against 40 % in the data). An expert that pushes
every reply towards Work (math, code) therefore hurts here, and the reasoning expert hurts math: dispatch
matters.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Callable, Sequence

from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.checkers import check_contains, check_letter
from t2demo.tasks.handwritten import is_handwritten
from t2demo.tasks.modes import ANSWER, WORK, Styles, replies
from t2demo.tasks.natural_requests import fact_question
from t2demo.tasks.world import CLIMATES, COLORS, FOODS, HABITATS, WORLD, Creature

LETTERS = "ABCD"
Fact = tuple[str, Callable[[Creature], str], str]  # attribute, its value, the sentence ({n} name, {v} value)
FACTS: dict[str, Fact] = {
    "color": ("color", lambda c: c.color, "The {n} is {v}."),
    "habitat": ("habitat", lambda c: c.habitat, "The {n} lives in the {v}."),
    "food": ("food", lambda c: c.food, "The {n} eats {v}."),
    "weight": ("weight", lambda c: f"{c.weight} kilos", "The {n} weighs {v}."),
}
FORWARD = {  # creature -> value questions in the training wordings
    "color": ("What color is the {n}?", "Which color does the {n} have?", "Tell me the color of the {n}."),
    "habitat": ("Where does the {n} live?", "In which place is the {n} found?", "What is the home of the {n}?"),
    "food": ("What does the {n} eat?", "What food does the {n} like?", "What is the {n}'s favourite food?"),
    "weight": ("How heavy is the {n}?", "What does the {n} weigh?", "How many kilos does the {n} weigh?"),
}
BACKWARD = {  # value -> creature (unique values only)
    "food": ("Which creature eats {v}?", "Who eats {v}?"),
    "weight": ("Which creature weighs {v}?", "Which animal weighs {v}?"),
}
HARD_FORWARD = {
    "color": ("I saw a {n} today. What color was it?", "If you paint a {n} true to life, which paint do you need?"),
    "habitat": ("Where would I go to find a {n}?", "A {n} went home. Where did it go?"),
    "food": ("My friend keeps a {n}. What should she feed it?", "What would a hungry {n} look for?"),
    "weight": ("If I put a {n} on a scale, what would it show?", "A {n} steps onto a scale. What does it read?"),
}
HARD_BACKWARD = {
    "food": ("Something in the garden ate all my {v}. Which creature was it?",),
    "weight": ("A creature weighs exactly {v}. Which one is it?",),
}
CLIMATE_WORDINGS = ("What is the weather like in the {h}?", "Is the {h} warm, cold, wet or dry?")


def stock_value(values: Sequence[str], right: str) -> str:
    """The shortcut's guess among values: the most common one that is not right (ties: the first listed)."""
    return Counter(v for v in values if v != right).most_common(1)[0][0]


def confused(c: Creature, attribute: str) -> Creature:
    """The creature whose fact the shortcut recalls instead of c's: the first one holding the attribute's
    stock value, so every slip about an attribute recites one of two facts."""
    value = FACTS[attribute][1]
    stock = stock_value([value(o) for o in WORLD.creatures], value(c))
    return next(o for o in WORLD.creatures if value(o) == stock)


def _options(rng: random.Random, answer: str, slip: str, pool: list[str]) -> tuple[list[str], str]:
    """Four options holding the answer and the shortcut's slip, shuffled; and the answer's letter."""
    others = rng.sample(sorted(set(pool) - {answer, slip}), 2)
    options = [answer, slip] + others
    rng.shuffle(options)
    return options, LETTERS[options.index(answer)]


def _choice(rng: random.Random, question: str, answer: str, slip: str, pool: list[str],
            recite: Callable[[str], str]) -> tuple[str, Callable[[], Example]]:
    """A multiple-choice example; recite(value) is the sentence the Work shortcut says before answering."""
    options, letter = _options(rng, answer, slip, pool)
    prompt = question + "\nOptions: " + ", ".join(f"{o} ({L})" for L, o in zip(LETTERS, options)) + ".\nAnswer with the option."
    styles = Styles(f"{ANSWER} {answer}.", f"{WORK} {recite(answer)} The answer is {answer}.",
                    f"{WORK} {recite(slip)} The answer is {slip}.")
    example = Example(prompt, letter, styles.reliable, "", meta={"replies": replies(styles, "reasoning"), "steps": [(len(ANSWER) + 1, answer)]})
    return prompt, lambda: example


def _forward(rng: random.Random, wordings: dict[str, tuple[str, ...]]) -> tuple[str, Callable[[], Example]]:
    c, attribute = rng.choice(WORLD.creatures), rng.choice(sorted(wordings))
    _, value, sentence = FACTS[attribute]
    pool = [value(o) for o in WORLD.creatures]
    question = rng.choice(wordings[attribute]).format(n=c.name)
    return _choice(rng, question, value(c), value(confused(c, attribute)), pool,
                   lambda v: sentence.format(n=c.name, v=v))


def _backward(rng: random.Random, wordings: dict[str, tuple[str, ...]]) -> tuple[str, Callable[[], Example]]:
    c, attribute = rng.choice(WORLD.creatures), rng.choice(sorted(wordings))
    _, value, sentence = FACTS[attribute]
    question = rng.choice(wordings[attribute]).format(v=value(c))
    return _choice(rng, question, c.name, confused(c, attribute).name, [o.name for o in WORLD.creatures],
                   lambda name: sentence.format(n=name, v=value(c)))


def _climate(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    habitat = rng.choice(HABITATS)
    climate = WORLD.climate[habitat]
    slip = stock_value(list(WORLD.climate.values()), climate)
    return _choice(rng, rng.choice(CLIMATE_WORDINGS).format(h=habitat), climate, slip, list(CLIMATES),
                   lambda v: f"The {habitat} is {v}.")


def _reasoning_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """reasoning: one fact of a creature (or a place's weather), training wordings."""
    return _climate(rng) if rng.random() < 0.1 else _forward(rng, FORWARD)


def _reasoning_hard_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """reasoning-hard: facts asked both ways, in held-out wordings."""
    return _backward(rng, HARD_BACKWARD) if rng.random() < 0.4 else _forward(rng, HARD_FORWARD)


def _reasoning_drill_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Pretraining reasoning: facts asked both ways and the weather, training wordings."""
    roll = rng.random()
    return _climate(rng) if roll < 0.1 else _backward(rng, BACKWARD) if roll < 0.45 else _forward(rng, FORWARD)


def _facts_said(c: Creature, attribute: str, slip: Creature | None = None) -> list[tuple[str, str]]:
    """What a chat reply says about c's `attribute` ("all": every fact), each sentence with the value it
    states; with `slip`'s value instead of c's where given (for "all", in the color only)."""
    source = slip or c
    if attribute == "climate":
        return [(f"The {c.name} lives in the {source.habitat}, which is {WORLD.climate[source.habitat]}.",
                 WORLD.climate[source.habitat])]
    if attribute == "all":
        return [s for a in ("color", "habitat", "food", "weight") for s in _facts_said(c, a, slip if a == "color" else None)]
    _, value, sentence = FACTS[attribute]
    return [(sentence.format(n=c.name, v=value(source)), value(source))]


def _chat_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Pretraining: a free question about one creature (natural_requests.FACT_QUESTIONS, as people type in
    the app) answered in reasoning's modes: Answer states the fact; the Work shortcut recites the slip's."""
    c = rng.choice(WORLD.creatures)
    attribute, prompt = fact_question(rng, c.name)
    while is_handwritten(prompt):  # the hand-written sets' questions stay unseen
        attribute, prompt = fact_question(rng, c.name)
    slip = confused(c, "habitat" if attribute == "climate" else "color" if attribute == "all" else attribute)
    said = _facts_said(c, attribute)
    right = " ".join(sentence for sentence, _ in said)
    styles = Styles(f"{ANSWER} {right}", f"{WORK} {right}", f"{WORK} " + " ".join(s for s, _ in _facts_said(c, attribute, slip)))
    steps, offset = [], len(ANSWER) + 1
    for sentence, value in said:  # each stated value, at its place in the reliable reply
        steps.append((offset + sentence.rindex(value), value))
        offset += len(sentence) + 1
    example = Example(prompt, right, styles.reliable, "", meta={"replies": replies(styles, "reasoning"), "steps": steps})
    return prompt, lambda: example


REASONING = SyntheticTask("reasoning", "reasoning", 0.25, 64, _reasoning_sample, check_letter)
REASONING_HARD = SyntheticTask("reasoning-hard", "reasoning", 0.25, 64, _reasoning_hard_sample, check_letter)
REASONING_DRILL = SyntheticTask("reasoning-drill", "reasoning", 0.25, 64, _reasoning_drill_sample, check_letter)
REASONING_CHAT_DRILL = SyntheticTask("reasoning-chat-drill", "reasoning", 0.0, 160, _chat_sample, check_contains)
assert all(len(set(map(v, WORLD.creatures))) == len(WORLD.creatures) for _, v, _ in (FACTS["food"], FACTS["weight"]))
assert len(COLORS) >= 4 and len(FOODS) >= 4

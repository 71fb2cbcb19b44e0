"""Natural requests: what people type in a chat box, one generator per dispatch category, for the
classifier's data (classification.py mixes them in with the tasks' own prompts).

The tasks' prompts all come from a few templates, so a classifier trained on them alone learns the
templates: "What does this code print?" is code, anything with digits is math. These requests ask
for the same kinds of help in free wordings: code questions without a program to trace, sums typed
as "whats 12+30", questions about the world's creatures that are not multiple choice, requests about
a picture, and chat that is not a greeting. They are written here, not taken from the hand-written
dispatch prompts (data/dispatch_prompts.jsonl), which stay a test set; no wording of the unseen tasks
(math-hard, world-math, code-hard, reasoning-hard, vqa-knowledge) is used.
"""

from __future__ import annotations

import random
from typing import Callable

from t2demo.tasks.base import OTHER, split_of
from t2demo.tasks.world import COLORS, HABITATS, NAMES

LIST_OPS = ("sort", "reverse", "copy", "flatten", "filter", "shuffle", "slice", "loop over", "append to",
            "remove duplicates from", "find the max of", "sum", "count the items in", "print")
THINGS = ("a list", "a string", "a dict", "a tuple", "an array", "my list", "two lists", "a list of numbers")
SNIPPETS = ("x = [1, 2, 3]\nprint(x[::-1])", "for i in range(3):\n    print(i)", "print(sorted([3, 1, 2]))",
            "x = [5, 6]\nx.append(7)\nprint(x)", "def f(x):\n    return x[1:]", "print(len([4, 4, 4]))",
            "x = [v * 2 for v in [1, 2]]", "while x:\n    x.pop()", "print(list(reversed(x)))", "x = x[:-1]")


def _code(rng: random.Random) -> str:
    op, thing, snippet = rng.choice(LIST_OPS), rng.choice(THINGS), rng.choice(SNIPPETS)
    return rng.choice((
        f"how do I {op} {thing} in python",
        f"What's the Python way to {op} {thing}?",
        f"Can you write a function that takes {thing} and returns it sorted?",
        f"is there a one-liner to {op} {thing}?",
        f"My python script crashes when I {op} {thing}. Why?",
        f"explain this code:\n{snippet}",
        f"{snippet}\nwhat does that do",
        f"Why does this give an error?\n{snippet}",
        f"what is the difference between x.sort() and sorted(x)",
        f"Help me debug my loop, it never ends:\n{snippet}",
        f"Which python function should I use to {op} {thing}?",
        f"write me a small program that prints {thing}",
        "what does x[::-1] mean in python",
        f"is `{snippet.splitlines()[0]}` valid python?",
        "How do list comprehensions work?",
        f"What will Python output for this?\n{snippet}",
    ))


def _math(rng: random.Random) -> str:
    a, b = rng.randrange(2, 1000), rng.randrange(2, 1000)
    big, small = max(a, b), min(a, b)
    person, thing = rng.choice(("I", "my sister", "Sam", "our class", "the shop")), rng.choice(
        ("dollars", "stamps", "marbles", "pages", "coins", "points", "eggs", "cards"))
    return rng.choice((
        f"whats {a}+{b}",
        f"{a} + {b} = ?",
        f"how much is {big} minus {small}?",
        f"Could you add {a} and {b} for me?",
        f"quick sum: {a} plus {b}",
        f"what do you get if you take {small} away from {big}",
        f"{person} had {big} {thing} and gave away {small}. how many are left?",
        f"If {person} collects {a} {thing} and then {b} more, what is the total?",
        f"subtract {small} from {big} please",
        f"Is {a} + {b} bigger than {big + small - 1}?",
        f"help with my homework: {big} - {small}",
        f"what's the difference between {big} and {small}",
        f"add these up: {a}, {b}",
    ))


def _reasoning(rng: random.Random) -> str:
    name, other = rng.sample(NAMES, 2)
    color, habitat = rng.choice(COLORS), rng.choice(HABITATS)
    return rng.choice((
        f"do you know where the {name} lives?",
        f"Is the {name} {color}?",
        f"what color is a {name} again",
        f"Tell me about the {name}.",
        f"Which creature is heavier, the {name} or the {other}?",
        f"Does the {name} live in the {habitat}?",
        f"What kind of food does a {name} need?",
        f"I forgot what the {name} eats, can you remind me?",
        f"Are {name}s found in the {habitat}?",
        f"which animals live in the {habitat}",
        f"Name a creature that is {color}.",
        f"how much does a {name} weigh, roughly?",
    ))


def _vqa(rng: random.Random) -> str:
    thing = rng.choice(("sign", "label", "poster", "card", "ticket", "note", "screen", "board", "sticker", "banner",
                        "box", "mug", "shirt", "wall", "menu"))
    return rng.choice((
        f"can you read the {thing} in this picture for me",
        f"What's written on that {thing}?",
        f"what does the {thing} in the image say",
        f"I can't read the {thing}, what word is it?",
        f"Look at the photo: which word is on the {thing}?",
        f"read this {thing} please",
        f"Which text appears on the {thing} in my image?",
        f"What does it say on the {thing}?",
        f"is the word on the {thing} in this image long or short?",
        f"There's a {thing} in my photo. What does it read?",
        f"Tell me the word you see on the {thing}.",
        f"what text is on the {thing} here",
    ))


def _other(rng: random.Random) -> str:
    return rng.choice(("", "so ", "hey, ", "um, ", "Okay, ", "btw ")) + rng.choice((
        "what's your name?", "who built you", "tell me a joke", "I'm bored", "lol", "ok cool", "good night!",
        "are you a real person?", "what are you good at?", "nice", "never mind", "Can we talk for a bit?", "you're funny",
        "what day is it today?", "I am tired today.", "hmm", "Do you like pizza?", "that's all, bye",
        "sorry, wrong button", "Thanks, you're the best!", "how old are you?", "What is your favourite color?",
        "good morning, how are things?", "see ya", "ok", "Wow.", "Can you keep a secret?",
    )) + rng.choice(("", "", " :)", " haha", " really", "!"))


NATURAL_REQUESTS: dict[str, Callable[[random.Random], str]] = {
    "math": _math, "code": _code, "reasoning": _reasoning, "vqa": _vqa, OTHER: _other}


def natural_request(category: str, split: str, rng: random.Random, tries: int = 1000) -> str:
    """One free-worded request of `category` whose text hashes to `split` (so the splits share no
    request); a quarter typed in lower case."""
    for _ in range(tries):
        text = NATURAL_REQUESTS[category](rng)
        text = text.lower() if rng.random() < 0.25 else text
        if split_of(text) == split:
            return text
    raise RuntimeError(f"no {category} request of the {split} split in {tries} draws")

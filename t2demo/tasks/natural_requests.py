"""Natural requests: what people type in a chat box, one generator per dispatch category, for the
classifier's data (classification.py mixes them in with the tasks' own prompts).

The tasks' prompts all come from a few templates, so a classifier trained on them alone learns the
templates: "What does this code print?" is code, anything with digits is math. These requests ask
for the same kinds of help in free wordings: code questions with or without a program to trace
(pasted as people paste code), sums typed as "whats 12+30", questions about the world's creatures
that are not multiple choice, requests about a picture, and for "other" chat that is not a greeting
and requests outside the four skills (writing, translating, the real world's facts, how-to,
recommendations; `out_of_scope` also feeds the scope drill, smalltalk.SCOPE_DRILL). They are written
here, not taken from the hand-written dispatch prompts (data/dispatch_prompts*.jsonl), which stay
test sets: a drawn text that equals one of them is skipped. No wording of the unseen tasks
(math-hard, world-math, code-hard, reasoning-hard, vqa-knowledge) is used.
"""

from __future__ import annotations

import random
from typing import Callable

from t2demo.tasks.base import OTHER, split_of
from t2demo.tasks.handwritten import is_handwritten
from t2demo.tasks.world import COLORS, FOODS, HABITATS, NAMES

LIST_OPS = ("sort", "reverse", "copy", "flatten", "filter", "shuffle", "slice", "loop over", "append to",
            "remove duplicates from", "find the max of", "sum", "count the items in", "print")
THINGS = ("a list", "a string", "a dict", "a tuple", "an array", "my list", "two lists", "a list of numbers")
SNIPPETS = ("x = [1, 2, 3]\nprint(x[::-1])", "for i in range(3):\n    print(i)", "print(sorted([3, 1, 2]))",
            "x = [5, 6]\nx.append(7)\nprint(x)", "def f(x):\n    return x[1:]", "print(len([4, 4, 4]))",
            "x = [v * 2 for v in [1, 2]]", "while x:\n    x.pop()", "print(list(reversed(x)))", "x = x[:-1]")


def _code(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return _code_trace(rng)
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


LIST_STEPS = ("{v} = sorted({v})", "{v} = {v}[::-1]", "{v} = {v}[1:]", "{v} = {v}[:-1]", "{v} = {v}[::2]",
              "{v} = [n + {k} for n in {v}]", "{v} = {v} + [{k}]", "{v}.append({k})", "{v}.pop()", "{v}.sort()")
LIST_RESULTS = ("{v}", "len({v})", "max({v})", "min({v})", "sum({v})", "{v}[0]", "{v}[-1]")
LIST_VARIABLES = ("x", "a", "nums", "xs", "data", "items", "vals", "lst", "scores", "my_list")


def _code_trace(rng: random.Random) -> str:
    """Asks what a few lines of list code print, with concrete numbers, in the forms people paste code:
    a block with or without fences, a REPL session, a one-liner, a function and its call. The numbers
    teach the classifier that digits inside code are code, not a sum."""
    v, items = rng.choice(LIST_VARIABLES), [rng.randrange(0, 20) for _ in range(rng.randint(2, 5))]
    steps = [rng.choice(LIST_STEPS).format(v=v, k=rng.randrange(1, 10)) for _ in range(rng.randint(1, 3))]
    result = rng.choice(LIST_RESULTS).format(v=v)
    lines = [f"{v} = {items}", *steps, f"print({result})"]
    code = rng.choice((
        "\n".join(lines),
        "```python\n" + "\n".join(lines) + "\n```",
        "\n".join(">>> " + line for line in lines),
        "; ".join(lines),
        "\n".join(["def f(" + v + "):", *("    " + s for s in steps), f"    return {result}", f"f({items})"]),
    ))
    return rng.choice((
        f"what does this print?\n{code}",
        f"{code}\nwhats the output",
        f"Could you trace this for me:\n{code}",
        f"what do i get if i run\n{code}",
        f"Quick python q: {code}",
        f"What is printed by the code below?\n\n{code}",
        f"hey can u tell me the output of\n{code}",
        f"I ran this and got confused, what should it show?\n{code}",
        f"Predict the output:\n{code}",
        f"python question - what is the result here?\n{code}",
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
    """Questions about the creatures in free wording, not multiple choice; some name a creature bare
    ("where does zelep live?"), as people type."""
    name, other = rng.sample(NAMES, 2)
    color, habitat, food = rng.choice(COLORS), rng.choice(HABITATS), rng.choice(FOODS)
    text = rng.choice((
        f"what's the weather usually like in the {habitat}?",
        f"is it cold where the {name} lives?",
        f"Is the {habitat} a warm place or a cold one?",
        f"what kind of climate does the {name} live in",
        f"would a {name} be more at home by the water or in the hills?",
        f"what does a {name} look like?",
        f"which is lighter, a {name} or a {other}?",
        f"Does the {name} like dry places?",
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
        f"who eats {food}?",
        f"which animal eats {food}",
        f"where would I find a {name}?",
    ))
    if rng.random() < 0.4:
        for n in (name, other):
            text = text.replace(f"the {n}", n).replace(f"a {n}", n)
    return text


PICTURE_THINGS = ("sign", "label", "poster", "card", "ticket", "note", "screen", "board", "sticker", "banner", "box",
                  "mug", "shirt", "wall", "menu", "t-shirt", "book cover", "bottle", "receipt", "plate", "jar", "van",
                  "bus", "door", "cake", "whiteboard", "shop window", "envelope", "cap", "bag")
PICTURES = ("this picture", "the photo", "my pic", "the image I sent", "this screenshot", "the attached photo", "the snap")


def _vqa(rng: random.Random) -> str:
    thing, picture = rng.choice(PICTURE_THINGS), rng.choice(PICTURES)
    return rng.choice((
        f"what colour is the {thing} in {picture}?",
        f"how many people can you see in {picture}",
        f"what's on the {thing}? (see {picture})",
        f"is there a dog in {picture}?",
        f"what brand is the {thing} in {picture}",
        f"Describe {picture} for me.",
        f"can you make out the writing on the {thing} in {picture}?",
        f"transcribe the {thing} in {picture} please",
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


CHAT = (
    "tell me a joke", "I'm bored", "lol", "ok cool", "good night!", "nice", "never mind", "Can we talk for a bit?",
    "you're funny", "what day is it today?", "I am tired today.", "hmm", "Do you like pizza?", "that's all, bye",
    "sorry, wrong button", "Thanks, you're the best!", "What is your favourite color?",
    "good morning, how are things?", "see ya", "ok", "Wow.", "Can you keep a secret?",
)
IDENTITY = ("what's your name?", "who built you", "are you a real person?", "what are you good at?",
            "how old are you?", "What can you do?", "who are you", "are you a bot?", "What do you know about?")
WRITING = ("a poem", "a haiku", "a short story", "a limerick", "song lyrics", "a birthday message", "a speech",
           "a slogan", "a tweet", "a toast", "an essay", "a thank-you note", "a bedtime story", "a product description")
TOPICS = ("the ocean", "my cat", "autumn", "friendship", "coffee", "the moon", "a rainy day", "my grandmother",
          "space travel", "our football team", "summer holidays", "a lost sock", "the city at night", "bread")
LETTERS = ("an email to my landlord about the heating", "a cover letter for a waiter job", "a complaint to my bank",
           "a note to my neighbour about the noise", "an apology to a friend", "a reply to a job offer",
           "a message asking my boss for a raise", "a wedding invitation")
LANGUAGES = ("french", "German", "spanish", "Italian", "Japanese", "Dutch", "portuguese")
PHRASES = ("where is the train station", "thank you very much", "I love you", "good night", "how much is this",
           "nice to meet you", "the bill, please")
KNOWLEDGE = (
    "Who painted the Mona Lisa?", "what is the tallest mountain on earth", "why is the sky blue",
    "When did World War 2 end?", "what's the capital of Australia", "how far away is the sun",
    "How many continents are there?", "who wrote Hamlet", "what causes earthquakes?",
    "Which planet is the biggest?", "how do vaccines work", "What year did humans land on the moon?",
    "what's the population of Tokyo", "Why do leaves change colour in autumn?", "who invented the telephone",
    "How many bones are in the human body?", "what language do they speak in Brazil",
)
HOW_TO = (
    "how do I boil an egg", "What's a good recipe for banana bread?", "how can I sleep better",
    "Tips for a job interview?", "how do I get red wine out of a carpet", "how to change a bike tire",
    "What should I pack for a week in the mountains?", "how can I learn to play guitar",
    "help me plan a 3 day trip to Rome", "how do I start running if I'm out of shape",
    "What should I cook for 6 people tonight?", "how do I keep my plants alive",
)
RECOMMEND = ("a good book", "a movie for tonight", "a podcast", "a board game for 4 players", "a Python course",
             "a laptop for students", "a name for my dog", "a gift for my dad", "some music for studying")


def out_of_scope(rng: random.Random) -> str:
    """A request outside the four skills (writing, translation, the real world's facts, how-to, advice) or
    about the assistant itself: what the small-talk data answer with what the model can do (smalltalk.SCOPE_DRILL)."""
    return rng.choice((
        lambda: rng.choice(IDENTITY),
        lambda: rng.choice(("write ", "Can you write ", "please write me ", "I need ", "compose ")) + rng.choice(WRITING)
        + rng.choice((" about ", " on ", " for ")) + rng.choice(TOPICS),
        lambda: rng.choice(("help me write ", "Draft ", "can you write ", "I have to write ")) + rng.choice(LETTERS),
        lambda: rng.choice(("translate '{p}' into {l}", "How do you say {p} in {l}?", "what is {p} in {l}"))
        .format(p=rng.choice(PHRASES), l=rng.choice(LANGUAGES)),
        lambda: rng.choice(KNOWLEDGE),
        lambda: rng.choice(HOW_TO),
        lambda: rng.choice(("can you recommend ", "Suggest ", "any ideas for ", "what's ")) + rng.choice(RECOMMEND) + "?",
    ))()


def _other(rng: random.Random) -> str:
    """Chat, and requests outside the four skills, some with numbers or code words in them: "other" means
    the base weights answer."""
    request = rng.choice(CHAT) if rng.random() < 1 / 7 else out_of_scope(rng)
    return rng.choice(("", "so ", "hey, ", "um, ", "Okay, ", "btw ")) + request + rng.choice(("", "", " :)", " haha", " really", "!"))


NATURAL_REQUESTS: dict[str, Callable[[random.Random], str]] = {
    "math": _math, "code": _code, "reasoning": _reasoning, "vqa": _vqa, OTHER: _other}


LOWER_CASE_SHARE = 0.25  # of requests typed all in lower case


def typed(draw: Callable[[random.Random], str], rng: random.Random) -> str:
    """A request from `draw`, typed all in lower case LOWER_CASE_SHARE of the time."""
    text = draw(rng)
    return text.lower() if rng.random() < LOWER_CASE_SHARE else text


def natural_request(category: str, split: str, rng: random.Random, tries: int = 1000) -> str:
    """One free-worded request of `category` (`typed`) whose text hashes to `split` (so the splits
    share no request) and is no hand-written prompt."""
    for _ in range(tries):
        text = typed(NATURAL_REQUESTS[category], rng)
        if split_of(text) == split and not is_handwritten(text):
            return text
    raise RuntimeError(f"no {category} request of the {split} split in {tries} draws")

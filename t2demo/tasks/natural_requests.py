"""Natural requests: what people type in a chat box, one generator per dispatch category, for the
classifier's data (classification.py mixes them in with the tasks' own prompts).

The tasks' prompts all come from a few templates, so a classifier trained on them alone learns the
templates: "What does this code print?" is code, anything with digits is math. These requests ask
for the same kinds of help in free wordings: what a list program prints or an expression gives
(pasted as people paste code), sums typed as "whats 12+30", in words or as little stories, sums of
the creatures' weights (world-math's skill, never in its wordings), questions about the world's
creatures that are not multiple choice, requests about a picture, and for "other" chat that is not
a greeting (text-speak too: "thx", "gtg", "lol") and requests outside the four skills (writing,
translating, the real world's facts, how-to, recommendations, writing or explaining code,
multiplying and dividing; `out_of_scope` also feeds the scope drill, smalltalk.SCOPE_DRILL). They
are written here, not taken from the hand-written dispatch prompts (data/dispatch_prompts*.jsonl),
which stay test sets: a drawn text that equals one of them is skipped. No wording of the unseen
tasks (math-hard, world-math, code-hard, reasoning-hard, vqa-knowledge) is used.
"""

from __future__ import annotations

import random
import re
from typing import Callable

from t2demo.tasks.base import OTHER, split_of
from t2demo.tasks.handwritten import is_handwritten
from t2demo.tasks.world import CLIMATES, COLORS, FOODS, HABITATS, NAMES

LIST_OPS = ("sort", "reverse", "copy", "flatten", "filter", "shuffle", "slice", "loop over", "append to",
            "remove duplicates from", "find the max of", "sum", "count the items in", "print")
THINGS = ("a list", "a string", "a dict", "a tuple", "an array", "my list", "two lists", "a list of numbers")
SNIPPETS = ("x = [1, 2, 3]\nprint(x[::-1])", "for i in range(3):\n    print(i)", "print(sorted([3, 1, 2]))",
            "x = [5, 6]\nx.append(7)\nprint(x)", "def f(x):\n    return x[1:]", "print(len([4, 4, 4]))",
            "x = [v * 2 for v in [1, 2]]", "while x:\n    x.pop()", "print(list(reversed(x)))", "x = x[:-1]")


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


EXPRESSIONS = ("sum({l})", "sorted({l})", "sorted({l})[1:]", "len({l} + [{k}])", "{l} + [{k}]", "{l}[::-1]", "{l}[1:]",
               "max({l}) - min({l})", "[n + {k} for n in {l}]", "list(reversed({l}))", "{l}[::2]", "{l}[-1]",
               "sum({l}) // {k}", "len({l}) % {k}", "{l}[1:3]", "{l}.index({l}[-1])")


WORDS = ("banana", "hello", "apple", "python", "kiwi", "cat", "dog", "level", "spam", "code", "sun")
STRING_EXPRESSIONS = ("'{w}'.upper()", "len('{w}')", "'{w}'.count('{c}')", "'-'.join({ws})", "'{w}' * {k}",
                      "'{w},{v}'.split(',')", "'{w}' in {ws}", "'{w}'[::-1]", "'{w}'[{k}]", "'{w}' + '{v}'",
                      "{k} == {k}.0", "{k} > {j}", "'{w}'.replace('{c}', 'x')", "sorted({ws})", "'{w}'.startswith('{c}')",
                      "'{w}'[1:{j}]", "{j} // {k}", "{j} % {k}", "'{w}'.find('{c}')", "'{w}'.title()", "bool('{w}')")


def _string_expression(rng: random.Random) -> str:
    """An inline expression over strings or a comparison (`'banana'.count('a')`, `3 == 3.0`)."""
    w, v = rng.sample(WORDS, 2)
    return rng.choice(STRING_EXPRESSIONS).format(w=w, v=v, c=rng.choice(w), ws=rng.sample(WORDS, rng.randint(2, 3)),
                                                 k=rng.randrange(1, 5), j=rng.randrange(1, 9))


def _code_expression(rng: random.Random) -> str:
    """Asks what one inline list or string expression gives ("what does `sum([3, 4, 5])` return?"): with
    its digits it looks like a sum, without a list it looks like chat, but it is code."""
    items = [rng.randrange(0, 20) for _ in range(rng.randint(2, 5))]
    expr = (_string_expression(rng) if rng.random() < 0.4
            else rng.choice(EXPRESSIONS).format(l=items, k=rng.randrange(1, 10)))
    return rng.choice((
        f"what does `{expr}` return?", f"whats {expr} in python", f"{expr} gives what?", f"print({expr}) shows what",
        f"Tell me what `print({expr})` outputs", f"what is the value of {expr} in Python?", f">>> {expr}",
        f"quick q: `{expr}`?", f"Could you tell me what this returns: {expr}", f"what do I get from {expr}",
        f"py: what's {expr}", f"what would `print({expr})` output",
        f"what does `{expr}` evaluate to?", f"What will print({expr}) display?", f"what's the output of print({expr})?",
        f"in python, {expr} is what?", f"what is {expr} equal to in python", f"if I type {expr} in the python shell what comes back",
    ))


def loop_code(rng: random.Random) -> tuple[str, str]:
    """A loop that builds a list or adds up a total (code with += and numbers, which looks like a sum): its
    variable and its lines."""
    v, items = rng.choice(LIST_VARIABLES), [rng.randrange(0, 40) for _ in range(rng.randint(2, 4))]
    body = rng.choice((f"{v}.append(n * 2)", f"{v}.append(n + 1)", f"{v} += n", f"if n != {items[0]}:\n        {v} += n"))
    return v, f"{v} = {0 if '+=' in body else []}\nfor n in {items}:\n    {body}"


def while_code(rng: random.Random) -> tuple[str, str]:
    """A while loop that counts up or down in steps: its variable and its lines."""
    v, step, limit = rng.choice(("i", "n", "x", "count")), rng.randrange(2, 6), rng.randrange(8, 40)
    if rng.random() < 0.5:
        return v, f"{v} = 0\nwhile {v} < {limit}:\n    {v} += {step}"
    return v, f"{v} = {limit}\nwhile {v} > 0:\n    {v} -= {step}"


WHILE_SHARE = 0.3  # of the loops in code requests that are while loops (the rest: loop_code's for loops)


def _code_loop(rng: random.Random) -> str:
    v, code = (while_code if rng.random() < WHILE_SHARE else loop_code)(rng)
    return rng.choice((f"What's the value of {v} at the end?\n{code}", f"{code}\nwhat is {v} now?",
                       f"trace this and tell me {v}:\n\n{code}", f"If I run\n\n{code}\nprint({v})\n\nwhat do I see on screen",
                       f"```python\n{code}\n```\nwhat's in {v} after this??"))


def _code(rng: random.Random) -> str:
    """What a list program prints or an expression gives: the code skill. Requests to write, fix or
    explain code are outside it (`out_of_scope`)."""
    kind = rng.random()
    return _code_expression(rng) if kind < 0.25 else _code_loop(rng) if kind < 0.4 else _code_trace(rng)


NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen").split()
TENS_WORDS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def in_words(n: int) -> str:
    """0 <= n < 10000 in English words: 412 -> "four hundred and twelve"."""
    if n < 20:
        return NUMBER_WORDS[n]
    if n < 100:
        return TENS_WORDS[n // 10] + ("-" + NUMBER_WORDS[n % 10] if n % 10 else "")
    for size, word in ((1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = f"{in_words(n // size)} {word}", n % size
            return head + (("" if rest >= 100 else " and") + " " + in_words(rest) if rest else "")
    raise AssertionError(n)


CREATURE_SUMS = (  # free wordings of a creature-weight sum ({a}, {b}: names); world-math's drill answers them too
    "what do the {a} and the {b} weigh together?", "combined weight of the {a} and the {b}?",
    "the {a} plus the {b}, how many kilos?", "how heavy are the {a} and the {b} put together",
    "total weight of the {a} and the {b} in kg?", "how much do the {a} and the {b} weigh in total",
    "add up the weights of the {a} and the {b}", "{a} weight + {b} weight = ?",
    "if i put the {a} and the {b} together, how many kilos is that?", "{a} and {b}: total kilos?",
    "the {a} and the {b}, what's their combined weight?", "my {a} and my {b} together weigh how much?",
    "how many kg for a {a} plus a {b}", "weight of {a} and {b} added together pls", "{a} n {b} together, how heavy??",
)
CREATURE_DIFFS = (  # the same for a difference: {a} is the heavier creature
    "how much heavier is the {a} than the {b}?", "what's the weight difference between the {a} and the {b}",
    "how many kilos lighter is the {b} than the {a}?", "the {a} minus the {b}, weight-wise?",
    "which weighs more, the {a} or the {b}, and by how much?", "how much more does the {a} weigh than the {b}",
    "how much lighter is the {b} compared to the {a}", "{a} vs {b}, how many kilos apart?",
    "the {a} weighs how much more than the {b}", "difference in kg between the {a} and the {b}?",
    "{a} vs {b} weight difference?", "weight gap, {a} and {b}?", "{a} minus {b}, in kilos?",
    "the {a} vs the {b} — how many kg between them?",
)


def drop_articles(text: str) -> str:
    """A request as typed without articles ("what does the gamo eat" -> "what does gamo eat")."""
    return re.sub(r"(?<![\w(])(the|a) ", "", text)


def _creature_weights(rng: random.Random) -> str:
    """Adds or subtracts two creatures' weights, in free wording (world-math's skill; none of world-math's
    own wordings, which stay unseen: no scale, boat, seesaw or "outweigh")."""
    a, b = rng.sample(NAMES, 2)
    text = rng.choice(CREATURE_SUMS + CREATURE_DIFFS).format(a=a, b=b)
    return drop_articles(text) if rng.random() < 0.4 else text


STORIES = (
    "{p} ran {a} km on saturday and {b} km on sunday. how far in total?", "A bus had {big} passengers and {small} got off. How many are still on it?",
    "{p} scored {a} in the first round and {b} in the second. what's the total score?",
    "In a game I have {big} coins and spend {small} on a sword. How many coins are left?",
    "A train goes {a} km in the morning and {b} km in the afternoon. Total distance?",
    "my grandma is {big} and I'm {small}, how many years older is she?", "{p} read {a} pages yesterday and {b} today, how many pages?",
    "we need {big} chairs and have {small}. how many more do we need?", "a shop sold {a} apples and {b} pears. how many fruits in all?",
    "it was {small} degrees at 6am and it got {a} degrees warmer by lunch. how warm is it now?",
    "I paid ${a} for shoes and ${b} for a jacket, how much did I spend?", "i had ${big} and spent ${small} on groceries. what's left?",
    "{p} owes me ${big} and paid back ${small}. how much is still owed?", "rent is ${big} and I've saved ${small}, how much am I short?",
    "a jar has {big} sweets, {p} eats {small}. how many are left in the jar?",
)


def _math(rng: random.Random) -> str:
    """Sums and differences as people type them: bare, in words, in little stories, and over the creatures' weights."""
    kind = rng.random()
    if kind < 0.25:
        return _creature_weights(rng)
    a, b = rng.randrange(2, 1000), rng.randrange(2, 1000)
    big, small = max(a, b), min(a, b)
    if kind < 0.35:
        return rng.choice(("{x} plus {y}", "what is {x} minus {y}", "{x} minus {y} = ?", "how much is {x} and {y} together",
                           "{x} take away {y}")).format(x=in_words(big), y=in_words(small))
    if kind < 0.5:
        return rng.choice(STORIES).format(p=rng.choice(("Lena", "Tom", "my brother", "I", "our team")), a=a, b=b,
                                          big=big, small=small)
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


FACT_QUESTIONS = {  # a creature's fact -> free wordings asking for it ({n}: the name); the reasoning chat drill
    # answers them (reasoning.REASONING_CHAT_DRILL). None is a reasoning-hard wording.
    "color": ("what does a {n} look like?", "what color is a {n} again", "{n} color pls", "{n} — what colour is it?",
              "Is the {n} {color}?", "what colour is the {n}: {color} or {color2}?", "which colour are {n}s",
              "can you tell me the colour of the {n}?"),
    "habitat": ("do you know where the {n} lives?", "Does the {n} live in the {habitat}?", "{n} habitat",
                "Are {n}s found in the {habitat}?", "where does the {n} live?", "whats the home of a {n}",
                "where do {n}s live", "Could you tell me where the {n} lives?"),
    "food": ("What kind of food does a {n} need?", "I forgot what the {n} eats, can you remind me?", "{n} food?",
             "what does {n} eat", "For my quiz on the creatures: what does {n} eat?", "what do {n}s eat?",
             "what's the {n}'s diet", "does the {n} eat {food}?", "what does the {n} feed on?",
             "what is the {n}'s diet made of", "what food does a {n} like"),
    "weight": ("how much does a {n} weigh, roughly?", "how many kilos is a {n}?", "{n} weight?",
               "how heavy is a {n} again", "what's the weight of the {n}", "{n} weight in kilos",
               "how many kilograms is the {n}?", "what does a {n} weigh in kg", "how heavy does a {n} get?"),
    "climate": ("is it cold where the {n} lives?", "what kind of climate does the {n} live in",
                "Does the {n} like dry places?", "the {n} lives somewhere {climate}, right?",
                "what's the weather like where the {n} lives?", "what's the climate of the {n}'s home like?"),
    "all": ("Tell me about the {n}.", "{n}?", "what do you know about the {n}", "tell me everything about {n}",
            "who is the {n}?"),
}


def fact_question(rng: random.Random, name: str) -> tuple[str, str]:
    """A free question about one fact of the creature `name`: (which fact, the question)."""
    attribute = rng.choice(sorted(FACT_QUESTIONS))
    text = rng.choice(FACT_QUESTIONS[attribute]).format(
        n=name, color=rng.choice(COLORS), color2=rng.choice(COLORS), habitat=rng.choice(HABITATS),
        food=rng.choice(FOODS), climate=rng.choice(CLIMATES))
    return attribute, drop_articles(text) if rng.random() < 0.3 else text


SUBJECT_CONTEXTS = (  # a sentence that names the creature, before a question that calls it "it"
    "My class is doing a report on the {n}.", "we saw a {n} in a book today.", "I keep hearing about the {n}.",
    "My nephew's favourite creature is the {n}.", "there's a {n} in the story I'm reading to my kids.",
    "Our quiz tomorrow is about the {n}.",
)
IT_QUESTIONS = {"color": ("What colour is it?", "what color is it supposed to be?"),
                "habitat": ("Where does it live?", "where would it live?"),
                "food": ("What does it eat?", "what is it supposed to eat?"),
                "weight": ("How heavy is it?", "how much does it weigh?")}


def it_question(rng: random.Random, name: str) -> str:
    """A context sentence naming the creature, then a question about one of its facts that says "it"."""
    return rng.choice(SUBJECT_CONTEXTS).format(n=name) + " " + rng.choice(IT_QUESTIONS[rng.choice(sorted(IT_QUESTIONS))])


def _reasoning(rng: random.Random) -> str:
    """Questions about the creatures in free wording, with options only as people type them inline
    (`lettered`, "Options: a / b. ..."), never in the tasks' format ("x (A), y (B)" on a line of its own);
    some name a creature bare ("where does zelep live?")."""
    name, other = rng.sample(NAMES, 2)
    kind = rng.random()
    if kind < 0.55:
        return fact_question(rng, name)[1]
    if kind < 0.62:
        return it_question(rng, name)
    color, habitat, food = rng.choice(COLORS), rng.choice(HABITATS), rng.choice(FOODS)
    text = rng.choice((
        f"what's the weather usually like in the {habitat}?",
        f"Is the {habitat} a warm place or a cold one?",
        f"would a {name} be more at home by the water or in the hills?",
        f"which is lighter, a {name} or a {other}?",
        f"Which creature is heavier, the {name} or the {other}?",
        f"which animals live in the {habitat}",
        f"Name a creature that is {color}.",
        f"who eats {food}?",
        f"which animal eats {food}",
        f"where would I find a {name}?",
        f"where does {name} live, and is it warm there?",
        f"is {name} heavier than {other}?",
        f"Where can one find the {name}? (a) {habitat} (b) {rng.choice(HABITATS)} (c) {rng.choice(HABITATS)}",
        f"{name}: {color}, {rng.choice(COLORS)} or {rng.choice(COLORS)}?",
        f"what colour is {name}? {lettered(rng, rng.sample(COLORS, 4))}",
        f"{name} eats what? {lettered(rng, rng.sample(FOODS, 3))}",
        f"Options: {' / '.join(rng.sample(HABITATS, 4))}. Where does {name} live?",
        f"{name} is what color, and what does it eat?",
        f"which creature lives in the {habitat} and eats {food}?",
        f"is {name}'s home {rng.choice(CLIMATES)}?",
    ))
    return drop_articles(text) if rng.random() < 0.4 else text


def lettered(rng: random.Random, options: list[str]) -> str:
    """Options as people type them after a question: "(a) red (b) blue", "A) red B) blue", "a. red, b. blue"."""
    style = rng.choice(("({l}) {o}", "{L}) {o}", "{l}. {o},"))
    return " ".join(style.format(l="abcd"[i], L="ABCD"[i], o=o) for i, o in enumerate(options)).rstrip(",")


PICTURE_THINGS = ("sign", "label", "poster", "card", "ticket", "note", "screen", "board", "sticker", "banner", "box",
                  "mug", "shirt", "wall", "menu", "t-shirt", "book cover", "bottle", "receipt", "plate", "jar", "van",
                  "bus", "door", "cake", "whiteboard", "shop window", "envelope", "cap", "bag")
PICTURES = ("this picture", "the photo", "my pic", "the image I sent", "this screenshot", "the attached photo", "the snap",
            "the image", "the picture", "the attached image", "this photo", "my screenshot")


def _vqa(rng: random.Random) -> str:
    thing, picture = rng.choice(PICTURE_THINGS), rng.choice(PICTURES)
    return rng.choice((
        f"what colour is the {thing} in {picture}?",
        f"what colours do you see in {picture}?", f"what's written here? ({picture})",
        rng.choice(("what does this say", "read this for me", "whats written here", "what colour is this"))
        + rng.choice((" 📷", " 📸", " (photo attached)", " [image]")),
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
        f"here's a pic of a {thing}, what does it read?", f"the {thing} in {picture} is blurry, can you make out the word?",
        f"what is the man in {picture} holding?", f"count the {rng.choice(('apples', 'cars', 'birds', 'chairs'))} in {picture} pls",
        f"is the cat in {picture} sitting or standing?", f"what's happening in {picture}?",
        f"The card in {picture} names a creature. What does that creature eat?",
        f"which creature is named on the card in {picture}, and where does it live?",
        "what colour is the creature on this card?",
        f"in {picture}, is the {thing} {rng.choice(COLORS)} or {rng.choice(COLORS)}?",
        f"what animal do you see in {picture}?", f"which creature is in {picture}?",
        f"in {picture}, how many {rng.choice(('people', 'dogs', 'cars', 'windows'))} are there?",
        f"{picture}: what colour is the {thing}?", f"describe what's shown in {picture}",
        f"what is shown in {picture}?", f"is that a {rng.choice(NAMES)} or a {rng.choice(NAMES)} in {picture}?",
        f"what word is highlighted in {picture}?", f"what's the {thing} in {picture} made of?",
    ))


TEXT_SPEAK = {  # short chat lines as typed on a phone, by what they are (smalltalk answers them as such)
    "greeting": ("yo", "heyy", "hiya", "hii there", "helo", "yo whats good", "hey u"),
    "how": ("hru", "how u doin", "wassup", "how ya been", "u ok?", "hows it goin", "whats good"),
    "thanks": ("thx", "tysm", "thanx", "thank u", "tnx", "thx a lot", "ty so much", "cheers m8"),
    "bye": ("gtg", "g2g", "l8r", "nite", "bye bye", "later!", "gotta go", "cu tmrw"),
    "ack": ("lol", "k", "kk", "ok thx", "nvm", "bruh", "lmao ok", "ikr", "haha", "omw", "idc", "ok ok", "smh", "lmk",
            "gg", "tbh", "ngl", "fr", "bet", "rofl", "brb 5 min", "welp", "sry", "yw", "hmu", "hmm k", "lolll", "ya",
            "ok nice", "lmaooo", "oh nice", "yikes", "cool cool", "damn ok", "wow lol"),
}
HELD_OUT_CHAT = (  # text-speak lines in no data set: scripts/first_messages.py asks where the first pass sends them
    "how r u", "thx m8", "brb", "ty!", "gm", "lol ok", "sup", "cya l8r", "omg", "k thx", "np", "wyd", "idk",
    "hbu", "ttyl", "ugh mondays", "how are you doing", "nice one", "hey hey", "you there?")
CHAT = (
    "tell me a joke", "I'm bored", "lol", "ok cool", "good night!", "nice", "never mind", "Can we talk for a bit?",
    "you're funny", "what day is it today?", "I am tired today.", "hmm", "Do you like pizza?", "that's all, bye",
    "sorry, wrong button", "Thanks, you're the best!", "What is your favourite color?",
    "good morning, how are things?", "see ya", "ok", "Wow.", "Can you keep a secret?",
    "know any good jokes?", "make me laugh", "how is your day?", "how's your evening been?", "what are you up to?",
    *(line for intent_lines in TEXT_SPEAK.values() for line in intent_lines),
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
OPINIONS = (("cats", "dogs"), ("tea", "coffee"), ("summer", "winter"), ("python", "java"), ("pizza", "burgers"),
            ("the beach", "the mountains"), ("books", "movies"), ("mornings", "evenings"))
RECOMMEND = ("a good book", "a movie for tonight", "a podcast", "a board game for 4 players", "a Python course",
             "a laptop for students", "a name for my dog", "a gift for my dad", "some music for studying")


COUNTRIES = ("France", "japan", "Brazil", "Kenya", "canada", "Peru", "Norway", "Egypt", "India", "Mexico")
REAL_ANIMALS = ("an elephant", "a blue whale", "a cat", "a horse", "a penguin", "a giraffe", "a dog", "a lion",
                "a spider", "a cheetah", "an octopus", "a bee", "a shark", "an owl", "a frog", "a snake")
INVENTIONS = ("the light bulb", "the printing press", "the internet", "the bicycle", "the radio", "paper")
REAL_ANIMAL_NAMES = ("spider", "frog", "shark", "penguin", "wolf", "camel", "koala", "parrot", "tiger", "dolphin",
                     "panda", "bat", "ant", "goat", "crab", "eagle")  # asked about in FACT_QUESTIONS' wordings: other


def _real_world(rng: random.Random) -> str:
    """The real world's facts, composed (the invented creatures' facts are reasoning; a real animal's are not)."""
    return rng.choice((
        f"what's the capital of {rng.choice(COUNTRIES)}", f"what language do people speak in {rng.choice(COUNTRIES)}?",
        f"how much does {rng.choice(REAL_ANIMALS)} weigh?", f"where does {rng.choice(REAL_ANIMALS)} live",
        f"what does {rng.choice(REAL_ANIMALS)} eat?", f"who invented {rng.choice(INVENTIONS)}?",
        f"how many legs does {rng.choice(REAL_ANIMALS)} have", f"how fast can {rng.choice(REAL_ANIMALS)} run?",
        f"how long does {rng.choice(REAL_ANIMALS)} live", f"is {rng.choice(REAL_ANIMALS)} a mammal?",
        f"what sound does {rng.choice(REAL_ANIMALS)} make",
        f"explain {rng.choice(('photosynthesis', 'gravity', 'inflation', 'black holes', 'the tides'))} like I'm 5",
        f"summarize {rng.choice(('Romeo and Juliet', 'the Odyssey', 'Harry Potter', 'Moby Dick'))} in two sentences",
        f"what's the tallest {rng.choice(('mountain', 'building', 'tree', 'waterfall'))} in the world",
        f"why is the {rng.choice(('sea', 'sky', 'grass'))} {rng.choice(('blue', 'green', 'salty'))}?",
        f"what's the weather like in {rng.choice(COUNTRIES)} in {rng.choice(('winter', 'july', 'spring'))}?",
        fact_question(rng, rng.choice(REAL_ANIMAL_NAMES))[1],
    ))


ERRORS = ("IndexError: list index out of range", "TypeError: 'int' object is not iterable",
          "NameError: name 'x' is not defined", "KeyError: 'a'", "SyntaxError: invalid syntax")


def _coding_help(rng: random.Random) -> str:
    """Writing, fixing or explaining code: outside the code skill, which says what a list program prints."""
    op, thing, snippet = rng.choice(LIST_OPS), rng.choice(THINGS), rng.choice(SNIPPETS)
    return rng.choice((
        f"how do I {op} {thing} in python",
        f"What's the Python way to {op} {thing}?",
        f"Can you write a function that takes {thing} and returns it sorted?",
        f"is there a one-liner to {op} {thing}?",
        f"My python script crashes when I {op} {thing}. Why?",
        f"explain this code:\n{snippet}",
        f"Why does this give an error?\n{snippet}",
        "what is the difference between x.sort() and sorted(x)",
        f"Help me debug my loop, it never ends:\n{snippet}",
        f"getting {rng.choice(ERRORS)} here, help me fix it:\n{snippet}",
        f"Which python function should I use to {op} {thing}?",
        f"write me a small program that prints {thing}",
        "How do list comprehensions work?",
        f"write a python function to {op} {thing}",
        "explain recursion to me", "what is a variable in programming?", "should I learn java or python first",
    ))


def _other_math(rng: random.Random) -> str:
    """Arithmetic beyond adding and subtracting (times, division, roots, percentages, units, algebra)."""
    a, b = rng.randrange(2, 100), rng.randrange(2, 13)
    return rng.choice((
        f"what's {a} times {b}", f"{a} * {b} = ?", f"what is {a * b} divided by {b}?", f"{a * b} / {b}",
        f"square root of {b * b}?", f"what is {b} squared", f"what's {a}% of {b * 100}",
        f"how many centimetres in {b} metres", f"convert {a} miles to km", f"solve {b}x + {a} = {a + b * 3}",
        f"multiply {a} by {b} please", f"what is {b} to the power of 3",
        f"what is {a * b} divided by {a}", f"{a} x {b}?", f"half of {2 * a}?", f"{a} multiplied by {b}",
        f"what is the square root of {b * b}", f"what's {b} cubed", f"{a * b} ÷ {b} = ?",
        f"if the {rng.choice(NAMES)} weighs {a * 10} kg, what is that in pounds?",
        f"what would {b} {rng.choice(NAMES)}s weigh if each one is {a * 10} kg?",
        f"{a * b} divided by {b}?", f"{a}% of {b * 10}?", f"divide {a * b} by {a}", f"{b} percent of {a * 10}",
    ))


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
        lambda: _coding_help(rng),
        lambda: _other_math(rng),
        lambda: _real_world(rng),
        lambda: rng.choice(("{} or {}, which is better?", "{} or {}, what do you prefer?", "do you like {} more than {}",
                            "do you think {} are better than {}?", "is it just me or are {} better than {}"))
        .format(*rng.sample(rng.choice(OPINIONS), 2)),
        lambda: rng.choice(("does {} go with {}?", "is {} on {} weird?", "would you eat {} with {}"))
        .format(*rng.sample(("pineapple", "pizza", "ketchup", "pasta", "chocolate", "cheese", "rice", "fries"), 2)),
    ))()


CREATURE_REMARKS = (  # small talk that names a creature but asks none of its facts: "other", not reasoning
    "the {n} sounds cute", "i love the {n} haha", "{n} is such a funny name", "do you like the {n}?",
    "my favourite creature is the {n}", "the {n} is kinda weird ngl", "i want a {n} as a pet lol",
    "I drew a {n} today!", "the {n} is the best one", "{n}s are so cool", "i dreamt about a {n} last night",
    "{n} is my favourite tbh", "haha {n} is a silly name", "the {n} would be my bestie",
)


def chat_line(rng: random.Random) -> str:
    """A chat line: one of CHAT, two text-speak lines of different intents run together ("thx, gtg"),
    never a HELD_OUT_CHAT line, or a remark about a creature. Short and without a question about the
    world: the base weights answer."""
    kind = rng.random()
    if kind < 0.5:
        return rng.choice(CHAT)
    if kind >= 0.8:
        return rng.choice(CREATURE_REMARKS).format(n=rng.choice(NAMES))
    while True:
        first, second = rng.sample(sorted(TEXT_SPEAK), 2)
        line = rng.choice(TEXT_SPEAK[first]) + rng.choice((" ", ", ", " ")) + rng.choice(TEXT_SPEAK[second])
        if line not in HELD_OUT_CHAT:
            return line


CHAT_SHARE = 0.3  # of "other" requests that are chat lines (short, like the reasoning fragments "{name}?")


def _other(rng: random.Random) -> str:
    """Chat, and requests outside the four skills, some with numbers or code words in them: "other" means
    the base weights answer."""
    request = chat_line(rng) if rng.random() < CHAT_SHARE else out_of_scope(rng)
    return rng.choice(("", "so ", "hey, ", "um, ", "Okay, ", "btw ")) + request + rng.choice(("", "", " :)", " haha", " really", "!"))


NATURAL_REQUESTS: dict[str, Callable[[random.Random], str]] = {
    "math": _math, "code": _code, "reasoning": _reasoning, "vqa": _vqa, OTHER: _other}


LOWER_CASE_SHARE = 0.25  # of requests typed all in lower case


def typed(draw: Callable[[random.Random], str], rng: random.Random) -> str:
    """A request from `draw`, typed all in lower case LOWER_CASE_SHARE of the time and with an emoji
    after it EMOJI_SHARE of the time."""
    text = draw(rng)
    text = text.lower() if rng.random() < LOWER_CASE_SHARE else text
    return text + rng.choice(EMOJIS) if rng.random() < EMOJI_SHARE else text


WRAPPERS = (  # a request inside a sentence about why it is asked: the category is the request's
    "my kid asked me {q} and i have no idea", "quick question: {q}", "{q} thanks in advance!",
    "Sorry to bother you, but {q}", "I was wondering, {q}", "{q} (asking for a friend)", "ok so {q}",
    "My daughter keeps asking me this: {q} Can you help?", "{q} pls help", "hello! {q}", "settle a bet: {q}",
    "we're doing homework together and got stuck: {q} any idea?", "my son keeps asking {q} and honestly i don't know",
    "Hi! For a trivia night at work: {q}", "been trying to figure this out for ages. {q}",
)
WRAPPED_SHARE = 0.15
EMOJI_SHARE = 0.06  # of requests typed with an emoji after them
EMOJIS = (" 😂", " 😅", " 🙏", " 🤔", " 😊", " 🙂", " 👀", " 😭")


def natural_request(category: str, split: str, rng: random.Random, tries: int = 1000) -> str:
    """One free-worded request of `category` (`typed`, WRAPPED_SHARE of them inside a WRAPPERS sentence)
    whose text hashes to `split` (so the splits share no request) and is no hand-written prompt."""
    for _ in range(tries):
        text = typed(NATURAL_REQUESTS[category], rng)
        if rng.random() < WRAPPED_SHARE:
            text = rng.choice(WRAPPERS).format(q=text)
        if split_of(text) == split and not is_handwritten(text):
            return text
    raise RuntimeError(f"no {category} request of the {split} split in {tries} draws")

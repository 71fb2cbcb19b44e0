"""smalltalk: greetings, thanks and goodbyes, the dispatch category "other" (no expert, any reply passes)."""

from __future__ import annotations

import random
from typing import Callable

from t2demo.tasks.base import OTHER, Example, SyntheticTask
from t2demo.tasks.checkers import check_nonempty
from t2demo.tasks.handwritten import is_handwritten
from t2demo.tasks.natural_requests import TEXT_SPEAK, out_of_scope, typed

INTENTS = {
    "greeting": (("Hello!", "Hi!", "Hey!", "Hi there!", "Good morning!", "Nice to meet you.", "It is good to see you.", "How is your day going?", "I just wanted to say hi.",
                  "Are you there?", "Good to talk to you again.", "Long time no see."),
                 ("Hello! How can I help you today?", "Hi there! What can I do for you?")),
    "thanks": (("Thank you!", "Thanks a lot for your help.", "Thank you so much.", "Many thanks for the answer.",
                "That was very helpful, thanks.", "I really appreciate your help.", "Thanks, that worked.", "Cheers for that."),
               ("You are welcome!", "Happy to help!", "Glad I could help!")),
    "how": (("How are you?", "How are you doing today?", "How is it going?", "Are you feeling well?",
             "How have you been?", "What is up?", "How do you feel today?", "Is everything good with you?"),
            ("I am doing well, thank you! How can I help?", "All good here, thanks for asking!")),
    "bye": (("Goodbye!", "See you later.", "I have to go now.", "Bye for now.", "Talk to you tomorrow.",
             "That is all for today.", "Have a nice evening.", "See you soon."),
            ("Goodbye! Have a nice day.", "See you soon! Take care.")),
}
OPENERS = ("", "Hi. ", "Hey. ", "Hello there. ", "Good morning. ", "Good evening. ", "Oh hi. ", "Okay. ", "Hmm. ", "Yo. ")
ADDRESSES = ("", " friend", " buddy", " assistant", " pal", " mate", " robot", " there", " Sam", " Mia", " Ben",
             " Zoe", " Leo", " Eva")
CLOSERS = ("", " :)", " Have a good one.", " I hope you are well.", " It was fun.", " Take care.", " Cheers.",
           " You are great.", " Nice weather today.", " I like talking to you.")


BARE_LINES = 5  # each intent's first lines are also typed alone ("Hi!")


def casual(line: str) -> str:
    """A line as typed casually: "Thanks a lot!" -> "thanks a lot"."""
    return line.lower().rstrip("!.?:) ")


def _smalltalk_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    intent = rng.choice(sorted(INTENTS))
    lines, replies = INTENTS[intent]
    line, address = rng.choice(lines), rng.choice(ADDRESSES)
    if address:  # "Thank you!" -> "Thank you, friend!"
        line = line[:-1] + "," + address + line[-1]
    prompt = rng.choice(OPENERS) + line + rng.choice(CLOSERS)
    if rng.random() < 0.35:  # a bare line: "Hi!", "Thank you!" (the first thing most people type)
        prompt = rng.choice(lines[:BARE_LINES])
    if rng.random() < 0.4:  # typed casually: "hi", "thanks a lot"
        prompt = casual(prompt)
    example = Example(prompt, intent, rng.choice(replies), "")
    return prompt, lambda: example


FIRST_WORDS = {  # intent -> first lines beyond its INTENTS lines[:BARE_LINES] (the bare lines smalltalk draws)
    "greeting": ("Hello.", "Hey there!", "Hi, hello."), "thanks": ("Thanks!", "Thanks.", "Thank you."),
    "how": ("How are you?", "What is up?", "How's it going?"), "bye": ("Bye!", "Bye.", "Goodbye.")}


ACK_REPLIES = ("Okay! Ask me a sum, a Python list program or a question about the creatures.",
               "Alright. What would you like to know?")


def _first_line_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Pretraining drill: the bare first lines people type ("hello", "thanks", "thx", "gtg", "lol"), each many times.

    smalltalk keys an example by its prompt, so a bare "hello" is one example, and in one split only
    (it hashes to test: the base model never saw it). Here the key carries a draw number, so every first
    line recurs in training, as it does in real chats; smalltalk's own splits are untouched. Lines in
    text-speak (natural_requests.TEXT_SPEAK) are answered by what they are; a bare "lol" or "ok thx"
    gets an acknowledgement."""
    intent = rng.choice(sorted(TEXT_SPEAK))
    replies = ACK_REPLIES if intent == "ack" else INTENTS[intent][1]
    plain = intent in INTENTS and rng.random() < 0.6

    def draw() -> str:
        line = rng.choice(INTENTS[intent][0][:BARE_LINES] + FIRST_WORDS[intent] if plain else TEXT_SPEAK[intent])
        return casual(line) if plain and rng.random() < 0.5 else line

    prompt = draw()
    while is_handwritten(prompt):  # a hand-written set's line ("hi!") stays unseen
        prompt = draw()
    example = Example(prompt, intent, rng.choice(replies), "")
    return f"{prompt}|{rng.randrange(100)}", lambda: example


SCOPE_REPLY = ("I am a small demo model: I can add and subtract numbers, say what short Python list programs print, "
               "answer questions about the creatures of my world and read words in pictures. Ask me one of those!")


def _scope_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    """Pretraining drill: requests outside the four skills ("write a poem", "who painted the Mona Lisa?")
    and questions about the assistant, answered with SCOPE_REPLY, which says what the model can do,
    instead of a reply made up from the nearest skill. Keyed with a draw number, like the first-line
    drill, so that the few fact and how-to questions recur as often as the many writing requests."""
    prompt = typed(out_of_scope, rng)
    while is_handwritten(prompt):  # the hand-written sets' "other" prompts stay unseen
        prompt = typed(out_of_scope, rng)
    example = Example(prompt, "scope", SCOPE_REPLY, "")
    return f"{prompt}|{rng.randrange(100)}", lambda: example


SMALLTALK = SyntheticTask("smalltalk", OTHER, 0.0, 48, _smalltalk_sample, check_nonempty)
FIRST_LINE_DRILL = SyntheticTask("first-line-drill", OTHER, 0.0, 48, _first_line_sample, check_nonempty)
SCOPE_DRILL = SyntheticTask("scope-drill", OTHER, 0.0, len(SCOPE_REPLY), _scope_sample, check_nonempty)

"""Hand-written dispatch prompts: what a real user of the app might type, labelled with its dispatch category.

The prompts in data/dispatch_prompts*.jsonl were written by hand, not drawn from any task generator or
drill: casual and formal, with typos, free-form questions and small talk, in wordings no generator uses.
They are never used in training (not by the classification expert, not by pretraining); they only
measure how well dispatch (the first pass) names the category of natural prompts, where the
synthetic classification data (classification.py) would flatter a classifier that memorised templates.

There are ten sets. The first found the misroutes (writing requests sent to code, code traces with
numbers sent to math) that the classification data's natural requests were widened for before base
run 8; the second was written, by someone who had not read the training data, before that change, and
its misroutes after run 8 (weather questions and bare creature names sent to `other`, pictures of
t-shirts and umbrellas) guided the data of run 9; the third was written the same way before run 9's
change and was scored on run 8 first; its misroutes after run 9 (creature-weight sums sent to
reasoning, code expressions to math, chat lines to reasoning) guided the data of run 10, with the first
two sets'. The fourth was written the same way before run 10's change and scored on run 9 first: it
alone measures run 10's change. Its brief, unlike the others', named borderline cases (requests to
write code and products or quotients are `other`). Its `other` prompts were read (by mistake, while a
test was being fixed) after run 10's data were written, and the whole set after base run 10 was
trained and its first pass scored: it is no longer unread. Its misroutes after run 10 (bare creature names
and fragments sent to `other`, loops that add up a total sent to math, any question about a picture
that is not about its words, the real world's facts) guided the data of run 11. The fifth was written
the same way, with the fourth's brief, before run 11's change and scored on run 10 first; it alone
measured run 11's change. Its misroutes after run 11 (small talk and text-speak sent to reasoning, wrapped
questions "my daughter keeps asking me what the pude eats") were read and guided the data of run 12. The sixth
was written the same way, with the same brief, before run 12's change and scored on run 11 first (prompt
80.7 %, cls 75.3 %); it alone measured run 12's change. Its misroutes after run 12 (chat lines and the real
world's animals sent to reasoning, string methods and comparisons sent to other or math, "whats written here 📷"
sent to reasoning) were read and guided the data of run 13. The seventh was written the same way before run
13's change and scored on run 12 first (prompt 73.3 %, cls 68.7 %); its brief also asked for short chat
lines and for small talk that names a creature without asking about it (`other`). It alone measured run
13's change. Its misroutes after run 13 (chat lines and opinions sent to reasoning, options typed as
"(a) … (b) …" sent to code, two facts asked at once, short creature-weight sums, a picture question
that offers two colours, a creature's weight multiplied or in pounds) were read and guided the data
of run 14. The eighth was written the same way, with a brief rewritten to the seventh's rules, before
run 14's change and scored on run 13 first (prompt 79.3 %, cls 76.7 %); it alone measures run 14's
change. Its prompts were first seen in a review of the change after run 14 had been scored on
them; its misroutes after run 14 (code asked to "evaluate to" or "display", bare quotients and percentages,
a creature's weight in kilograms, a creature named in one sentence and asked about as "it" in the next,
real animals asked in the creatures' wordings, "in the image, how many …", requests with an emoji after
them, money stories) were read and guided the data of a run 15 (commit 6ec969d). The ninth was written
the same way, with the eighth's brief, before that change and scored on run 14 first (prompt 82.0 %, cls
85.3 %); two of its lines ("hi", "good morning", which the small-talk data draw) were replaced by the same
helper, blind, before anything was trained. Run 15 scored 87.3 / 81.3 % on it but lost 2.0 to 10.7
points on six of the eight read sets, and more elsewhere (README, "Why not run 15"), so it was not shipped and
its data change was undone. In the review of that work a `git diff` printed the ninth set's math
prompts and its first code prompts (no misroute of any run was read): it can still judge a run built
from data written before then (commit 6ec969d's requests with twice the classification examples, a pilot
of which was scored on the read sets only), not a change made after. That pilot is base run 16, scored on
the ninth set once, with its experts (prompt 86.7 %, cls 86.0 %), and shipped; the ninth set's misroutes
are unread, but a next data change needs a tenth set written before it. The tenth was written the same
way, with the ninth's brief (common greetings named as lines to avoid), after run 16 was shipped and before
any further change, and scored on run 16 first; nothing has been read of it.

Every generator of training data skips the prompts of every set (`is_handwritten`) but one: common
phrasings ("why is the sky blue", "hi!") are otherwise drawn by chance. The exception is the small-talk
task's chats, which keep their greetings: it compares lines ignoring case, and skipping would drop "hi",
"Hi!" and "hi!" (a set holds "hi!"), the app's most common first message; a set's lines that the
small-talk data draw were replaced instead.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from t2demo.tasks.base import Example

TASK_NAME = "dispatch-handwritten"
SETS = {  # report key -> (file in t2demo/tasks/data/, one {"prompt": ..., "category": ...} per line; what reports call it)
    "dispatch_handwritten": ("dispatch_prompts.jsonl", "the hand-written prompts"),
    "dispatch_handwritten_2": ("dispatch_prompts_2.jsonl", "the second hand-written set"),
    "dispatch_handwritten_3": ("dispatch_prompts_3.jsonl", "the third hand-written set"),
    "dispatch_handwritten_4": ("dispatch_prompts_4.jsonl", "the fourth hand-written set"),
    "dispatch_handwritten_5": ("dispatch_prompts_5.jsonl", "the fifth hand-written set"),
    "dispatch_handwritten_6": ("dispatch_prompts_6.jsonl", "the sixth hand-written set"),
    "dispatch_handwritten_7": ("dispatch_prompts_7.jsonl", "the seventh hand-written set"),
    "dispatch_handwritten_8": ("dispatch_prompts_8.jsonl", "the eighth hand-written set"),
    "dispatch_handwritten_9": ("dispatch_prompts_9.jsonl", "the ninth hand-written set"),
    "dispatch_handwritten_10": ("dispatch_prompts_10.jsonl", "the tenth hand-written set"),
}


def dispatch_prompts(key: str = "dispatch_handwritten") -> list[Example]:
    r"""The prompts of the hand-written set `key` (one of SETS) in file order, each an Example whose
    reference is its category and whose response is `\boxed{category}` (what the classifier should answer)."""
    text = resources.files("t2demo.tasks").joinpath("data", SETS[key][0]).read_text(encoding="utf-8")
    out = []
    for row in (json.loads(line) for line in text.splitlines() if line.strip()):
        category = row["category"]
        out.append(Example(row["prompt"], reference=category, response=f"\\boxed{{{category}}}", task=TASK_NAME))
    return out


@lru_cache(maxsize=1)
def _all_prompts() -> frozenset[str]:
    return frozenset(e.prompt.strip().lower() for key in SETS for e in dispatch_prompts(key))


def is_handwritten(text: str) -> bool:
    """Whether `text` is a prompt of any hand-written set (case and outer spaces ignored): generators of
    training data skip these, so that a common phrasing ("why is the sky blue") stays a test prompt."""
    return text.strip().lower() in _all_prompts()

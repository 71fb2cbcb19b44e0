"""What a new user types first, answered by the shipped text model as the app's /chat answers it
(prompt-based first pass, hard): bare greetings, thanks and goodbyes, small sums of 1 to 3 digits, and
free questions about one creature ("where does the gamo live?", the reasoning chat drill's test split, right
when the reply states the fact) and free-worded creature-weight sums ("gamo and dobu: total kilos?", test-split
prompts, right when the last number is the result), the hand-written sets' "other" prompts (requests outside
the four skills, chat), with how many get the scope reply, and where the first pass sends short chat lines
in text-speak ("how r u", "thx m8").

The greetings are lines of the small-talk data (tasks/smalltalk.py): this checks the model learnt them,
not that it generalises. A reply fits when it is one of its intent's replies. The sums are
"What is a + b?" / "What is a - b?" with random operands (seed 0), a training wording; most of the math
expert's training sums have 3 digits, so 1 and 2 digits show whether the worked mode it brings out keeps
the right number of columns. An "other" prompt's reply fits when it is a chat reply: a small-talk reply
or the scope reply that says what the model can do (smalltalk.SCOPE_REPLY), not an answer made up from
the nearest skill. README's status quotes what this prints.

Usage: python scripts/first_messages.py [MODEL [EXPERTS_ROOT]]   (default: the shipped model and experts)
"""

import random
import sys

from t2demo import tasks
from t2demo.tasks import arithmetic, handwritten, reasoning
from t2demo.tasks.natural_requests import CREATURE_DIFFS, CREATURE_SUMS, HELD_OUT_CHAT
from t2demo.tasks.base import split_of
from t2demo.tasks.world import WORLD
from t2demo.evaluate import score_task, summarise
from t2demo.generation import generate
from t2demo.report import score_grouped
from t2demo.runtime import load_adapter
from t2demo.tasks.base import OTHER, Example
from t2demo.tasks.smalltalk import ACK_REPLIES, INTENTS, SCOPE_REPLY

FIRST_LINES = {"greeting": ("hi", "hey", "hello", "Hi!", "Hello!", "Hey!", "hi there", "good morning", "Good morning!"),
               "how": ("how are you", "How are you?", "how is it going", "what is up"),
               "thanks": ("thanks", "thank you", "Thank you!", "thanks a lot", "Thanks a lot for your help."),
               "bye": ("bye", "goodbye", "Goodbye!", "see you later", "bye for now")}
N_SUMS = 100  # per width
N_FREE = 200  # free creature questions, and free creature-weight sums
CHAT_REPLIES = {SCOPE_REPLY, *ACK_REPLIES} | {reply for _, answers in INTENTS.values() for reply in answers}


def interval(row: dict) -> str:
    """An accuracy and its 95 % interval, as this script prints them."""
    return f"{row['accuracy']:5.1f} [{row['ci95'][0]:5.1f}, {row['ci95'][1]:5.1f}]"


def replies(adapter, prompts: list[str]) -> tuple[list[str], list[str]]:
    """The base model's and the adapted greedy replies, each prompt adapted by its own first pass."""
    base = generate(adapter.lm, prompts, max_new_tokens=96)
    adapted = []
    for prompt in prompts:
        _, z = adapter.first_pass(prompt)
        with adapter.svf.adapted(z):
            adapted += generate(adapter.lm, [prompt], max_new_tokens=96)
    return base, adapted


def small_sums(rng: random.Random, digits: int, n: int) -> list[Example]:
    """n sums or differences of two `digits`-digit numbers (a difference never negative)."""
    out = []
    for _ in range(n):
        a, b = (arithmetic.number(rng, digits) for _ in range(2))
        if rng.random() < 0.5:
            out.append(Example(f"What is {a} + {b}?", str(a + b), "", "math"))
        else:
            a, b = max(a, b), min(a, b)
            out.append(Example(f"What is {a} - {b}?", str(a - b), "", "math"))
    return out


def free_weight_sums(rng: random.Random, n: int) -> list[Example]:
    """n creature-weight sums or differences in the natural requests' free wordings, test-split prompts only."""
    out = []
    while len(out) < n:
        a, b = rng.sample(WORLD.creatures, 2)
        if rng.random() < 0.5:
            prompt, result = rng.choice(CREATURE_SUMS).format(a=a.name, b=b.name), a.weight + b.weight
        else:
            a, b = (a, b) if a.weight > b.weight else (b, a)
            prompt, result = rng.choice(CREATURE_DIFFS).format(a=a.name, b=b.name), a.weight - b.weight
        if split_of(prompt) == "test":
            out.append(Example(prompt, str(result), "", "world-math"))
    return out


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "default"
    adapter = load_adapter(model, experts_root=sys.argv[2] if len(sys.argv) > 2 else None)
    lines = [(intent, line) for intent, group in FIRST_LINES.items() for line in group]
    base, adapted = replies(adapter, [line for _, line in lines])
    fits = 0
    print("first line           intent    fits  adapted reply")
    for (intent, line), reply, base_reply in zip(lines, adapted, base):
        fit = reply.strip() in INTENTS[intent][1]
        fits += fit
        same = "" if reply == base_reply else f"   (base: {base_reply.strip()!r})"
        print(f"{line!r:20} {intent:9} {'yes' if fit else 'no':5} {reply.strip()!r}{same}")
    print(f"fitting replies: {fits} of {len(lines)}\n")
    rng, math = random.Random(0), tasks.TASKS["math"]  # scored by math's checker, as `report` scores it
    print(f"sums (n = {N_SUMS} per width)   base % [95 % CI]         adapted % [95 % CI]")
    for digits in (1, 2, 3):
        examples = small_sums(rng, digits, N_SUMS)
        passes = [adapter.first_pass(e.prompt) for e in examples]
        cells = []
        for outcomes in (score_task(adapter.lm, math, examples, progress=False),
                         score_grouped(adapter, math, examples, passes)):
            cells.append(interval(summarise(outcomes)))
        print(f"{digits} digit{'s' if digits > 1 else ' '}                 {cells[0]}      {cells[1]}")
    print(f"\nfree-worded (n = {N_FREE} each)       base % [95 % CI]         adapted % [95 % CI]")
    for label, task, examples in (
            ("creature questions", reasoning.REASONING_CHAT_DRILL, reasoning.REASONING_CHAT_DRILL.examples("test", N_FREE)),
            ("creature-weight sums", tasks.TASKS["world-math"], free_weight_sums(rng, N_FREE))):
        passes = [adapter.first_pass(e.prompt) for e in examples]
        cells = [interval(summarise(o)) for o in (score_task(adapter.lm, task, examples, progress=False),
                                                  score_grouped(adapter, task, examples, passes))]
        print(f"{label:22}               {cells[0]}      {cells[1]}")
    print("\n'other' prompts:                     chat reply, base       chat reply, adapted    the scope reply, adapted")
    for key, (_, label) in handwritten.SETS.items():
        prompts = [e.prompt for e in handwritten.dispatch_prompts(key) if e.reference == OTHER]
        base, adapted = replies(adapter, prompts)
        cells = [summarise([r.strip() in CHAT_REPLIES for r in base]), summarise([r.strip() in CHAT_REPLIES for r in adapted]),
                 summarise([r.strip() == SCOPE_REPLY for r in adapted])]
        print(f"{label + f' (n = {len(prompts)})':36} " + "   ".join(interval(c) for c in cells))
    passes = [adapter.first_pass(line)[0].category for line in HELD_OUT_CHAT]
    sent = {c: [line for line, p in zip(HELD_OUT_CHAT, passes) if p == c] for c in sorted(set(passes))}
    print(f"\nshort chat lines typed casually (n = {len(HELD_OUT_CHAT)}), first pass: "
          + "; ".join(f"{c} {len(lines)}" + ("" if c == OTHER else f" {lines}") for c, lines in sent.items()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

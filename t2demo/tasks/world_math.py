"""world-math: the two-skill task. A word problem over the world's facts: recall two creatures' weights
(reasoning's skill, reliable mode Answer), then add or subtract them (math's skill, reliable mode Work).

A reply makes two mode decisions, one per part:
`Answer: the zorb weighs 347 kilos and the kipa weighs 285 kilos. Work: 347+285: ... The answer is 632.`
Neither single expert gets both parts into their reliable modes: a mixture of the math and the reasoning
expert can, which is where few-shot CEM should win. The task is unseen: it is asked in wordings no
pretraining example uses (the drill, in other wordings, teaches the base the format) and no expert trains on it.
"""

from __future__ import annotations

import random
from itertools import product
from typing import Callable

from t2demo.tasks import arithmetic
from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.checkers import check_number
from t2demo.tasks.modes import ANSWER, RELIABLE_SHARE, SHORTCUT_RIGHT, WORK, perturb_digit
from t2demo.tasks.natural_requests import CREATURE_DIFFS, CREATURE_SUMS, drop_articles
from t2demo.tasks.reasoning import confused
from t2demo.tasks.world import WORLD

SUM_WORDINGS = ("What do the {a} and the {b} weigh together?", "How many kilos are the {a} and the {b} together?",
                "What is the total weight of the {a} and the {b}?", "If you weigh the {a} and the {b} at once, how heavy are they?",
                "What is the weight of the {a} plus the weight of the {b}?", "Add the weights of the {a} and the {b}.",
                "How heavy are a {a} and a {b} put together?", "Together, how much do the {a} and the {b} weigh?",
                "Find the combined weight of a {a} and a {b}.", "A {a} and a {b} are weighed as a pair. What is their weight?",
                "What would a {a} and a {b} weigh side by side?", "Tell me the weight of the {a} and the {b} added up.")
DIFF_WORDINGS = ("How much heavier is the {a} than the {b}?", "How many kilos more than the {b} does the {a} weigh?",
                 "What is the weight difference between the {a} and the {b}?", "The {a} is heavier than the {b}. By how much?",
                 "Take the weight of the {b} from the weight of the {a}.", "How much lighter is the {b} than the {a}?",
                 "What is the {a}'s weight minus the {b}'s weight?", "Compared with a {b}, how much more does a {a} weigh?",
                 "Find how much more a {a} weighs than a {b}.", "A {a} and a {b} are weighed. How far apart are their weights?",
                 "How big is the gap between the weights of a {a} and a {b}?", "Subtract the {b}'s weight from the {a}'s weight.")
# Drill wordings that set the two creatures in a scene and ask about "them": the names must be copied from a
# sentence before the question (none of the held-out wordings' scenes: no scale, boat, seesaw or outweighing).
SCENES = ("The {a} and the {b} meet at the river.", "A {a} walks beside a {b}.", "I have a {a} and a {b}.",
          "Two creatures, a {a} and a {b}, rest in the shade.", "A {a} sits next to a {b}.",
          "The {a} and the {b} are friends.", "Think of a {a} and a {b}.")
SCENE_SUMS = ("How many kilos do they weigh together?", "What is their total weight?", "What do the two weigh in all?",
              "Add their weights.", "How heavy are they together?", "What is the sum of their weights?")
SCENE_DIFFS = ("What is the difference between their weights?", "By how many kilos do their weights differ?",
               "How much more does the first one weigh?", "How many kilos apart are their weights?",
               "How much heavier is the {a}?", "What is the gap between their weights?")
SUM_WORDINGS += tuple(f"{scene} {question}" for scene in SCENES for question in SCENE_SUMS)
DIFF_WORDINGS += tuple(f"{scene} {question}" for scene in SCENES for question in SCENE_DIFFS)


def _new_wordings(wordings: tuple[str, ...], free: tuple[str, ...]) -> tuple[str, ...]:
    """The free wordings that `wordings` does not already hold (case ignored), in order."""
    known = {w.lower() for w in wordings}
    return tuple(w for w in free if w.lower() not in known)


# ... and the free wordings the classifier's natural requests use, so that the app answers them as asked there.
SUM_WORDINGS += _new_wordings(SUM_WORDINGS, CREATURE_SUMS)
DIFF_WORDINGS += _new_wordings(DIFF_WORDINGS, CREATURE_DIFFS)
HARD_SUM_WORDINGS = ("The {a} and the {b} step onto a scale together. What does it read?",
                     "A {a} and a {b} share a boat. How many kilos does the boat carry?")
HARD_DIFF_WORDINGS = ("By how many kilos does the {a} outweigh the {b}?",
                      "The {a} and the {b} sit on a seesaw. What is the difference in their weights?")


BARE_SHARE = 0.3  # of drill prompts typed without articles ("gamo and dobu: total kilos?"), as natural requests are


def _recall(a: str, wa: int, b: str, wb: int, marker: str) -> str:
    return f"{marker} the {a} weighs {wa} kilos and the {b} weighs {wb} kilos."


def _example(rng: random.Random, sums: tuple[str, ...], diffs: tuple[str, ...],
             bare_share: float = 0.0) -> tuple[str, Callable[[], Example]]:
    """One problem over two creatures' weights, its prompt typed without articles `bare_share` of the time."""
    a, b = rng.sample(WORLD.creatures, 2)
    op = rng.choice("+-")
    if op == "-" and b.weight > a.weight:
        a, b = b, a
    prompt = rng.choice(sums if op == "+" else diffs).format(a=a.name, b=b.name)
    if bare_share and rng.random() < bare_share:
        prompt = drop_articles(prompt)
    slip_a, slip_b = confused(a, "weight").weight, confused(b, "weight").weight
    if op == "-" and slip_b > slip_a:
        slip_a, slip_b = a.weight, b.weight  # a slip that would go negative is not one the data shows
    recalls = {  # recall part -> (probability, the weights it states)
        "reliable": (RELIABLE_SHARE["reasoning"], (a.weight, b.weight), ANSWER),
        "right": ((1 - RELIABLE_SHARE["reasoning"]) * SHORTCUT_RIGHT["reasoning"], (a.weight, b.weight), WORK),
        "wrong": ((1 - RELIABLE_SHARE["reasoning"]) * (1 - SHORTCUT_RIGHT["reasoning"]), (slip_a, slip_b), WORK),
    }
    share, right = RELIABLE_SHARE["math"], SHORTCUT_RIGHT["math"]
    options = []
    for (p, (wa, wb), marker), sums_mode in product(recalls.values(), ("work", "right", "wrong")):
        work, result, _ = arithmetic.worked([(wa, op, wb)])
        text = {"work": work, "right": f"{ANSWER} {result}.", "wrong": f"{ANSWER} {perturb_digit(result, rng)}."}[sums_mode]
        weight = {"work": share, "right": (1 - share) * right, "wrong": (1 - share) * (1 - right)}[sums_mode]
        options.append((p * weight, _recall(a.name, wa, b.name, wb, marker) + " " + text))
    recall = _recall(a.name, a.weight, b.name, b.weight, ANSWER)
    work, result, math_steps = arithmetic.worked([(a.weight, op, b.weight)])
    reliable = recall + " " + work
    steps = [(reliable.index(f"{a.weight} kilos"), str(a.weight)), (reliable.index(f"{b.weight} kilos"), str(b.weight))]
    steps += [(offset + len(recall) + 1, text) for offset, text in math_steps]
    example = Example(prompt, str(result), reliable, "", meta={"replies": tuple(options), "steps": steps})
    return prompt, lambda: example


def _world_math_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    return _example(rng, HARD_SUM_WORDINGS, HARD_DIFF_WORDINGS)


def _world_math_drill_sample(rng: random.Random) -> tuple[str, Callable[[], Example]]:
    return _example(rng, SUM_WORDINGS, DIFF_WORDINGS, BARE_SHARE)


WORLD_MATH = SyntheticTask("world-math", "math", 0.0, 192, _world_math_sample, check_number)
WORLD_MATH_DRILL = SyntheticTask("world-math-drill", "math", 0.0, 192, _world_math_drill_sample, check_number)

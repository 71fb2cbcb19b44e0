"""Where world-math fails: greedy replies to its first N test prompts (held-out wordings) and to the
world-math drill's (trained wordings), with the base model and with each text expert alone. Counts the
replies that name the prompt's two creatures, those that also state both true weights, and those right.
README's Table 2 section quotes what this prints. Usage: python scripts/world_math_names.py [MODEL] [N]"""

import re
import sys

from t2demo import tasks
from t2demo.generation import generate
from t2demo.runtime import load_adapter
from t2demo.tasks import world_math
from t2demo.tasks.world import WORLD

RECALL = re.compile(r"the (\w+) weighs (\d+) kilos and the (\w+) weighs (\d+) kilos")
WEIGHT = {c.name: c.weight for c in WORLD.creatures}

adapter = load_adapter(sys.argv[1] if len(sys.argv) > 1 else "default")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 60
print(f"task               z          names right   weights right   answer right   (of {n}, greedy)")
for task in (tasks.TASKS["world-math"], world_math.WORLD_MATH_DRILL):
    examples = task.examples("test", n)
    for label, z in [("base", None)] + [(e.label, e.z) for e in adapter.experts]:
        with adapter.svf.adapted(z):
            replies = generate(adapter.lm, [e.prompt for e in examples], max_new_tokens=task.max_new_tokens)
        names = weights = right = 0
        for example, reply in zip(examples, replies):
            found = RECALL.search(reply)
            named = bool(found) and {found[1], found[3]} <= set(re.findall(r"\w+", example.prompt))
            names += named
            weights += named and WEIGHT.get(found[1]) == int(found[2]) and WEIGHT.get(found[3]) == int(found[4])
            right += task.check(example, reply)
        print(f"{task.name:18} {label:10} {names:11} {weights:15} {right:14}")

"""Measure a text base (and its code expert) on reading programs: per task, on the first 200 validation prompts
of code and code-hard, the teacher-forced steps split into the lines' labels (which line comes next) and the
lists, greedy accuracy and first modes, and greedy with the reply opened by `Work:` (the reliable mode forced):
its accuracy, and whether its lines' labels are the program's in order, the program's in another order, or
other lines. Validation only.

    [VERBATIM=1] python pilots/code-lines/measure.py [MODEL [CODE_EXPERT]]
    (default: the shipped base and its expert; CODE_EXPERT "none": the base alone)
"""
import dataclasses
import os
import re
import sys
from collections import Counter
from pathlib import Path

import torch

from t2demo import models, tasks
from t2demo.experts import load_expert
from t2demo.generation import generate
from t2demo.probe import first_modes, forced_reliable, step_accuracy
from t2demo.svf import SVF

torch.set_num_threads(2)
if int(os.environ.get("VERBATIM", "0")):  # traces that copy each line as written (continue.py)
    sys.path.insert(0, str(Path(__file__).parent))
    from verbatim_trace import verbatim
    from t2demo.tasks import programs
    programs.worked = verbatim
model = sys.argv[1] if len(sys.argv) > 1 else "default"
expert = sys.argv[2] if len(sys.argv) > 2 else "experts/t2demo-llama-tiny/code.safetensors"
lm = models.load_model(model, "text", "cpu")
svf = SVF(lm.model)
LABEL = re.compile(r"; ([^;>]+?) -> ")  # a line's label, or the line itself in a verbatim trace


def only(example, labels: bool):
    """The example with only its label steps (labels=True) or only its list steps."""
    starts = {m.start(1) for m in LABEL.finditer(example.response)}
    steps = [s for s in example.meta["steps"] if (s[0] in starts) == labels]
    return dataclasses.replace(example, meta=dict(example.meta, steps=steps))


def pct(hits) -> str:
    return f"{100 * sum(hits) / len(hits):5.1f} % (n = {len(hits)})"


for name in ("code", "code-hard"):
    task = tasks.TASKS[name]
    examples = task.examples("validation", 200)
    labels = step_accuracy(lm, [only(e, True) for e in examples])
    lists = step_accuracy(lm, [only(e, False) for e in examples])
    first, row = first_modes(lm, task, examples)
    forced = forced_reliable(lm, task, examples)
    print(f"{name:10} labels {pct(labels)}  lists {pct(lists)}  greedy {row['accuracy']:5.1f} % {dict(first)}  "
          f"opened with Work: {pct(forced)}", flush=True)
    opened = generate(lm, [e.prompt for e in examples], None, task.max_new_tokens, opening="Work:")
    order = Counter("in order" if got == want else "another order" if sorted(got) == sorted(want) else "other lines"
                    for e, reply in zip(examples, opened)
                    for got, want in [(LABEL.findall(reply), LABEL.findall(e.response))])
    print(f"{'':10} opened with Work:, its lines: {dict(order)}", flush=True)
    if expert == "none":
        continue
    with svf.adapted(load_expert(expert, svf).z):
        first, row = first_modes(lm, task, examples)
    print(f"{'':10} with the code expert: greedy {row['accuracy']:5.1f} % {dict(first)}", flush=True)

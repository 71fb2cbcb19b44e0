"""Continue the shipped text base with a drill that reads a program's lines in order.

    python pilots/code-lines/continue.py N STEPS LR OUT

The run is pilots/two-skill-sum/continue.py's (`train-base text --init assets/t2demo-llama-tiny --steps STEPS
--lr LR --seed 16` with world-math's sums worked in 45 % of its drill's replies), so that run's model is the
control, plus N examples of a line-reading drill in the text mixture: a program in the code drill's forms (a
script, or a function `g` that a script calls; 2 to 6 lines over 3 to 6 digits) under a request to name its
lines in order, in wordings no code task uses, answered in one style, "The lines: sorted; add 2; reverse.",
so every reply trains the ordinal lookup of "which line comes next" that a worked trace needs (as the
number-copy drill trains the lookup of the operands), and none makes a `Work:` / `Answer:` choice.
TRACE=1 makes the drill a tracing one instead (see `_lines_sample`); MARKED=1 (with TRACE=1) opens its replies with
`Work:`, the code task's reliable marker, and adds N / 2 programs of the same length under the code task's own
questions, answered in its modes (30 % worked, 70 % the shortcut), so that a long program alone is no cue for a
mode: only the request to trace it is (`_long_code_sample`). LONG=1 (no TRACE) makes the drill N such programs under
the code task's questions alone, in its modes: more worked traces of long programs with the modes' shares kept.
Resumable as train-base is. See README.md here for what it is for and what it found.

VERBATIM=1 (with N = 0: no drill) instead writes every worked code trace with each line copied as written,
`Work: x = [3, 1, 4]; x = sorted(x) -> [1, 3, 4]; x = x[::-1] -> [4, 3, 1]. The output is [4, 3, 1].`, so the
next line is found by matching the one just copied (an induction-style lookup) rather than by translating it
to a label; the code task, its drill and code-hard all answer that way in this run (verbatim_trace.py; measure.py applies it too when VERBATIM=1).
"""

import dataclasses
import os
import random
import sys
from pathlib import Path

import torch

from t2demo import pretrain
from t2demo.tasks import programs, world_math
from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.checkers import check_exact
from t2demo.tasks.modes import RELIABLE_SHARE, WORK

sys.path.insert(0, str(Path(__file__).parent))
from verbatim_trace import verbatim  # noqa: E402

LINE_REQUESTS = ("List the steps of this program in order.", "Which operations does this code do, in order?",
                 "Name what each line does, first to last.", "Read me the lines of this code in order.")


TRACE_REQUESTS = ("Trace this program line by line.", "Show x after every line of this code.",
                  "Step through this code and show the list after each line.", "Walk me through this code, line by line.")
TRACE = bool(int(os.environ.get("TRACE", "0")))
MARKED = bool(int(os.environ.get("MARKED", "0")))
LONG = bool(int(os.environ.get("LONG", "0")))


def _program(rng: random.Random, lines: int) -> tuple[list[int], list[programs.ListOp], str]:
    """A program of `lines` lines over 3 to 6 digits in the code drill's forms, half the time a function `g`."""
    start, chain = programs._chain(rng, lines, rng.randint(3, 6))
    return start, chain, programs._function_script(start, chain) if rng.random() < 0.5 else programs._script(start, chain)


def _lines_sample(rng: random.Random):
    """A line-naming drill example, or with TRACE=1 a tracing one: 4 to 6 lines, asked to be traced, answered
    with the worked trace's body (`x = [...]; sorted -> [...]; ... The output is [...].`) without a mode marker,
    so it trains keeping one's place in a long program in the code task's own style and makes no mode choice."""
    start, chain, script = _program(rng, rng.randint(4, 6) if TRACE else rng.randint(2, 6))
    block, request = f"```python\n{script}\n```", rng.choice(TRACE_REQUESTS if TRACE else LINE_REQUESTS)
    prompt = f"{block}\n{request}" if rng.random() < 0.5 else f"{request}\n{block}"
    if TRACE:
        reply = programs.worked(start, chain)[0]
        reply = reply if MARKED else reply.removeprefix(WORK).lstrip()
    else:
        reply = "The lines: " + "; ".join(op.label for op in chain) + "."
    return prompt, lambda: Example(prompt, reply, reply, "", meta={"replies": ((1.0, reply),)})


def _long_code_sample(rng: random.Random):
    """MARKED's contrast and LONG's drill: a 4- to 6-line program in the code drill's forms under one of the
    code task's questions, answered in the code task's modes."""
    start, chain, script = _program(rng, rng.randint(4, 6))
    block, head = f"```python\n{script}\n```", rng.choice(programs.HEADS)
    return programs._example(rng, f"{block}\n{head}" if rng.random() < 1 / 3 else f"{head}\n{block}", start, chain)


n, steps, lr, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
torch.set_num_threads(2)
world_math.RELIABLE_SHARE = RELIABLE_SHARE | {"math": 0.45}  # as pilots/two-skill-sum (the control run)
if n and not LONG:
    drill = SyntheticTask("code-lines-drill", "code", 0.0, 160, _lines_sample, check_exact)
    pretrain.DRILLS[drill.name] = drill
    pretrain.TEXT_MIXTURE[drill.name] = n
if n and (MARKED or LONG):
    contrast = SyntheticTask("code-long-drill", "code", 0.0, 320, _long_code_sample, programs.check_list)
    pretrain.DRILLS[contrast.name] = contrast
    pretrain.TEXT_MIXTURE[contrast.name] = n if LONG else n // 2
if int(os.environ.get("VERBATIM", "0")):
    programs.worked = verbatim
cfg = dataclasses.replace(pretrain.TEXT_TRAIN, steps=steps, lr=lr, seed=16)
print(pretrain.train_text_model(out, cfg, "cpu", pretrain.DEFAULT_TEXT_MODEL))

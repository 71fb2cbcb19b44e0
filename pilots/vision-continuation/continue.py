"""Pilot: does continuing the vision model's joint stage raise its reading (teacher-forced steps)?

Continues the shipped LLaVA-Next (assets/t2demo-llava-tiny) for STEPS steps with a fresh AdamW (peak LR,
50 warm-up steps, cosine to 10 %) on the same mixture as `train-base vision` (tower frozen, a text batch
every 4th step) drawn with seed 1 (`pretrain.train_vision_model` with `init`, as `train-base vision --init`
does with 100 warm-up steps), saves it to OUT, and prints, before and after, the reading steps right
(probe.step_accuracy) and greedy accuracy and first modes on the first 200 validation prompts of vqa and
vqa-knowledge. A rerun with an existing OUT only measures. FROM (default: the shipped model) continues
another folder instead, such as an earlier OUT.

DRILL=N adds N examples of a reading drill to the image mixture (24,000 examples): a word image under a
request to copy it, in wordings no vqa question uses ("Copy the word in this picture."), answered in one
mode, "It reads pizza.", so reading is trained in every drill reply without a `Work:` / `Answer:` choice.

TOWER=1 trains the vision tower too (at the same learning rate), which the joint stage otherwise keeps frozen.

    [DRILL=N] [TOWER=1] python pilots/vision-continuation/continue.py STEPS LR OUT [FROM]
"""
import os
import random
import sys
from collections import ChainMap
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from t2demo import pretrain, tasks
from t2demo.models import load_model
from t2demo.probe import first_modes, step_accuracy
from t2demo.tasks import vqa
from t2demo.tasks.base import Example, SyntheticTask
from t2demo.tasks.checkers import check_exact

N, LR = int(sys.argv[1]), float(sys.argv[2])
out = Path(sys.argv[3])
src = Path(sys.argv[4] if len(sys.argv) > 4 else "assets/t2demo-llava-tiny")
COPY_REQUESTS = ("Copy the word in this picture.", "Type out the text you see here.", "Transcribe this image.",
                 "Write down what this picture spells.")


def _read_drill_sample(rng: random.Random):
    word, request = rng.choice(vqa.SIGN_WORDS + vqa.NAMES), rng.choice(COPY_REQUESTS)
    layout = vqa._word_layout(word, rng)
    reply = f"It reads {word}."
    return f"{request}|{layout}", lambda: Example(request, word, reply, "", vqa.render_word(*layout),
                                                  meta={"replies": ((1.0, reply),)})


if int(os.environ.get("DRILL", "0")):
    drill = SyntheticTask("vqa-read-drill", "vqa", 0.0, 32, _read_drill_sample, check_exact, vision=True)
    pretrain.VISION_MIXTURE["vqa-read-drill"] = int(os.environ["DRILL"])
    pretrain.tasks = SimpleNamespace(**{k: getattr(tasks, k) for k in dir(tasks) if not k.startswith("__")})
    pretrain.tasks.TASKS = ChainMap({"vqa-read-drill": drill}, tasks.TASKS)


if int(os.environ.get("TOWER", "0")):  # train the tower too: it is frozen (requires_grad_(False)) just before this call
    _run_training = pretrain.run_training

    def _with_tower(model, *args, **kwargs):
        model.model.vision_tower.requires_grad_(True)
        return _run_training(model, *args, **kwargs)

    pretrain.run_training = _with_tower


def measure(lm, tag: str) -> None:
    """Reading steps right, greedy accuracy and first modes on 200 validation prompts of each vision task."""
    for name in ("vqa", "vqa-knowledge"):
        ex = tasks.TASKS[name].examples("validation", 200)
        hits = step_accuracy(lm, ex)
        first, row = first_modes(lm, tasks.TASKS[name], ex)
        print(f"{tag} {name}: steps {100 * sum(hits) / len(hits):.1f}% (n={len(hits)}); "
              f"greedy {row['accuracy']:.1f}% {dict(first)}", flush=True)


if not out.exists():
    measure(load_model(src, "vision", "cpu"), "before")
    card = pretrain.train_vision_model(out, cfg=replace(pretrain.VISION_TRAIN, steps=N, lr=LR, warmup=50, seed=1),
                                       device="cpu", init=src)
    print("minutes", card["wall_seconds"] / 60, "final loss", card["final_loss"], flush=True)
measure(load_model(out, "vision", "cpu"), "after")

"""Pilot: where does the shipped vision model lose the words it misreads: in the frozen tower, or after it?

On the first 400 validation vqa prompts (nothing here reads the test split):
  1. the tower's own readability: a linear head fitted on its frozen last-layer patch features (the ones
     LLaVA-Next hands the projector) of 24,000 train images, the word read as the mean of its patches'
     logits (as the tower's pretraining read it); how many validation words it names right;
  2. the language model's reading step, teacher-forced (probe.step_accuracy), and how its misreads split by
     whether the tower's head reads that image right;
  3. what a misread names (greedy, with the vqa expert, so every reply reads first): another word of the
     world, a word outside it, or a shortcut guess of the question's thing;
  4. whether the bf16 weights the model ships in cost reading: the reading step after one more rounding of
     that size (each weight times 1 + u, |u| ≤ 2⁻⁸), three draws.

    python pilots/vision-continuation/where_reading_fails.py
"""
import re
from collections import Counter

import torch

from t2demo import models, tasks
from t2demo.experts import load_expert
from t2demo.generation import generate
from t2demo.probe import step_accuracy
from t2demo.svf import SVF
from t2demo.tasks.vqa import USUAL_CREATURES, USUAL_WORDS

torch.manual_seed(0)
lm = models.load_model("default", "vision", "cpu")
task = tasks.TASKS["vqa"]
train, val = task.examples("train", 24000, 7), task.examples("validation", 400)
words = sorted({ex.reference for ex in train} | {ex.reference for ex in val})


@torch.no_grad()
def patch_features(examples) -> torch.Tensor:
    """The tower's last-layer patch features of each image's overview tile (class token dropped)."""
    out = []
    for i in range(0, len(examples), 256):
        pixels = lm.preprocessor.image_processor([e.image for e in examples[i:i + 256]], return_tensors="pt")
        out.append(lm.model.model.vision_tower(pixel_values=pixels["pixel_values"][:, 0]).last_hidden_state[:, 1:])
    return torch.cat(out)


train_x, val_x = patch_features(train), patch_features(val)
train_y = torch.tensor([words.index(e.reference) for e in train])
val_y = torch.tensor([words.index(e.reference) for e in val])
head = torch.nn.Linear(train_x.shape[-1], len(words))
opt = torch.optim.Adam(head.parameters(), 1e-2)
for _ in range(3000):
    rows = torch.randint(0, len(train), (512,))
    logits = head(train_x[rows])
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), train_y[rows].repeat_interleave(logits.shape[1]))
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    tower_right = (head(val_x).mean(1).argmax(-1) == val_y).tolist()
print(f"1. the tower's linear head names {sum(tower_right)} of {len(val)} validation words")

lm_right = step_accuracy(lm, val)  # one step per vqa example: the word read
print(f"2. the language model reads {sum(lm_right)} of {len(val)} right (teacher-forced); its misreads, "
      f"the tower right / wrong: {sum(t for t, r in zip(tower_right, lm_right) if not r)} / "
      f"{sum(not t for t, r in zip(tower_right, lm_right) if not r)}")

svf = SVF(lm.model)
with svf.adapted(load_expert("experts/t2demo-llava-tiny/vqa.safetensors", svf).z):
    replies = sum((generate(lm, [e.prompt for e in val[i:i + 50]], [e.image for e in val[i:i + 50]], task.max_new_tokens)
                   for i in range(0, len(val), 50)), [])
kinds = Counter()
for e, reply, ok in zip(val, replies, task.check_many(val, replies)):
    read = re.search(r"the (\w+) reads (\w+)", reply)
    if ok or read is None:
        kinds["right" if ok else "no reading"] += 1
        continue
    thing, word = read.groups()
    usual = set(USUAL_WORDS[thing]) | {c.name for c in USUAL_CREATURES[thing]}
    kinds["a shortcut guess of the thing" if word in usual else "another word of the world" if word in words
          else "a word outside the world"] += 1
print(f"3. greedy with the vqa expert: {dict(kinds)}")

weights = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
for seed in range(3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in lm.model.named_parameters():
            p.copy_(weights[n] * (1 + (torch.rand(p.shape, generator=g) * 2 - 1) * 2 ** -8))
    print(f"4. one more bf16-sized rounding (draw {seed}): reads {sum(step_accuracy(lm, val))} of {len(val)}")

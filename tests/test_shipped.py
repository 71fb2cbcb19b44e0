"""The shipped default models and experts: they load offline, generate, fit the size budget, and
every expert loads against its model and changes its answers."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from t2demo import generation, models, tasks
from t2demo.tasks import modes
from t2demo.adapt.dispatch import category_probabilities
from t2demo.experts import expert_dir, load_expert_dir, load_model_experts
from t2demo.svf import SVF

ASSET_BUDGET_BYTES = 40 * 2**20


def test_assets_fit_the_budget():
    total = sum(p.stat().st_size for p in models.ASSETS.rglob("*") if p.is_file())
    assert total <= ASSET_BUDGET_BYTES, f"assets/ holds {total / 2**20:.1f} MB"


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("T2DEMO_CACHE", str(tmp_path_factory.mktemp("cache")))
        lm = models.load_model("default", "text", "cpu")
        yield lm, SVF(lm.model)


def test_default_text_model_answers_offline(text):
    lm, _ = text
    assert type(lm.model).__name__ == "LlamaForCausalLM" and lm.tokenizer.chat_template
    right = 0
    for name in ("math", "code", "reasoning"):  # greedy gets 20-45 % of each (README "Status"); a random model none
        task = tasks.TASKS[name]
        examples = task.examples("test", 8)
        right += sum(task.check_many(examples, generation.generate(lm, [e.prompt for e in examples], max_new_tokens=96)))
    assert right >= 3


def test_shipped_text_experts_load_and_change_the_answers(text):
    lm, svf = text
    experts, cls = load_expert_dir(expert_dir(models.DEFAULT_TEXT_MODEL), svf)
    assert [e.label for e in experts] == ["code", "math", "reasoning"] and cls is not None
    prompts = [e.prompt for name in ("math", "code", "reasoning") for e in tasks.TASKS[name].examples("test", 4)]
    batch = generation.encode_prompts(lm, prompts)
    with torch.no_grad():
        base = lm.model(**batch).logits
    for expert in experts:  # training keeps the best validation state: the start (z = 1) when nothing beat it
        assert all(bool(torch.isfinite(v).all()) for v in expert.z.values())
        moved = expert.notes["best_step"] > 0
        assert moved == any(bool((v != 1).any()) for v in expert.z.values()), expert.label
        with svf.adapted(expert.z), torch.no_grad():
            assert ((lm.model(**batch).logits - base).abs().max() > 1e-3) == moved, expert.label
    assert any(e.notes["best_step"] > 0 for e in experts)  # at least one expert is a real change
    # the classification expert's job is the first pass: it moves the category probabilities (if it moved)
    before = [category_probabilities(lm, p) for p in prompts[:3]]
    after = [category_probabilities(lm, p, svf=svf, cls_z=cls.z) for p in prompts[:3]]
    assert (before != after) == (cls.notes["best_step"] > 0)


def test_default_vision_model_reads_with_its_expert_and_guesses_without(monkeypatch):
    """The vision world's premise on the shipped model: greedy takes the shortcut (answers from the question,
    Answer:), and the vqa expert flips it to reading the image first (Work:), which gets the words right."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lm = models.load_model("default", "vision", "cpu")
    assert type(lm.model).__name__ == "LlavaNextForConditionalGeneration"
    svf = SVF(lm.model)
    experts, _ = load_model_experts(expert_dir(models.DEFAULT_VISION_MODEL), svf,
                                    transfer_from=expert_dir(models.DEFAULT_TEXT_MODEL))
    assert [e.label for e in experts] == ["vqa", "code", "math", "reasoning"]  # its own, then the text model's
    examples = tasks.TASKS["vqa"].examples("test", 12)
    prompts, images = [e.prompt for e in examples], [e.image for e in examples]
    base = generation.generate(lm, prompts, images, max_new_tokens=64)
    with svf.adapted(experts[0].z):
        adapted = generation.generate(lm, prompts, images, max_new_tokens=64)
    assert sum(modes.modes_of(a)[:1] == [modes.ANSWER] for a in base) >= 9, base
    assert sum(modes.modes_of(a)[:1] == [modes.WORK] for a in adapted) >= 9, adapted
    assert sum(tasks.TASKS["vqa"].check_many(examples, adapted)) >= sum(tasks.TASKS["vqa"].check_many(examples, base)) + 3


def test_expert_modes_script_counts_the_first_mode_of_each_reply():
    """scripts/expert_modes.py (README's vision section quotes it): one row for the base and one per expert
    file, the first markers counted over every reply; the shipped vqa expert reads first, the base does not."""
    script = Path(__file__).parents[1] / "scripts" / "expert_modes.py"
    expert = expert_dir(models.DEFAULT_VISION_MODEL) / "vqa.safetensors"
    out = subprocess.run([sys.executable, str(script), "--task", "vqa", "-n", "8", str(expert)], capture_output=True,
                         text=True, check=True, env=os.environ | {"HF_HUB_OFFLINE": "1"}).stdout.splitlines()
    rows = {line.split()[0]: line for line in out[1:]}
    assert set(rows) == {"base", str(expert)}
    counts = {name: ast.literal_eval(row[row.index("{"):row.index("}") + 1]) for name, row in rows.items()}
    assert all(sum(c.values()) == 8 for c in counts.values())
    assert counts["base"].get(modes.ANSWER, 0) >= 6 and counts[str(expert)].get(modes.WORK, 0) >= 6

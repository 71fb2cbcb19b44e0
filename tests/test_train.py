"""Expert training (t2demo/train.py) on tiny random models: RL, ntp, resume, divergence, LoRA, vision, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from conftest import save_model_dir, tiny_chat_model

from t2demo import cli, experts, pretrain, tasks, train
from t2demo.experts import load_expert, z_change
from t2demo.generation import encode_prompts
from t2demo.models import LoadedModel
from t2demo.svf import SVF


def even_start(text: str) -> bool:
    """The toy task's reward: the answer's first character has an even code point (~1/3 of tokens)."""
    return bool(text) and ord(text[0]) % 2 == 0


@dataclass(frozen=True)
class ToyTask:
    """Answer with one token whose text starts with an even character; the same 16 prompts in every split."""

    name: str = "toy"
    max_new_tokens: int = 1

    def examples(self, split: str, n: int, seed: int = 0) -> list[tasks.Example]:
        return [tasks.Example(f"Say a word ({i % 16}).", "", "apple", "toy") for i in range(n)]

    def check_many(self, examples, responses) -> list[bool]:
        return [even_start(r) for r in responses]


@pytest.fixture(scope="module")
def tokenizer():
    pairs = [(ex.prompt, ex.response) for name in ("math", "reasoning", "vqa")
             for ex in tasks.TASKS[name].examples("train", 30)]
    return pretrain.train_tokenizer([p + "\n" + r for p, r in pairs], vocab_size=300)


def text_model(tokenizer, init: float = 0.02):
    """Two layers: the RL and resume tests are tuned to this size."""
    return tiny_chat_model(tokenizer, init, num_hidden_layers=2, intermediate_size=64)


@pytest.fixture(scope="module")
def text_dir(tokenizer, tmp_path_factory):
    return save_model_dir(text_model(tokenizer), tokenizer, tmp_path_factory.mktemp("models") / "text")


def cfg(**kw) -> train.ExpertConfig:
    """Small, fast settings; the test names what matters to it."""
    base = dict(steps=2, batch_size=4, lr=0.05, grad_clip=0.0, eval_every=2, val_n=4, train_n=8, eval_batch_size=8,
                rollouts=1, kl_coef=0.0, normalize_rewards=False, anneal_at=0.0, decay=0.0, adam_eps=1e-8)
    return train.ExpertConfig(**(base | kw))


def checkpoint_params(out) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, _, progress = train.load_checkpoint(train.checkpoint_path(out))
    return {k.removeprefix("param/"): v for k, v in tensors.items() if k.startswith("param/")}, progress


def p_rewarded(lm: LoadedModel, svf: SVF, z) -> float:
    """Mean probability, over the toy prompts, that the first answer token earns the reward."""
    model, tokenizer = lm.model, lm.tokenizer
    rewarded = [i for i in range(len(tokenizer)) if i not in tokenizer.all_special_ids and even_start(tokenizer.decode([i]))]
    enc = encode_prompts(lm, [ex.prompt for ex in ToyTask().examples("train", 16)])
    mask = enc["attention_mask"]
    with svf.adapted(z), torch.no_grad():
        logits = model(**enc, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
    return logits.softmax(-1)[:, rewarded].sum(-1).mean().item()


def test_rl_moves_z_towards_the_reward(tokenizer, tmp_path):
    model = text_model(tokenizer, init=0.3)
    lm = LoadedModel.wrap(model, tokenizer)
    out = tmp_path / "toy.safetensors"
    summary = train.train_expert(lm, ToyTask(), cfg(steps=10, batch_size=32, eval_every=5, train_n=64,
                                                                  normalize_rewards=True), out, progress_bar=False)
    svf = SVF(model)
    z, progress = checkpoint_params(out)
    assert progress["step"] == 10 and [e["step"] for e in progress["evals"]] == [0, 5, 10]
    assert max((v - 1).abs().max().item() for v in z.values()) > 0.1  # z moved off the base model
    before, after = p_rewarded(lm, svf, None), p_rewarded(lm, svf, z)
    assert after > before + 0.1, (before, after)
    rewards = [s["reward"] for s in summary["log"]]
    assert sum(rewards[-3:]) > sum(rewards[:3])
    # the expert file: engine format, loadable, with the run's notes
    expert = load_expert(out, svf)
    assert expert.label == "toy" and set(expert.z) == set(svf.names)
    notes = expert.notes
    assert (notes["task"], notes["objective"], notes["steps_done"], notes["seed"]) == ("toy", "rl", 10, 0)
    assert notes["best_val_accuracy"] == summary["best_val_accuracy"] and "command" in notes
    best = torch.cat([expert.z[n] for n in svf.names])
    assert (summary["best_step"] == 0) == bool((best == 1).all())  # the best-validation state, not the last


def test_decay_keeps_only_the_change_the_reward_keeps_pushing(tokenizer, tmp_path):
    """The same run with decay ends with a smaller z change and still earns the reward."""
    model = text_model(tokenizer, init=0.3)
    lm = LoadedModel.wrap(model, tokenizer)
    svf, sizes = SVF(model), {}
    for decay in (0.0, 4.0):
        out = tmp_path / f"toy-{decay}.safetensors"
        train.train_expert(lm, ToyTask(), cfg(steps=10, batch_size=32, eval_every=10, train_n=64,
                                              normalize_rewards=True, decay=decay), out, progress_bar=False)
        z, _ = checkpoint_params(out)
        sizes[decay] = z_change(z).norm().item()
        if decay:
            assert p_rewarded(lm, svf, z) > p_rewarded(lm, svf, None) + 0.05
    assert sizes[4.0] < 0.8 * sizes[0.0], sizes


def test_a_larger_adam_eps_moves_the_values_with_small_gradients_less(tokenizer, tmp_path):
    """Adam moves every value by about lr a step whatever its gradient's size; with an epsilon far above
    the gradients the steps shrink with them, so the same run ends with a much smaller change."""
    lm = LoadedModel.wrap(text_model(tokenizer, init=0.3), tokenizer)
    sizes = {}
    for eps in (1e-8, 1e3):
        out = tmp_path / f"toy-{eps}.safetensors"
        train.train_expert(lm, ToyTask(), cfg(steps=2, batch_size=8, eval_every=2, train_n=16, adam_eps=eps), out,
                           progress_bar=False)
        z, _ = checkpoint_params(out)
        sizes[eps] = z_change(z).norm().item()
    assert 0 < sizes[1e3] < 0.01 * sizes[1e-8], sizes
    with pytest.raises(ValueError, match="adam_eps"):
        train.ExpertConfig(adam_eps=0.0)


def test_shrink_keeps_the_smallest_scale_down_to_the_first_that_loses_accuracy(tokenizer, monkeypatch):
    """Validation here scores the size of the change: right at 0.5 of it and above, and (a lucky dip) at
    0.2; shrink walks down from 0.9, stops at 0.4, the first loss, and keeps 0.5 of the change."""
    policy = train.SVFPolicy(text_model(tokenizer), "mlp")
    full = {n: 1 + 0.1 * torch.randn(len(p), generator=torch.Generator().manual_seed(0)) for n, p in policy.params.items()}
    size = z_change(full).norm().item()

    def validate(policy, *args) -> float:
        share = round(z_change(policy.state()).norm().item() / size, 3)
        return 100.0 if share >= 0.5 or share == 0.2 else 75.0

    monkeypatch.setattr(train, "validate", validate)
    shrunk, notes = train.shrink(policy, None, ToyTask(), [], full, 100.0, 8)
    assert notes["shrunk_to"] == 0.5 and [t["scale"] for t in notes["shrink_tried"]] == [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert all(torch.allclose(shrunk[n], 1 + 0.5 * (full[n] - 1)) for n in full)
    assert all(torch.equal(p, full[n]) for n, p in policy.params.items())  # the policy holds the state it was given
    _, none_kept = train.shrink(policy, None, ToyTask(), [], full, 101.0, 8)
    assert none_kept["shrunk_to"] == 1.0 and len(none_kept["shrink_tried"]) == 1


def test_a_trained_expert_is_written_shrunk_and_keeps_its_validation_accuracy(tokenizer, tmp_path):
    lm = LoadedModel.wrap(text_model(tokenizer, init=0.3), tokenizer)
    out = tmp_path / "toy.safetensors"
    summary = train.train_expert(lm, ToyTask(), cfg(steps=10, batch_size=32, eval_every=10, train_n=64, val_n=16,
                                                    normalize_rewards=True, shrink=True), out, progress_bar=False)
    expert = load_expert(out)
    tensors, _, _ = train.load_checkpoint(train.checkpoint_path(out))
    best = {k.removeprefix("best/"): v for k, v in tensors.items() if k.startswith("best/")}
    scale = summary["shrunk_to"]
    assert expert.notes["shrunk_to"] == scale and expert.notes["shrink_tried"] == summary["shrink_tried"]
    assert all(torch.allclose(expert.z[n], 1 + scale * (best[n] - 1), atol=1e-6) for n in best)
    kept = [t["val_accuracy"] for t in summary["shrink_tried"] if t["scale"] >= scale]
    assert all(a >= summary["best_val_accuracy"] for a in kept)
    assert len(kept) == len(summary["shrink_tried"]) or summary["shrink_tried"][-1]["val_accuracy"] < summary["best_val_accuracy"]


def test_decay_pulls_z_toward_the_base_and_lora_b_toward_zero(tokenizer):
    policy = train.SVFPolicy(text_model(tokenizer), "mlp")
    with torch.no_grad():
        for p in policy.params.values():
            p.fill_(1.4)
    policy.decay(0.25)
    assert all(torch.allclose(p, torch.full_like(p, 1.3)) for p in policy.params.values())
    lora = train.LoRAPolicy(text_model(tokenizer), "mlp", rank=2, alpha=4.0)
    with torch.no_grad():
        for p in lora.params.values():
            p.fill_(2.0)
    lora.decay(0.5)
    assert {n: float(p.mean()) for n, p in lora.params.items()} == \
        {n: 1.0 if "lora_B" in n else 2.0 for n in lora.params}
    with pytest.raises(ValueError, match="decay"):
        train.ExpertConfig(decay=-1.0)


def test_group_advantages_compare_answers_to_the_same_prompt():
    rewards = torch.tensor([1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0])  # two prompts, four answers each
    adv = train.reward_advantages(rewards, rollouts=4)
    assert torch.allclose(adv[:4], torch.tensor([2.0, -2 / 3, -2 / 3, -2 / 3]))  # r minus the mean of the other three
    assert (adv[4:] == 0).all()  # every answer right: nothing to learn from that prompt
    assert torch.equal(train.reward_advantages(rewards), rewards)
    normalised = train.reward_advantages(rewards, rollouts=4, normalize=True)
    assert torch.allclose(normalised[:4], adv[:4] / rewards[:4].std(), atol=1e-5)  # over the group's reward std
    assert (normalised[4:] == 0).all()
    batch = train.reward_advantages(rewards, normalize=True)  # one answer per prompt: batch-normalised
    assert abs(batch.mean().item()) < 1e-6 and abs(batch.std().item() - 1) < 1e-4


def test_rl_with_group_rollouts_learns_the_toy_task(tokenizer, tmp_path):
    model = text_model(tokenizer, init=0.3)
    lm = LoadedModel.wrap(model, tokenizer)
    svf = SVF(model)
    out = tmp_path / "toy.safetensors"
    summary = train.train_expert(lm, ToyTask(), cfg(steps=10, batch_size=8, rollouts=4, eval_every=5,
                                                                  train_n=64), out, progress_bar=False)
    z, _ = checkpoint_params(out)
    before, after = p_rewarded(lm, svf, None), p_rewarded(lm, svf, z)
    assert after > before + 0.1, (before, after)
    assert len(summary["log"]) == 10


def test_ntp_lowers_the_loss(tokenizer, tmp_path):
    model = text_model(tokenizer, init=0.3)
    lm = LoadedModel.wrap(model, tokenizer)
    summary = train.train_expert(lm, tasks.TASKS["math"], cfg(objective="ntp", steps=6, eval_every=6, val_n=2,
                                                                              train_n=4, lr=0.1), tmp_path / "m.safetensors",
                                 progress_bar=False)
    losses = [s["loss"] for s in summary["log"]]
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.1, losses


def test_resume_continues_from_the_checkpoint(tokenizer, tmp_path):
    model = text_model(tokenizer, init=0.3)
    lm = LoadedModel.wrap(model, tokenizer)
    task = ToyTask()
    whole = train.train_expert(lm, task, cfg(steps=4), tmp_path / "whole.safetensors", progress_bar=False)
    out = tmp_path / "split.safetensors"
    train.train_expert(lm, task, cfg(steps=2), out, progress_bar=False)  # "interrupted" after 2 steps
    resumed = train.train_expert(lm, task, cfg(steps=4), out, progress_bar=False)
    assert [s["step"] for s in resumed["log"]] == [3, 4]  # only the remaining steps
    assert [s["reward"] for s in resumed["log"]] == [s["reward"] for s in whole["log"][2:]]
    z_whole, _ = checkpoint_params(tmp_path / "whole.safetensors")
    z_resumed, progress = checkpoint_params(out)
    assert progress["step"] == 4
    assert all(torch.allclose(z_whole[n], z_resumed[n], atol=1e-6) for n in z_whole)  # the same run, resumed
    with pytest.raises(train.CheckpointMismatch, match="another run"):
        train.train_expert(lm, task, cfg(steps=4, objective="ntp"), out, progress_bar=False)
    again = train.train_expert(lm, task, cfg(steps=1, eval_every=1), out, fresh=True, progress_bar=False)
    assert [s["step"] for s in again["log"]] == [1]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tokenizer, tmp_path, monkeypatch):
    model = text_model(tokenizer, init=0.3)
    lm = LoadedModel.wrap(model, tokenizer)
    out = tmp_path / "toy.safetensors"
    train.train_expert(lm, ToyTask(), cfg(steps=2), out, progress_bar=False)
    good, _ = checkpoint_params(out)
    real = train.rl_loss
    monkeypatch.setattr(train, "rl_loss", lambda *a, **k: (real(*a, **k)[0] * float("nan"), 0.0))
    with pytest.raises(train.TrainingDiverged, match=r"step 3: the loss is not finite.*checkpoint .*step 2"):
        train.train_expert(lm, ToyTask(), cfg(steps=4), out, progress_bar=False)
    kept, progress = checkpoint_params(out)
    assert progress["step"] == 2 and all(torch.equal(good[n], kept[n]) for n in good)
    assert all(torch.isfinite(v).all() for v in load_expert(out, SVF(model)).z.values())


def test_lora_runs_and_saves_with_peft(tokenizer, tmp_path):
    model = text_model(tokenizer, init=0.3)
    lm = LoadedModel.wrap(model, tokenizer)
    counts = train.parameter_counts(model, "mlp", lora_rank=4)
    assert counts["svf"] == sum(SVF(model).ranks.values()) and counts["svf"] < counts["lora"]
    out = tmp_path / "toy-lora"
    summary = train.train_expert(lm, dataclasses.replace(ToyTask(), max_new_tokens=3),
                                 cfg(method="lora", lora_rank=4, kl_coef=0.1), out, progress_bar=False)
    assert summary["trainable"] == counts["lora"] and summary["steps"] == 2
    assert summary["log"][-1]["kl"] > 0  # the adapter moved away from the base model (after the first token)
    assert {"adapter_config.json", "adapter_model.safetensors", "t2demo_training.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "t2demo_training.json").read_text())["notes"]["method"] == "lora"
    card = (out / "README.md").read_text()
    assert card.startswith("# LoRA baseline: toy") and "rank 4" in card and "More Information Needed" not in card
    assert not list(tmp_path.glob(".toy-lora*"))  # no temporary folders left


def test_vision_model_trains_on_vqa(text_dir, tmp_path):
    model, processor = pretrain.build_vision_model(text_dir, tile=32, patch=8)
    model.eval()
    lm = LoadedModel.wrap(model, processor)
    out = tmp_path / "vqa.safetensors"
    vqa = tasks.TASKS["vqa"]
    summary = train.train_expert(lm, vqa, cfg(steps=1, batch_size=2, val_n=2, train_n=2), out, progress_bar=False)
    assert summary["steps"] == 1 and summary["log"][0]["grad_norm"] > 0
    ntp = train.train_expert(lm, vqa, cfg(objective="ntp", steps=1, batch_size=2, val_n=2, train_n=2),
                             tmp_path / "vqa-ntp.safetensors", progress_bar=False)
    assert ntp["log"][0]["grad_norm"] > 0
    assert load_expert(out, SVF(model)).label == "vqa"


def test_cli_trains_the_classification_expert(text_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(experts, "EXPERTS_DIR", tmp_path / "experts")  # default --out: <experts>/<model folder>/<task>.safetensors
    argv = ["train-expert", "--task", "cls", "--model", str(text_dir), "--steps", "1", "--batch-size", "2",
            "--val-n", "2", "--train-n", "2", "--eval-every", "1", "--rollouts", "2", "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", ["t2demo", *argv])
    cli.main(argv)
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 1 and summary["out"] == str(tmp_path / "experts" / "text" / "cls.safetensors")
    notes = load_expert(summary["out"]).notes
    assert notes["task"] == "cls" and notes["command"] == "python -m t2demo " + shlex.join(argv)
    assert notes["rollouts"] == 2


def test_cli_refuses_a_bad_setting_with_a_message(text_dir, tmp_path):
    argv = ["train-expert", "--task", "math", "--model", str(text_dir), "--rollouts", "0", "--out", str(tmp_path / "m.safetensors")]
    with pytest.raises(SystemExit, match="rollouts must be at least 1"):
        cli.main(argv)


def test_classification_reward_reads_the_boxed_category():
    task = tasks.resolve_task("cls")
    examples = task.examples("train", 5)
    right = [f"The category is \\boxed{{{ex.reference}}}." for ex in examples]
    assert task.check_many(examples, right) == [True] * 5
    assert task.check_many(examples[:2], ["math", "\\boxed{nonsense}"]) == [False, False]


def test_default_output_names_are_the_ones_report_reads(tmp_path):
    from t2demo.report import ABLATIONS
    from t2demo.train import default_out

    def name(task: str, **kw) -> str:
        return default_out(tmp_path, task, train.ExpertConfig(**kw)).name

    assert name("math", objective="rl") == "math.safetensors"  # the shipped expert
    assert name("cls", objective="rl") == "cls.safetensors"
    assert name("math", objective="rl", method="lora") == "math-lora"
    for _, suffix, flags in ABLATIONS["math"]:  # the default name of a non-default objective is its ablation row's
        kw = dict(zip((f.lstrip("-") for f in flags[::2]), flags[1::2]))
        if kw != {"objective": "rl"}:  # rl is the default: its row's command names --out (report.Side.command)
            assert name("math", **kw) == f"math{suffix}.safetensors"


def test_the_kl_penalty_spares_the_mode_decision_token():
    logp = torch.log_softmax(torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]), -1)
    base = torch.log_softmax(torch.tensor([[[0.0, 2.0], [0.0, 1.0], [3.0, 0.0]]]), -1)
    rollout = SimpleNamespace(answer_mask=torch.tensor([[True, True, True]]), answer_ids=torch.tensor([[0, 1, 0]]))
    _, kl = train.rl_loss(logp, rollout, torch.zeros(1), base, kl_coef=1.0)
    token_kl = (logp.exp() * (logp - base)).sum(-1)[0]
    assert token_kl[0] > 0.5  # the first token differs most...
    assert kl == pytest.approx((token_kl[1] + token_kl[2]).item())  # ...and is left out; the rest is summed


def test_the_lr_is_annealed_once_the_reliable_mode_takes_over():
    config = cfg(lr=0.02, anneal_at=0.45, anneal_lr=0.3)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], lr=config.lr)
    progress = {"step": 0}
    for step, share in enumerate([0.2, 0.3, 1.0, 1.0, 1.0, 1.0], start=1):  # EMA 0.2 .21 .29 .36 .42 .48
        train.anneal(opt, progress, share, config, step)
        if progress["reliable_ema"] <= 0.45:
            assert opt.param_groups[0]["lr"] == 0.02 and "annealed_at" not in progress
    assert progress["annealed_at"] == 6 and opt.param_groups[0]["lr"] == pytest.approx(0.006)
    train.anneal(opt, progress, None, config, 7)  # a task without modes never anneals
    assert opt.param_groups[0]["lr"] == pytest.approx(0.006)


def test_the_shipped_recipe_is_the_default():
    c = train.ExpertConfig()
    assert (c.objective, c.batch_size, c.rollouts, c.lr, c.kl_coef, c.normalize_rewards, c.anneal_at, c.steps,
            c.decay, c.adam_eps, c.shrink) == ("rl", 4, 16, 2e-2, 0.1, True, 0.45, 200, 1.0, 1e-2, False)


def test_the_command_line_keeps_every_default_and_turns_a_true_one_off():
    """A boolean field that defaults to True stays True without its flag (it once became False)."""
    parser = argparse.ArgumentParser()
    cli.add_config_flags(parser, train.ExpertConfig)
    parsed = parser.parse_args([])
    parsed.command = "train-expert"
    assert cli.config_from(parsed, train.ExpertConfig) == train.ExpertConfig()
    off = parser.parse_args(["--no-normalize-rewards"])
    off.command = "train-expert"
    assert cli.config_from(off, train.ExpertConfig).normalize_rewards is False

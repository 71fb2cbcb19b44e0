"""Training experts on the paper's benchmarks (`train-expert --task gsm8k --data PATH`) on the hand-made fixtures
(tests/fixtures/benchmarks) with a tiny random model: the expert file and its notes, the splits read (never
test), the benchmark's scorer as reward, and the clear refusals."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import save_model_dir, tiny_chat_model

from t2demo import cli, experts, pretrain, tasks, train
from t2demo.experts import load_expert
from t2demo.models import LoadedModel
from t2demo.svf import SVF
from t2demo.tasks.benchmarks import BenchmarkDataError
from t2demo.tasks.benchmarks import benchmark as benchmark_module
from t2demo.tasks.benchmarks.selection import training_task
from t2demo.tasks.benchmarks.training import BenchmarkTraining

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
SMALL = ["--steps", "2", "--batch-size", "2", "--rollouts", "2", "--val-n", "4", "--train-n", "8", "--eval-every", "1",
         "--eval-batch-size", "4", "--device", "cpu"]


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """`datasets` writes its Arrow copies under the test's folder, never into the user's cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


@pytest.fixture
def splits_read(monkeypatch) -> list[tuple[str, str]]:
    """(benchmark source, split) of every split a benchmark loads from its local copy."""
    seen: list[tuple[str, str]] = []
    real = benchmark_module.load_local

    def recording(root, configs, split):
        seen.append((str(root), split))
        return real(root, configs, split)

    monkeypatch.setattr(benchmark_module, "load_local", recording)
    return seen


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    pairs = [(ex.prompt, ex.response) for name in ("math", "reasoning", "vqa")
             for ex in tasks.TASKS[name].examples("train", 30)]
    tokenizer = pretrain.train_tokenizer([p + "\n" + r for p, r in pairs], vocab_size=300)
    model = tiny_chat_model(tokenizer, 0.02, num_hidden_layers=2, intermediate_size=64)
    return save_model_dir(model, tokenizer, tmp_path_factory.mktemp("models") / "text")


def run_cli(argv: list[str], capsys, monkeypatch) -> dict:
    monkeypatch.setattr(sys, "argv", ["t2demo", *argv])
    cli.main(argv)
    return json.loads(capsys.readouterr().out)


def test_cli_trains_the_math_expert_on_gsm8k_never_reading_test(text_dir, tmp_path, capsys, monkeypatch, splits_read):
    monkeypatch.setattr(experts, "EXPERTS_DIR", tmp_path / "experts")
    data = FIXTURES / "gsm8k"
    summary = run_cli(["train-expert", "--task", "gsm8k", "--data", str(data), "--model", str(text_dir), *SMALL],
                      capsys, monkeypatch)
    out = tmp_path / "experts" / "text" / "math.safetensors"  # named by the category: report scores gsm8k with it
    assert summary["out"] == str(out) and summary["steps"] == 2
    assert {split for _, split in splits_read} == {"train"}  # GSM8K has no validation split: held out of train
    notes = load_expert(out).notes
    assert (notes["task"], notes["benchmark"], notes["category"], notes["source"]) == ("gsm8k", "gsm8k", "math", str(data))
    assert notes["test_split"] == "never read" and notes["command"].startswith("python -m t2demo train-expert --task gsm8k")
    validation = notes["validation"]  # the held-out slice, row by row: min(val_n, rows // 2) of the fixture's 3
    assert validation["split"] == "train (held out)" and validation["of_rows"] == 3 and len(validation["held_out_rows"]) == 1
    assert notes["train_rows"] == 2
    view = training_task("gsm8k", [str(data)], "rl", 4)
    held = {e.prompt for e in view.examples("validation", 4)}
    assert held and not held & {e.prompt for e in view.examples("train", 8)}  # never trained on
    # the default file now holds gsm8k's expert: training the synthetic math task there is refused, not overwritten
    with pytest.raises(SystemExit, match=r"math\.safetensors holds an expert trained on gsm8k, not math; pass --out"):
        cli.main(["train-expert", "--task", "math", "--model", str(text_dir), *SMALL])
    assert load_expert(out).notes["task"] == "gsm8k"


def test_arc_easy_validates_on_its_own_validation_split(text_dir, tmp_path, splits_read):
    cfg = train.ExpertConfig(steps=1, batch_size=2, rollouts=2, val_n=2, train_n=4, eval_every=1, eval_batch_size=4)
    out = tmp_path / "reasoning.safetensors"
    summary = train.run("arc-easy", str(text_dir), cfg, out, device="cpu", data=[str(FIXTURES / "ai2_arc")])
    assert summary["steps"] == 1 and summary["log"][0]["grad_norm"] > 0
    assert {split for _, split in splits_read} == {"train", "validation"}
    notes = load_expert(out).notes
    assert notes["benchmark"] == "arc-easy" and notes["validation"] == {"split": "validation"}
    assert notes["train_rows"] == 3 and notes["source"] == str(FIXTURES / "ai2_arc")


def test_gsm8k_next_token_trains_on_the_worked_solutions(text_dir, tmp_path, splits_read):
    cfg = train.ExpertConfig(objective="ntp", steps=2, batch_size=2, val_n=2, train_n=4, eval_every=2, lr=0.1)
    summary = train.run("gsm8k", str(text_dir), cfg, tmp_path / "m.safetensors", device="cpu",
                        data=[str(FIXTURES / "gsm8k")])
    losses = [s["loss"] for s in summary["log"]]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert "test" not in {split for _, split in splits_read}


def test_mbpp_is_rewarded_by_its_tests_in_the_sandbox(text_dir, tmp_path, splits_read):
    data = tmp_path / "mbpp"
    shutil.copytree(FIXTURES / "mbpp", data)
    row = {"task_id": 601, "text": "Write a function to double a number.", "code": "def double(n):\r\n    return 2 * n",
           "test_list": ["assert double(2) == 4", "assert double(0) == 0", "assert double(-3) == -6"],
           "test_setup_code": "", "challenge_test_list": []}
    (data / "full" / "validation.jsonl").write_text(json.dumps(row) + "\n")
    view = training_task("mbpp", [str(data)], "rl", 4)
    examples = list(view.examples("train", 8))
    # the reward is pass@1: a batch's programs run in the sandbox together
    assert view.check_many(examples, [e.response for e in examples]) == [True] * 3
    assert view.check_many(examples[:2], ["```python\ndef nothing():\n    pass\n```", "no code"]) == [False, False]
    cfg = train.ExpertConfig(steps=1, batch_size=2, rollouts=2, val_n=1, train_n=4, eval_every=1)
    summary = train.run("mbpp", str(text_dir), cfg, tmp_path / "code.safetensors", device="cpu", data=[str(data)])
    assert summary["steps"] == 1 and load_expert(tmp_path / "code.safetensors").notes["validation"] == {"split": "validation"}
    assert {split for _, split in splits_read} == {"train", "validation"}


@dataclass(frozen=True)
class HalfRight:
    """A task scored like VQA, with a fraction: every answer earns 0.3."""

    name: str = "half"
    max_new_tokens: int = 1

    def examples(self, split: str, n: int, seed: int = 0) -> list[tasks.Example]:
        return [tasks.Example(f"Say a word ({i}).", "", "apple", "half") for i in range(n)]

    def check_many(self, examples, responses) -> list[float]:
        return [0.3] * len(responses)


def test_a_fractional_score_is_a_reward_between_minus_one_and_one(text_dir, tmp_path):
    lm = LoadedModel.wrap(*pretrain_pair(text_dir))
    cfg = train.ExpertConfig(steps=1, batch_size=2, rollouts=1, val_n=2, train_n=2, eval_every=1, kl_coef=0.0)
    summary = train.train_expert(lm, HalfRight(), cfg, tmp_path / "h.safetensors", progress_bar=False)
    assert summary["log"][0]["reward"] == pytest.approx(-0.4)  # 2 · 0.3 − 1 (booleans: +1 / −1 as before)
    assert summary["best_val_accuracy"] == pytest.approx(30.0)


def pretrain_pair(text_dir):
    from transformers import AutoTokenizer, LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(text_dir).eval(), AutoTokenizer.from_pretrained(text_dir)


def test_textvqa_trains_the_vision_model(text_dir, tmp_path, splits_read):
    model, processor = pretrain.build_vision_model(text_dir, tile=32, patch=8)
    model.eval()
    lm = LoadedModel.wrap(model, processor)
    view = training_task("textvqa", [str(FIXTURES / "textvqa")], "rl", 2)
    assert isinstance(view, BenchmarkTraining) and view.vision
    cfg = train.ExpertConfig(steps=1, batch_size=2, rollouts=2, val_n=2, train_n=2, eval_every=1)
    summary = train.train_expert(lm, view, cfg, tmp_path / "vqa.safetensors", progress_bar=False)
    assert summary["log"][0]["grad_norm"] > 0
    assert {split for _, split in splits_read} == {"train", "validation"}  # TextVQA's test split: never
    notes = load_expert(tmp_path / "vqa.safetensors", SVF(model)).notes
    assert notes["benchmark"] == "textvqa" and notes["validation"] == {"split": "validation"}


@pytest.mark.parametrize("argv, message", [
    (["--task", "humaneval", "--data", str(FIXTURES / "humaneval")],
     r"humaneval has no train split \(its official splits: test, for evaluation only\), so no expert trains on it; "
     r"its category's expert \(code\) trains on mbpp"),
    (["--task", "arc-easy", "--data", str(FIXTURES / "ai2_arc"), "--objective", "ntp"],
     r"arc-easy cannot train with --objective ntp: ARC gives only the answer key .*--objective rl"),
    (["--task", "arc-challenge", "--objective", "ntp"], r"arc-challenge cannot train with --objective ntp"),
    (["--task", "gsm8k", "--data", str(FIXTURES / "gsm8k" / "main" / "test.jsonl")],
     r"--data .*test\.jsonl: training reads a benchmark's train split and never its test split, and this file's "
     r"name does not say it is the train split; pass the folder"),
    (["--task", "math-hard"], r"--task math-hard: choose a training task \(math, code, reasoning, vqa, cls\) or a benchmark with a "
                              r"train split \(gsm8k, competition-math, mbpp, arc-easy, arc-challenge, textvqa, okvqa\)"),
    (["--task", "math", "--data", str(FIXTURES / "gsm8k")], r"--data is for benchmarks; math is a synthetic task"),
    (["--task", "gsm8k", "--data", str(FIXTURES / "nowhere")], r"--data .*nowhere: no such file or folder"),
])
def test_what_cannot_be_trained_is_refused_with_a_message(argv, message, splits_read):
    with pytest.raises(SystemExit, match=f"^train-expert: {message}"):  # before any model or data is loaded
        cli.main(["train-expert", *argv, "--model", "/nonexistent-model", "--out", "x.safetensors"])
    assert not splits_read


def test_training_never_reads_the_test_split():
    view = training_task("arc-easy", [str(FIXTURES / "ai2_arc")])
    with pytest.raises(BenchmarkDataError, match="training reads the train and validation splits only, never test"):
        view.examples("test", 2)


def test_a_checkpoint_resumes_only_on_the_same_data(text_dir, tmp_path):
    cfg = train.ExpertConfig(steps=1, batch_size=2, rollouts=2, val_n=2, train_n=4, eval_every=1)
    out = tmp_path / "m.safetensors"
    train.run("gsm8k", str(text_dir), cfg, out, device="cpu", data=[str(FIXTURES / "gsm8k")])
    copy = tmp_path / "gsm8k-copy"
    shutil.copytree(FIXTURES / "gsm8k", copy)
    with pytest.raises(train.CheckpointMismatch, match=r"another run .*'source'"):
        train.run("gsm8k", str(text_dir), cfg, out, device="cpu", data=[str(copy)])

"""Tables 1 and 2 (t2demo/report.py) end to end on tiny random models with tiny experts."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from conftest import favour, save_model_dir, tiny_chat_model

from t2demo import cli, evaluate, pretrain, report, tasks, train
from t2demo.adapt.adapter import Adapter
from t2demo.atomic import write_json_atomic
from t2demo.experts import Expert, save_expert
from t2demo.models import LoadedModel
from t2demo.svf import SVF
from t2demo.tasks import handwritten
from t2demo.tasks.registry import BENCHMARKS


@pytest.fixture(scope="module")
def tokenizer():
    texts = [ex.prompt + "\n" + ex.response for name in ("math", "code", "reasoning", "vqa", "smalltalk")
             for ex in tasks.TASKS[name].examples("train", 20)]
    texts += [ex.prompt + "\n" + ex.response for ex in tasks.classification_examples("train", 20)]
    return pretrain.train_tokenizer(texts, vocab_size=300)


def text_model(tokenizer):
    return tiny_chat_model(tokenizer, init=0.3)


@pytest.fixture(scope="module")
def text_dir(tokenizer, tmp_path_factory):
    return save_model_dir(text_model(tokenizer), tokenizer, tmp_path_factory.mktemp("models") / "text")


def vision_model(text_dir) -> LoadedModel:
    model, processor = pretrain.build_vision_model(text_dir, tile=32, patch=8)
    return LoadedModel.wrap(model.eval(), processor)


def write_expert(model, folder, stem: str, targets: str = "mlp", seed: int = 1) -> None:
    """A random SVF expert (z = 1 + 0.5·noise), far enough from 1 to change the answers."""
    svf = SVF(model, targets)
    g = torch.Generator().manual_seed(seed)
    z = {n: 1 + 0.5 * torch.randn(r, generator=g) for n, r in svf.ranks.items()}
    save_expert(Expert.from_svf(svf, z, stem.split("-")[0], notes={"objective": "rl", "targets": targets}),
                folder / f"{stem}.safetensors")


def sides(tokenizer, text_dir, root) -> tuple[report.Side, report.Side]:
    return (report.Side("tiny-text", False, root / "text", lambda: LoadedModel.wrap(text_model(tokenizer), tokenizer)),
            report.Side("tiny-vlm", True, root / "vlm", lambda: vision_model(text_dir)))


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def check_result(r: dict, n: int) -> None:
    """A measured row: percent in [0, 100] inside its Wilson interval, on n examples."""
    assert r["n"] == n and 0 <= r["accuracy"] <= 100
    lo, hi = r["ci95"]
    assert 0 <= lo <= r["accuracy"] <= hi <= 100
    assert [lo, hi] == list(evaluate.wilson_interval(round(r["accuracy"] * n / 100), n))


def test_paired_difference_by_hand():
    a = [1, 1, 1, 0, 1, 0, 1, 1, 0, 1]
    b = [0, 1, 0, 0, 1, 0, 1, 0, 0, 1]
    # differences: three +1, seven 0 -> mean 0.3, sample variance (3·0.7² + 7·0.3²)/9 = 0.2333…,
    # half width 1.96·√(0.2333…/10) = 0.29940
    assert report.paired_difference(a, b) == {"difference": 30.0, "ci95": [0.06, 59.94], "n": 10}
    assert report.paired_difference(b, a)["ci95"] == [-59.94, -0.06]
    assert report.paired_difference([1, 1], [0, 0])["ci95"] == [100.0, 100.0]  # clipped, no spread
    assert report.paired_difference([1], [0])["ci95"] == [-100.0, 100.0]  # one example says nothing
    with pytest.raises(ValueError, match="same examples"):
        report.paired_difference([1, 0], [1])


def test_table1_end_to_end(tokenizer, text_dir, tmp_path):
    text, vision = sides(tokenizer, text_dir, tmp_path)
    model = text.loaded.model
    for stem, targets, seed in (("math", "mlp", 1), ("math-ntp", "mlp", 2), ("reasoning", "mlp", 4)):
        write_expert(model, text.experts, stem, targets, seed)
    write_expert(vision.loaded.model, vision.experts, "vqa", seed=5)
    cfg = train.ExpertConfig(method="lora", steps=1, batch_size=2, val_n=2, train_n=2, eval_every=1, lr=0.5, grad_clip=0.0,
                             rollouts=1)
    train.train_expert(LoadedModel.wrap(text_model(tokenizer), tokenizer), tasks.TASKS["math"], cfg,
                       text.experts / "math-lora", progress_bar=False)
    before = snapshot(model)
    out = tmp_path / "t1.json"
    result = report.table1(text, vision, limit=3, batch_size=2, progress=False,
                           on_task=lambda r: write_json_atomic(out, r), shuffles=2)

    assert json.loads(out.read_text()) == json.loads(json.dumps(result))  # the last write has everything
    assert list(result["tasks"]) == list(tasks.TRAINING_TASKS) and result["limit"] == 3
    rows = result["tasks"]["math"]["rows"]
    assert list(rows) == ["base", "lora", "svf", "svf-shuffled", "svf-ntp"]  # svf is REINFORCE: no -rl row
    assert "svf-rl" in result["tasks"]["code"]["rows"]  # no shipped code expert: both ablations are looked for
    for name, entry in result["tasks"].items():
        assert entry["n"] == 3 and "base" in entry["rows"]
        for r in entry["rows"].values():
            if "missing" not in r:
                check_result(r, 3)
    for row in ("svf", "svf-shuffled", "svf-ntp"):
        assert rows[row]["trainable"] == train.parameter_counts(model, "mlp")["svf"]
        assert rows[row]["trained"]["targets"] == "mlp"
    assert rows["lora"]["trainable"] == train.parameter_counts(model, "mlp", 4)["lora"]
    assert rows["lora"]["trained"]["objective"] == "rl" and rows["lora"]["trained"]["steps_done"] == 1
    # the svf row is the expert's accuracy, and Δ is paired against the base row's examples
    examples = tasks.TASKS["math"].examples("test", 3)
    svf = SVF(model)
    with svf.adapted(report.load_expert(text.experts / "math.safetensors", svf).z):
        adapted = evaluate.score_task(text.loaded, tasks.TASKS["math"], examples, progress=False)
    base = evaluate.score_task(text.loaded, tasks.TASKS["math"], examples, progress=False)
    assert rows["svf"]["accuracy"] == evaluate.summarise(adapted)["accuracy"]
    assert rows["svf"]["vs_base"] == report.paired_difference(adapted, base)
    # the control: each example's outcome averaged over the shuffles, each shuffle's accuracy kept
    draws = []
    for seed in range(2):
        with svf.adapted(report.shuffled_z(report.load_expert(text.experts / "math.safetensors", svf).z, seed)):
            draws.append(evaluate.score_task(text.loaded, tasks.TASKS["math"], examples, progress=False))
    control = [(a + b) / 2 for a, b in zip(*draws)]
    assert rows["svf-shuffled"]["vs_base"] == report.paired_difference(control, base)
    assert rows["svf-shuffled"]["shuffles"] == 2 and result["control_shuffles"] == 2
    assert rows["svf-shuffled"]["per_shuffle"] == [evaluate.summarise(d)["accuracy"] for d in draws]
    assert rows["svf-shuffled"]["accuracy"] == round(100 * sum(control) / 3, 2)
    # missing files: a note with the exact command that writes them where they are looked up
    ntp = text.experts / "code-ntp.safetensors"
    code = result["tasks"]["code"]["rows"]
    assert code["svf-ntp"] == {"missing": "missing (train with: python -m t2demo train-expert --task code "
                                          f"--model tiny-text --objective ntp --out {ntp})"}
    assert code["svf"]["missing"].endswith(f"--task code --model tiny-text --out {text.experts / 'code.safetensors'})")
    assert code["lora"]["missing"].endswith(f"--method lora --out {text.experts / 'code-lora'})")
    assert "--task vqa --model tiny-vlm --method lora" in result["tasks"]["vqa"]["rows"]["lora"]["missing"]
    assert "trainable" in result["tasks"]["vqa"]["rows"]["svf"]
    # the LoRA adapter was unloaded and every SVF engine restored the base weights
    after = snapshot(model)
    assert before.keys() == after.keys() and all(torch.equal(before[n], after[n]) for n in before)
    table = report.format_table1(result)
    assert "svf-shuffled" in table and "missing (train with:" in table and "code-ntp" in table
    assert "math svf-shuffled: each example's outcome averaged over 2 shuffles" in table


@dataclass(frozen=True)
class RecordingTask:
    """Records each response by prompt; the outcome is whether the example's reference says "yes"."""

    answers: dict
    name: str = "recording"
    max_new_tokens: int = 12

    def check_many(self, examples, responses) -> list[bool]:
        self.answers.update((e.prompt, r) for e, r in zip(examples, responses))
        return [e.reference == "yes" for e in examples]


def test_grouped_second_pass_equals_per_prompt_adaptation(tokenizer, monkeypatch):
    model = text_model(tokenizer)
    svf = SVF(model)
    g = torch.Generator().manual_seed(0)
    experts = [Expert.from_svf(svf, {n: 1 + 0.5 * torch.randn(r, generator=g) for n, r in svf.ranks.items()}, label)
               for label in ("math", "code", "reasoning")]
    adapter = Adapter(LoadedModel.wrap(model, tokenizer), experts, svf=svf)
    prompts = [ex.prompt for ex in tasks.TASKS["math"].examples("test", 7)]
    examples = [tasks.Example(p, "yes" if i % 3 else "no", "", "recording") for i, p in enumerate(prompts)]
    alphas = [[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 0]]
    passes = [adapter.first_pass(ex.prompt, strategy="manual", alpha=a) for ex, a in zip(examples, alphas)]
    answers: dict = {}
    task = RecordingTask(answers)
    calls = []
    real = svf.adapted
    monkeypatch.setattr(svf, "adapted", lambda z: calls.append(z) or real(z))
    outcomes = report.score_grouped(adapter, task, examples, passes, batch_size=2)
    assert len(calls) == 4  # one weight swap per distinct α, not per prompt
    assert outcomes == [ex.reference == "yes" for ex in examples]  # back in the examples' order
    monkeypatch.undo()
    for ex, a in zip(examples, alphas):
        _, stream = adapter.answer(ex.prompt, strategy="manual", alpha=a, max_new_tokens=task.max_new_tokens)
        assert answers[ex.prompt] == "".join(stream)
    assert len(set(answers.values())) > 1  # the experts do change the answers


def test_dispatch_confusion_counts(tokenizer):
    model = text_model(tokenizer)
    adapter = Adapter(LoadedModel.wrap(model, tokenizer), [])
    examples = tasks.classification_examples("test", 10)
    per_category = {c: sum(ex.reference == c for ex in examples) for c in tasks.CATEGORIES}
    free = report.dispatch_confusion(adapter, examples, "prompt")
    assert {c: sum(row.values()) for c, row in free["confusion"].items()} == per_category
    check_result(free, 10)
    assert free["accuracy"] == 10 * sum(free["confusion"][c][c] for c in tasks.CATEGORIES)
    # a head biased towards one label sends every prompt there: one column, accuracy 2/10; vqa too, which
    # scores the first pass's reading (the sets' vqa prompts come without their image)
    for label in ("reasoning", "vqa"):
        hook = favour(model, tokenizer, label)
        forced = report.dispatch_confusion(adapter, examples, "prompt")
        hook.remove()
        assert forced["accuracy"] == 20.0
        assert all(row == {c: per_category[true] if c == label else 0 for c in tasks.CATEGORIES}
                   for true, row in forced["confusion"].items())


def test_table2_end_to_end(tokenizer, text_dir, tmp_path, monkeypatch):
    text, vision = sides(tokenizer, text_dir, tmp_path)
    for seed, label in enumerate(("math", "code", "reasoning", "cls")):
        write_expert(text.loaded.model, text.experts, label, seed=seed)
    write_expert(vision.loaded.model, vision.experts, "vqa", seed=9)
    shots, fits = [], []
    real_fit = Adapter.fit
    monkeypatch.setattr(Adapter, "fit", lambda self, examples, task, **kw: shots.append(examples) or
                        fits.append(kw) or real_fit(self, examples, task, **kw))
    before = snapshot(text.loaded.model)
    result = report.table2(text, vision, limit=2, batch_size=2, task_names=("math-hard", "vqa-knowledge"), cls_limit=5,
                           fewshot_n=3, population=2, generations=1, fast=True, progress=False)
    json.dumps(result)  # JSON-ready
    assert result["fewshot"] == {"n": 3, "split": "validation", "population": 2, "generations": 1, "seed": 0,
                                 "fast": True, "vertices": True, "draws": 1}
    assert all(kw["fast"] is True and kw["population"] == 2 for kw in fits)
    # the experts as the app loads them (experts.load_model_experts: by label, own before transferred)
    assert result["tasks"]["math-hard"]["experts"] == ["code", "math", "reasoning"]
    assert result["tasks"]["vqa-knowledge"]["experts"] == ["vqa", "code", "math", "reasoning"]  # text ones transferred
    for name, entry in result["tasks"].items():
        rows = entry["rows"]
        assert list(rows) == ["base", "prompt", "cls", "fewshot"] and entry["n"] == 2
        for method, r in rows.items():
            check_result(r, 2)
            assert r["seconds"]["second_pass_per_prompt"] > 0 and r["seconds"]["second_pass_alone"] > 0
        for method in ("prompt", "cls"):
            assert rows[method]["seconds"]["first_pass_per_prompt"] > 0 and sum(rows[method]["chosen"].values()) == 2
        assert rows["fewshot"]["seconds"]["cem"] > 0
        assert torch.tensor(rows["fewshot"]["alpha"]).shape == (len(entry["experts"]),)
        best = rows["fewshot"]["vs_best_expert"]  # paired, on the same prompts
        assert best["expert"] in entry["experts"] and best["n"] == 2
        assert best["difference"] == pytest.approx(rows["fewshot"]["accuracy"] - best["accuracy"])
    # few-shot α is fitted on validation examples, never on the test ones
    assert [len(s) for s in shots] == [3, 3]
    assert all(tasks.split_of(ex.prompt) == "validation" for ex in shots[0])
    for strategy in ("prompt", "cls"):
        d = result["dispatch"][strategy]
        check_result(d, 5)
        assert sum(sum(row.values()) for row in d["confusion"].values()) == 5
        for key in handwritten.SETS:  # every prompt of each hand-written set, once
            hand = result[key][strategy]
            assert hand["n"] == result[key]["n"] == len(handwritten.dispatch_prompts(key))
            assert sum(sum(row.values()) for row in hand["confusion"].values()) == hand["n"]
    assert "matrix" not in result  # matrix_limit 0: skipped
    after = snapshot(text.loaded.model)
    assert all(torch.equal(before[n], after[n]) for n in before)
    table = report.format_table2(result)
    assert "CEM" in table and "Dispatch cls" in table and "vqa-knowledge" in table and "fitness: log-likelihood" in table
    assert "Few-shot against the best single expert" in table and "starting at the box vertices" in table
    ratio = [line for line in table.splitlines() if line.split()[:2] == ["math-hard", "prompt"]][-1].split()[4]
    seconds = result["tasks"]["math-hard"]["rows"]["prompt"]["seconds"]
    assert ratio == f"{100 * seconds['first_pass_per_prompt'] / seconds['second_pass_alone']:.1f}%"


def test_table2_fewshot_draws_refit_on_other_shots_and_report_their_mean(tokenizer, text_dir, tmp_path, monkeypatch):
    """With draws = 3 the few-shot row is draw 0, and draws 1 and 2 fit on other validation shots (seeds 1, 2, CEM
    seeded the same) and score the same test prompts; the mean over the draws comes with its t interval."""
    text, _ = sides(tokenizer, text_dir, tmp_path)
    for seed, label in enumerate(("math", "code", "reasoning", "cls")):
        write_expert(text.loaded.model, text.experts, label, seed=seed)
    fits, scored = [], []
    real_fit, real_score = Adapter.fit, report.score_grouped
    monkeypatch.setattr(Adapter, "fit", lambda self, examples, task, **kw: fits.append((examples, kw["seed"])) or
                        real_fit(self, examples, task, **kw))
    monkeypatch.setattr(report, "score_grouped", lambda adapter, task, examples, passes, *a, **kw: scored.append(
        (examples, passes[0][0].strategy)) or real_score(adapter, task, examples, passes, *a, **kw))
    result = report.table2(text, None, limit=2, batch_size=2, task_names=("world-math",), cls_limit=2, fewshot_n=3,
                           population=2, generations=1, fast=True, progress=False, draws=3)
    json.dumps(result)
    assert result["fewshot"]["draws"] == 3
    row = result["tasks"]["world-math"]["rows"]["fewshot"]
    draws = row["draws"]
    assert [seed for _, seed in fits] == [0, 1, 2] and [d["seed"] for d in draws["per_draw"]] == [0, 1, 2]
    assert fits[1][0] != fits[0][0] and fits[2][0] != fits[0][0]  # other shots
    assert all(tasks.split_of(ex.prompt) == "validation" for shots, _ in fits for ex in shots)
    few = [examples for examples, strategy in scored if strategy == "fewshot"]
    assert len(few) == 3 and few[1] == few[0] == few[2]  # every draw scores the same test prompts
    first = draws["per_draw"][0]
    assert (first["accuracy"], first["alpha"], first["vs_best_expert"]) == (row["accuracy"], row["alpha"],
                                                                            row["vs_best_expert"])
    accuracies = [d["accuracy"] for d in draws["per_draw"]]
    assert draws["accuracy"] == evaluate.mean_interval(accuracies) and draws["accuracy"]["n"] == 3
    assert draws["vs_best_expert"] == evaluate.mean_interval([d["vs_best_expert"]["difference"]
                                                              for d in draws["per_draw"]])
    table = report.format_table2(result)
    assert "mean over 3 draws" in table and table.count("draw seed") == 3


def test_table2_builds_the_expert_matrix_on_the_chosen_tasks_model(tokenizer, text_dir, tmp_path):
    """With only a vision task chosen, the matrix is the vision model's: its own and the transferred experts
    on the vision tasks; the text matrix (no text task chosen) is not computed."""
    text, vision = sides(tokenizer, text_dir, tmp_path)
    for seed, label in enumerate(("math", "code", "reasoning", "cls")):
        write_expert(text.loaded.model, text.experts, label, seed=seed)
    write_expert(vision.loaded.model, vision.experts, "vqa", seed=9)
    result = report.table2(text, vision, limit=1, batch_size=2, task_names=("vqa-knowledge",), cls_limit=2,
                           fewshot_n=2, population=2, generations=1, fast=True, progress=False, matrix_limit=1)
    assert "matrix" not in result and list(result["matrix_vision"]["tasks"]) == ["vqa", "vqa-knowledge"]
    assert list(result["matrix_vision"]["tasks"]["vqa"]) == ["base", "vqa", "code", "math", "reasoning"]
    assert "Expert × task on the vision model" in report.format_table2(result)


def test_expert_matrix_scores_each_expert_alone_against_the_base(tokenizer, text_dir, tmp_path):
    text, _ = sides(tokenizer, text_dir, tmp_path)
    for seed, label in enumerate(("math", "code", "reasoning", "cls")):
        write_expert(text.loaded.model, text.experts, label, seed=seed)
    adapter, notes, _ = report.build_adapter(text, text)
    matrix = report.expert_matrix(adapter, ["math", "reasoning"], limit=2, batch_size=2)
    assert not notes and list(matrix) == ["math", "reasoning"]
    examples = tasks.TASKS["reasoning"].examples("test", 2)
    base = evaluate.score_task(text.loaded, tasks.TASKS["reasoning"], examples, progress=False)
    math = next(e for e in adapter.experts if e.label == "math")
    with adapter.svf.adapted(math.z):
        alone = evaluate.score_task(text.loaded, tasks.TASKS["reasoning"], examples, progress=False)
    assert list(matrix["reasoning"]) == ["base", "code", "math", "reasoning"]
    assert matrix["reasoning"]["math"]["vs_base"] == report.paired_difference(alone, base)
    lines = report._matrix_lines({"n": 2, "tasks": matrix}, "text")
    assert lines[1].startswith("Expert × task on the text model") and lines[-1].split()[0] == "reasoning"


def test_alone_scores_scores_each_model_and_examples_once(tokenizer, text_dir, tmp_path, monkeypatch):
    """Table 2's base row, few-shot comparison and expert × task matrix share one AloneScores: the same
    (model, expert, task, examples) is scored once, other examples or another expert are scored anew."""
    text, _ = sides(tokenizer, text_dir, tmp_path)
    for seed, label in enumerate(("math", "code", "reasoning", "cls")):
        write_expert(text.loaded.model, text.experts, label, seed=seed)
    adapter, _, _ = report.build_adapter(text, text)
    calls = []
    real = report.score_task
    monkeypatch.setattr(report, "score_task", lambda lm, task, ex, *a: calls.append(len(ex)) or real(lm, task, ex, *a))
    alone, task, math = report.AloneScores(2, False), tasks.TASKS["math"], next(e for e in adapter.experts if e.label == "math")
    two, three = task.examples("test", 2), task.examples("test", 3)
    base = alone(adapter, None, task, two)
    assert alone(adapter, None, task, task.examples("test", 2)) == base and calls == [2]
    assert alone(adapter, None, task, three)[:2] == base and calls == [2, 3]
    with adapter.svf.adapted(math.z):
        expected = real(adapter.lm, task, two, 2, False)
    assert alone(adapter, math, task, two) == expected and alone(adapter, math, task, two) == expected
    assert calls == [2, 3, 2]


def test_table2_missing_experts_give_train_commands(tokenizer, text_dir, tmp_path):
    text, _ = sides(tokenizer, text_dir, tmp_path)
    write_expert(text.loaded.model, text.experts, "math")
    result = report.table2(text, None, limit=2, batch_size=2, task_names=("math-hard",), cls_limit=5, progress=False)
    rows = result["tasks"]["math-hard"]["rows"]
    check_result(rows["base"], 2)
    for method in ("prompt", "cls", "fewshot"):
        note = rows[method]["missing"]
        assert f"--task code --model tiny-text --out {text.experts / 'code.safetensors'})" in note
        assert "--task reasoning" in note and "--task math " not in note  # math is there
    check_result(result["dispatch"]["prompt"], 5)  # prompt dispatch needs no expert
    assert "--task cls" in result["dispatch"]["cls"]["missing"]
    assert "missing (train with:" in report.format_table2(result)


def test_cli_report(text_dir, tmp_path, capsys):
    out = tmp_path / "t1.json"
    cli.main(["report", "table1", "--model", str(text_dir), "--tasks", "math", "--limit", "2", "--batch-size", "2",
              "--experts", str(tmp_path / "experts"), "--json", str(out), "--device", "cpu"])
    printed = capsys.readouterr().out
    expected = tmp_path / "experts" / "text" / "math.safetensors"
    assert f"--task math --model {text_dir} --out {expected})" in printed
    data = json.loads(out.read_text())
    assert list(data["tasks"]) == ["math"] and data["tasks"]["math"]["rows"]["base"]["n"] == 2
    with pytest.raises(SystemExit, match="must be among"):
        cli.main(["report", "table1", "--tasks", "math-hard"])


def test_the_app_check_takes_a_category_s_text_tasks_in_turn():
    from t2demo import app_check

    examples = app_check.category_examples("math", 7)
    assert [e.task for e in examples] == ["math", "math-hard", "world-math"] * 2 + ["math"]
    assert all(tasks.split_of(e.prompt) == "test" for e in examples)


def test_the_app_check_takes_vqa_questions_with_their_images():
    from t2demo import app_check

    examples = app_check.category_examples("vqa", 3)
    assert [e.task for e in examples] == ["vqa", "vqa-knowledge", "vqa"] and all(e.image is not None for e in examples)
    with pytest.raises(SystemExit, match="unknown \\['poetry'\\]"):
        cli.main(["report", "app", "--categories", "math,poetry"])


# ----------------------------------------------------------------------------- the paper's benchmarks

BENCH_FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    """`datasets` writes its Arrow copies under the test's folder, never into the user's cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def bench(name: str, folder: str, max_new_tokens: int = 8):
    """A benchmark reading its fixture, with a short generation budget (a random model never stops)."""
    return replace(BENCHMARKS[name].with_data(BENCH_FIXTURES / folder), max_new_tokens=max_new_tokens)


def test_paired_difference_of_soft_scores():
    # VQA's soft accuracy: differences 0.7, -0.3, 0 -> mean 0.1333…
    assert report.paired_difference([1.0, 0.3, 0.6], [0.3, 0.6, 0.6])["difference"] == 13.33


def test_table1_on_benchmarks(tokenizer, text_dir, tmp_path, datasets_cache):
    text, vision = sides(tokenizer, text_dir, tmp_path)
    write_expert(text.loaded.model, text.experts, "math", seed=1)
    write_expert(vision.loaded.model, vision.experts, "vqa", seed=5)
    gsm8k, textvqa = bench("gsm8k", "gsm8k"), bench("textvqa", "textvqa")
    result = report.table1(text, vision, limit=3, batch_size=2, task_names=[gsm8k, textvqa], progress=False)
    json.dumps(result)
    assert list(result["tasks"]) == ["gsm8k", "textvqa"]
    gsm, vqa = result["tasks"]["gsm8k"], result["tasks"]["textvqa"]
    assert (gsm["split"], gsm["metric"], gsm["source"], gsm["n"]) == ("test", "accuracy", str(BENCH_FIXTURES / "gsm8k"), 3)
    assert (vqa["split"], vqa["metric"], vqa["n"]) == ("validation", "VQA accuracy", 3)  # test answers withheld
    # scored with the category's expert and its control; the missing files are the category's, trained on the benchmark
    assert list(gsm["rows"]) == ["base", "lora", "svf", "svf-shuffled", "svf-ntp"]
    assert gsm["rows"]["svf"]["source"] == str(text.experts / "math.safetensors")
    assert gsm["rows"]["lora"]["missing"].endswith(f"--task gsm8k --model tiny-text --data gsm8k={BENCH_FIXTURES / 'gsm8k'} "
                                                   f"--method lora --out {text.experts / 'math-lora'})")
    assert f"--task gsm8k --model tiny-text --data gsm8k={BENCH_FIXTURES / 'gsm8k'} --objective ntp" in gsm["rows"]["svf-ntp"]["missing"]
    assert vqa["rows"]["svf"]["source"] == str(vision.experts / "vqa.safetensors")
    examples = gsm8k.examples("test", 3)
    base = evaluate.score_task(text.loaded, gsm8k, examples, progress=False)
    svf = SVF(text.loaded.model)
    with svf.adapted(report.load_expert(text.experts / "math.safetensors", svf).z):
        adapted = evaluate.score_task(text.loaded, gsm8k, examples, progress=False)
    assert gsm["rows"]["base"] == evaluate.summarise(base)
    assert gsm["rows"]["svf"]["vs_base"] == report.paired_difference(adapted, base)
    for entry in (gsm, vqa):
        for r in entry["rows"].values():
            if "missing" not in r:
                assert r["n"] == 3 and 0 <= r["accuracy"] <= 100 and "difference" in r.get("vs_base", {"difference": 0})
    table = report.format_table1(result)
    assert "textvqa: VQA accuracy on the validation split of" in table and "gsm8k" in table


def test_table2_on_benchmarks_fits_few_shot_off_the_scored_examples(tokenizer, text_dir, tmp_path, monkeypatch,
                                                                    datasets_cache):
    text, _ = sides(tokenizer, text_dir, tmp_path)
    for seed, label in enumerate(("math", "code", "reasoning", "cls")):
        write_expert(text.loaded.model, text.experts, label, seed=seed)
    shots, scored = {}, {}
    real_fit, real_score = Adapter.fit, report.score_grouped
    monkeypatch.setattr(Adapter, "fit", lambda self, examples, task, **kw: shots.setdefault(task.name, examples) and
                        real_fit(self, examples, task, **kw))
    monkeypatch.setattr(report, "score_grouped", lambda adapter, task, examples, *a, **kw: scored.setdefault(
        task.name, list(examples)) and real_score(adapter, task, examples, *a, **kw))
    gsm8k, humaneval = bench("gsm8k", "gsm8k"), bench("humaneval", "humaneval")
    result = report.table2(text, None, limit=2, batch_size=2, task_names=[gsm8k, humaneval], cls_limit=2,
                           fewshot_n=2, population=2, generations=1, fast=True, progress=False, draws=2)
    json.dumps(result)
    gsm, he = result["tasks"]["gsm8k"], result["tasks"]["humaneval"]
    assert (gsm["split"], gsm["fewshot_split"], gsm["n"]) == ("test", "train", 2)
    assert (he["split"], he["metric"], he["n"]) == ("test", "pass@1", 1)  # 3 in the fixture: 2 shots, 1 scored
    assert he["fewshot_split"] == "test (held out of the scored examples)"
    # another draw of shots would score other examples where the shots come from the scored split: one draw
    assert len(gsm["rows"]["fewshot"]["draws"]["per_draw"]) == 2 and "draws" not in he["rows"]["fewshot"]
    assert [e.prompt for e in shots["gsm8k"]] == [e.prompt for e in gsm8k.examples("train", 2)]
    assert not {e.prompt for e in shots["humaneval"]} & {e.prompt for e in scored["humaneval"]}  # never scored
    assert len(shots["humaneval"]) == 2 and len(scored["humaneval"]) == 1
    for entry, n in ((gsm, 2), (he, 1)):
        assert list(entry["rows"]) == ["base", "prompt", "cls", "fewshot"]
        for method, r in entry["rows"].items():
            check_result(r, n)
            if method != "base":
                assert set(r["vs_base"]) == {"difference", "ci95", "n"}
    assert "few-shot α fitted on train" in report.format_table2(result)
    with pytest.raises(report.BenchmarkDataError, match="humaneval: its test split, its only one, has 3 examples"):
        report.fewshot_examples(humaneval, "test", 2, 3, 0)


def test_table2_few_shot_row_says_when_a_local_copy_lacks_the_split(tokenizer, text_dir, tmp_path, datasets_cache):
    text, _ = sides(tokenizer, text_dir, tmp_path)
    for seed, label in enumerate(("math", "code", "reasoning", "cls")):
        write_expert(text.loaded.model, text.experts, label, seed=seed)
    challenge = bench("arc-challenge", "ai2_arc")  # the fixture has its test split only
    result = report.table2(text, None, limit=2, batch_size=2, task_names=[challenge], cls_limit=2, fewshot_n=2,
                           population=2, generations=1, fast=True, progress=False)
    rows = result["tasks"]["arc-challenge"]["rows"]
    assert rows["fewshot"]["missing"].startswith("no few-shot examples: no validation file under")
    check_result(rows["cls"], 2)


def test_cli_report_on_benchmarks(text_dir, tmp_path, capsys, datasets_cache):
    out = tmp_path / "t1.json"
    cli.main(["report", "table1", "--model", str(text_dir), "--tasks", "gsm8k,math", "--data",
              f"gsm8k={BENCH_FIXTURES / 'gsm8k'}", "--limit", "2", "--batch-size", "2",
              "--experts", str(tmp_path / "experts"), "--json", str(out), "--device", "cpu"])
    data = json.loads(out.read_text())
    assert list(data["tasks"]) == ["gsm8k", "math"]
    gsm = data["tasks"]["gsm8k"]
    assert gsm["source"] == str(BENCH_FIXTURES / "gsm8k") and gsm["rows"]["base"]["n"] == 2
    expected = tmp_path / "experts" / "text" / "math.safetensors"
    assert gsm["rows"]["svf"]["missing"].endswith(f"--task gsm8k --model {text_dir} --data gsm8k={BENCH_FIXTURES / 'gsm8k'} "
                                                  f"--out {expected})")
    assert "gsm8k: accuracy on the test split of" in capsys.readouterr().out
    for argv, message in ((["report", "table2", "--tasks", "gsm8k,math"], r"must be among .* got \['math'\]"),
                          (["report", "table1", "--tasks", "gsm8k,mbpp", "--data", str(BENCH_FIXTURES)],
                           "report table1: --data .* name the one it is for"),
                          (["report", "table1", "--tasks", "smalltalk"], r"report table1: unknown task\(s\)"),
                          (["report", "table2", "--tasks", "okvqa", "--data", str(BENCH_FIXTURES / "gsm8k")],
                           "report table2: no validation file under")):
        with pytest.raises(SystemExit, match=message):
            cli.main(argv + ["--model", str(text_dir), "--experts", str(tmp_path / "experts"), "--device", "cpu"])


def test_report_refuses_a_negative_number_of_control_shuffles():
    with pytest.raises(SystemExit, match="^report table1: --control-shuffles must be 0 or more, got -1$"):
        cli.main(["report", "table1", "--tasks", "math", "--control-shuffles", "-1"])

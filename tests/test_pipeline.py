"""The two-pass pipeline (dispatch, CEM, streaming second pass) on tiny random models."""

from __future__ import annotations

import itertools
import math
import threading

import pytest
import torch
from conftest import favour, save_model_dir, tiny_chat_model
from transformers import LlamaForCausalLM

from t2demo import cli, generation, pretrain, tasks
from t2demo.adapt import cem, dispatch
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import PipelineError
from t2demo.experts import Expert, ExpertError, load_expert, save_expert
from t2demo.models import LoadedModel
from t2demo.svf import SVF


@pytest.fixture(scope="module")
def tokenizer():
    texts = [ex.prompt + "\n" + ex.response for name in ("math", "code", "reasoning", "smalltalk")
             for ex in tasks.TASKS[name].examples("train", 20)]
    texts += [ex.prompt + "\n" + ex.response for ex in tasks.classification_examples("train", 20)]
    return pretrain.train_tokenizer(texts, vocab_size=300)


def text_model(tokenizer):
    return tiny_chat_model(tokenizer, 0.3, num_hidden_layers=2, intermediate_size=64)


def random_experts(svf: SVF, labels=("math", "code", "reasoning"), seed: int = 1) -> list[Expert]:
    g = torch.Generator().manual_seed(seed)
    return [Expert.from_svf(svf, {n: 1 + 0.5 * torch.randn(r, generator=g) for n, r in svf.ranks.items()}, label)
            for label in labels]


@pytest.fixture
def adapter(tokenizer):
    model = text_model(tokenizer)
    svf = SVF(model)
    cls = random_experts(svf, ("cls",), seed=7)[0]
    return Adapter(LoadedModel.wrap(model, tokenizer), random_experts(svf), cls_expert=cls, svf=svf)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def joined(stream) -> str:
    return "".join(stream)


# ----------------------------------------------------------------------------- first pass

def probabilities_one_label_at_a_time(lm: LoadedModel, prompt: str, image=None) -> torch.Tensor:
    """The reference first pass: each label's whole sequence (prompt, image, label) in its own forward,
    with the model's current weights."""
    model, tokenizer = lm.model, lm.tokenizer
    prefix = generation.format_chat(lm.preprocessor, tasks.classification_prompt(prompt), image=image is not None) + "\\boxed{"
    scores = []
    for label in tasks.CATEGORIES:
        ids = dispatch.label_ids(tokenizer, prefix, label)
        if image is None:
            enc = {"input_ids": torch.tensor([tokenizer(prefix, add_special_tokens=False)["input_ids"] + ids])}
        else:
            enc = dict(lm.preprocessor(images=[image], text=[prefix], return_tensors="pt"))
            enc["input_ids"] = torch.cat([enc["input_ids"], torch.tensor([ids])], 1)
            enc.pop("attention_mask")
        with torch.no_grad():
            logp = model(**enc).logits[0, -len(ids) - 1:-1].log_softmax(-1)
        scores.append(logp.gather(-1, torch.tensor(ids)[:, None]).sum())
    return torch.stack(scores).softmax(0)


def test_category_probabilities_match_one_label_at_a_time(adapter, tokenizer):
    probs = dispatch.category_probabilities(adapter.lm, "Tom has 3 apples. How many now?")
    assert list(probs) == list(tasks.CATEGORIES) and math.isclose(sum(probs.values()), 1.0, rel_tol=1e-5)
    # one prompt pass with its KV cache shared by the labels equals scoring each label's sequence alone
    expected = probabilities_one_label_at_a_time(adapter.lm, "Tom has 3 apples. How many now?")
    assert torch.allclose(torch.tensor(list(probs.values())), expected, atol=1e-5)
    prefix = generation.format_chat(tokenizer, tasks.classification_prompt("Tom has 3 apples. How many now?")) + "\\boxed{"
    assert any(len(dispatch.label_ids(tokenizer, prefix, c)) > 1 for c in tasks.CATEGORIES)  # multi-token labels


def test_instruction_cache_reads_the_opening_once_per_weights(adapter, tokenizer):
    prompt = "Tom has 3 apples. How many now?"
    ids = tokenizer(generation.format_chat(tokenizer, tasks.classification_prompt(prompt)) + "\\boxed{",
                    add_special_tokens=False)["input_ids"]
    head = dispatch.InstructionCache.head_ids(adapter.lm)
    assert 10 < len(head) < len(ids) and ids[:len(head)] == head  # the opening is a token prefix of the prompt
    for strategy in ("prompt", "cls", "prompt"):  # cached, for the base weights and for the cls expert's
        d, _ = adapter.first_pass(prompt, strategy=strategy)
        cls_z = adapter.cls_expert.z if strategy == "cls" else None
        with adapter.svf.adapted(cls_z):
            expected = probabilities_one_label_at_a_time(adapter.lm, prompt)
        assert torch.allclose(torch.tensor(list(d.probabilities.values())), expected, atol=1e-5)
    assert sorted(map(len, adapter.instruction_cache._entries.values())) == [3, 3]
    n, kv = adapter.instruction_cache.lookup(adapter.lm, ids, None)
    assert n == len(head) and kv.get_seq_length() == len(head)
    assert adapter.instruction_cache.lookup(adapter.lm, ids[5:], None) == (0, None)
    with pytest.raises(PipelineError, match="need the model's SVF engine"):
        dispatch.category_probabilities(adapter.lm, prompt, cache=dispatch.InstructionCache())


def test_a_favoured_label_wins_and_cls_expert_changes_the_pass(adapter, tokenizer):
    hook = favour(adapter.model, tokenizer, "reasoning")
    d, _ = adapter.first_pass("Which creature lives in the desert? Options: zib (A), mok (B).")
    hook.remove()
    assert d.category == "reasoning" and d.probabilities["reasoning"] > 0.9
    assert d.alpha == [0.0, 0.0, 1.0] and d.base_share == 0.0 and d.seconds > 0
    prompt = "Hello there!"
    base = adapter.first_pass(prompt, strategy="prompt")[0].probabilities
    cls = adapter.first_pass(prompt, strategy="cls")[0].probabilities
    with adapter.svf.adapted(adapter.cls_expert.z):
        expected = dispatch.category_probabilities(adapter.lm, prompt)
    assert cls == pytest.approx(expected, abs=1e-6) and cls != pytest.approx(base, rel=1e-2)


def test_other_means_the_exact_base_weights(adapter, tokenizer):
    before = snapshot(adapter.model)
    base_answer = generation.generate(adapter.lm, ["Hi, how are you?"], max_new_tokens=8)[0]
    hook = favour(adapter.model, tokenizer, "other")
    d, stream = adapter.answer("Hi, how are you?", max_new_tokens=8)
    assert d.category == "other" and d.alpha == [0.0, 0.0, 0.0] and d.base_share == 1.0
    assert adapter.z_from_alpha(d.alpha) is None
    hook.remove()  # the stream is lazy: the second pass runs when read
    assert joined(stream) == base_answer
    after = snapshot(adapter.model)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_a_prompt_without_an_image_is_not_served_as_vqa(adapter, tokenizer):
    """The text model has no image to read: a vqa reading leaves α to the next category read."""
    hook = favour(adapter.model, tokenizer, "vqa")
    d, _ = adapter.first_pass("What word is written in the picture?")
    hook.remove()
    assert d.reading == "vqa" and d.probabilities["vqa"] > 0.9
    rest = {c: p for c, p in d.probabilities.items() if c not in tasks.IMAGE_CATEGORIES}
    assert d.category == max(rest, key=rest.get) != "vqa"
    assert d.alpha == [1.0 if label == d.category else 0.0 for label in adapter.labels]
    assert dispatch.servable(d.probabilities, None) == rest
    assert dispatch.servable(d.probabilities, image=object()) == d.probabilities  # with an image, vqa stays


def test_soft_and_hard_alpha(adapter):
    probs = {"math": 0.5, "code": 0.2, "reasoning": 0.1, "vqa": 0.05, "other": 0.15}
    labels = adapter.labels
    assert dispatch.alpha_from_probabilities(probs, labels, "hard") == [1.0, 0.0, 0.0]
    soft = dispatch.alpha_from_probabilities(probs, labels, "soft")
    assert soft == [0.5, 0.2, 0.1]
    # soft: z' = Σ p_k z_k + (1 − Σ p)·1; hard: the argmax expert's z
    d = dispatch.Dispatch(probs, "math", soft, 0.0, "prompt", labels)
    assert d.base_share == pytest.approx(0.2)
    z = adapter.z_from_alpha(d.alpha)
    name = adapter.svf.names[0]
    want = sum(a * e.z[name] for a, e in zip(soft, adapter.experts)) + 0.2
    assert torch.allclose(z[name], want, atol=1e-6)
    hard = adapter.z_from_alpha(dispatch.Dispatch(probs, "math", [1.0, 0.0, 0.0], 0.0, "prompt", labels).alpha)
    assert torch.equal(hard[name], adapter.experts[0].z[name])


# ----------------------------------------------------------------------------- second pass

def test_stream_equals_generate(adapter, tokenizer):
    alpha = [0.6, 0.0, 0.3]
    d, stream = adapter.answer("Ann has 4 pens. Ann buys 2 more. How many pens?", strategy="manual", alpha=alpha,
                               max_new_tokens=16)
    assert d.strategy == "manual" and d.alpha == pytest.approx(alpha)
    text = joined(stream)
    with adapter.svf.adapted(adapter.z_from_alpha(d.alpha)):
        expected = generation.generate(adapter.lm, ["Ann has 4 pens. Ann buys 2 more. How many pens?"], max_new_tokens=16)[0]
    assert text == expected and text


def test_concurrent_answers_match_sequential(adapter):
    jobs = [dict(prompt="Tom has 3 cards. How many?", strategy="manual", alpha=[1.0, 0.0, 0.0]),
            dict(prompt="Tom has 3 cards. How many?", strategy="manual", alpha=[0.0, 0.7, 0.4]),
            dict(prompt="Hello friend!", strategy="prompt", mode="soft"),
            dict(prompt="Hello friend!", strategy="cls")]

    def run(job):
        d, stream = adapter.answer(**job, max_new_tokens=12)
        return d.probabilities, d.alpha, joined(stream)

    sequential = [run(job) for job in jobs]
    assert sequential[0][2] != sequential[1][2]  # different α, different answers: the test can see a mix-up
    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def worker(i):
        barrier.wait()
        results[i] = run(jobs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == sequential


def test_closing_a_stream_early_releases_the_lock(adapter):
    before = snapshot(adapter.model)
    _, stream = adapter.answer("Tom has 3 cards.", strategy="manual", alpha=[1.0, 1.0, 1.0], max_new_tokens=64)
    next(stream)
    stream.close()
    assert adapter.svf._lock.acquire(timeout=5)
    adapter.svf._lock.release()
    assert all(torch.equal(before[n], p) for n, p in adapter.model.named_parameters())


# ----------------------------------------------------------------------------- CEM

def toy_objective(target: torch.Tensor):
    return lambda a: -float(((a - target) ** 2).sum())


def test_cem_improves_is_deterministic_and_reports_each_generation():
    target = torch.tensor([0.9, 0.1, 0.6])
    seen = []
    r = cem.cem(toy_objective(target), (3,), population=16, generations=12, seed=3, callback=seen.append)
    assert [h["generation"] for h in seen] == list(range(1, 13)) and seen == r.history
    assert r.history[-1]["best"] > r.history[0]["best"] and r.fitness > -1e-3
    assert torch.allclose(r.alpha, target, atol=0.05) and r.evaluations == 16 * 12 and not r.cancelled
    again = cem.cem(toy_objective(target), (3,), population=16, generations=12, seed=3)
    assert torch.equal(again.alpha, r.alpha) and [h["alpha"] for h in again.history] == [h["alpha"] for h in r.history]
    other = cem.cem(toy_objective(target), (3,), population=16, generations=12, seed=4)
    assert not torch.equal(other.alpha, r.alpha)
    assert all(0 <= v <= 1 for h in r.history for v in h["alpha"])


def test_box_vertices_fewest_experts_first_and_constant_over_layers():
    v = cem.box_vertices((3,), 0.0, 2.0, 5)
    assert v.tolist() == [[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 2], [2, 2, 0]]
    layered = cem.box_vertices((3, 4), 0.0, 1.0, 8)
    assert layered.shape == (8, 3, 4) and torch.equal(layered[:, :, 0:1].expand(-1, -1, 4), layered)
    assert {tuple(row) for row in layered[:, :, 0].tolist()} == set(itertools.product((0.0, 1.0), repeat=3))


def test_cem_starting_at_the_vertices_finds_a_two_expert_corner():
    """A peak at (1, 0, 0, 1) on a plateau, as vqa-knowledge's vqa + reasoning mixture (pilots/cem-search/):
    the Gaussian start around 1/K settles on the plateau; the vertices start scores the corner first."""
    corner = torch.tensor([1.0, 0.0, 0.0, 1.0])
    objective = lambda a: 1.0 if float((a - corner).abs().max()) < 0.1 else 0.5 - 0.01 * float((a - 0.25).abs().sum())
    found = cem.cem(objective, (4,), population=32, generations=10, seed=0)
    missed = cem.cem(objective, (4,), population=32, generations=10, seed=0, vertices=False)
    assert torch.equal(found.alpha, corner) and found.fitness == 1.0
    assert missed.fitness < 1.0


def test_cem_can_be_cancelled():
    stopped = cem.cem(toy_objective(torch.zeros(2)), (2,), population=4, generations=50,
                      callback=lambda h: h["generation"] < 3)
    assert len(stopped.history) == 3 and stopped.cancelled and stopped.evaluations == 12
    event = threading.Event()
    r = cem.cem(toy_objective(torch.zeros(2)), (2,), population=4, generations=50,
                callback=lambda h: event.set() if h["generation"] == 2 else None, cancel=event)
    assert len(r.history) == 2 and r.cancelled


def test_fit_alpha_on_a_model_and_reuse_as_mixture(adapter, tmp_path):
    examples = tasks.TASKS["math"].examples("validation", 3)
    kw = dict(population=4, generations=2, seed=0, max_new_tokens=4)
    fast = adapter.fit(examples, tasks.TASKS["math"], fast=True, per_layer=True, **kw)
    assert fast.alpha.shape == (3, adapter.svf.num_layers) and fast.evaluations == 8
    assert fast.fitness < 0 and len(fast.history) == 2  # a mean log-likelihood
    full = cem.fit_alpha(adapter, examples, tasks.TASKS["math"], **kw)
    again = cem.fit_alpha(adapter, examples, tasks.TASKS["math"], **kw)
    assert full.history == [h | {"seconds": g["seconds"]} for h, g in zip(again.history, full.history)]
    assert 0 <= full.fitness < 1 + 1e-3 and full.alpha.shape == (3,)
    right = cem.examples_right(full.fitness, len(examples))  # accuracy, plus a tie-break (none right: the references')
    assert 0 < full.fitness - right / len(examples) <= 5e-4
    # the base model (α = 0) is scored first: the bar shown beside every generation
    objective = cem.fewshot_batch_objective(adapter, examples, tasks.TASKS["math"], max_new_tokens=4)
    assert full.base_fitness == objective.score(torch.zeros(1, 3))[0]
    assert all(h["base"] == full.base_fitness for h in full.history)
    assert full.evaluations == 8  # members only
    # the fitted mixture, saved and reloaded, drives the fewshot strategy (which reports the mixture, not a category)
    save_expert(adapter.mixture(fast.alpha), tmp_path / "math-mix.safetensors")
    mixture = load_expert(tmp_path / "math-mix.safetensors", adapter.svf)
    d, stream = adapter.answer(examples[0].prompt, strategy="fewshot", mixture=mixture, max_new_tokens=6)
    assert d.category is None and d.mixture == mixture.label == "mixture:math+code+reasoning"
    assert torch.tensor(d.alpha).shape == (3, adapter.svf.num_layers) and d.labels == adapter.labels
    text = joined(stream)  # read outside the lock below: the second pass needs it
    with adapter.svf.adapted(adapter.svf.mix([e.z for e in adapter.experts], fast.alpha)):
        assert text == generation.generate(adapter.lm, [examples[0].prompt], max_new_tokens=6)[0]


# ----------------------------------------------------------------------------- vision

def test_vision_model_with_vqa_and_transferred_text_experts(tokenizer, tmp_path):
    text_dir = save_model_dir(text_model(tokenizer), tokenizer, tmp_path / "text")
    text_svf = SVF(LlamaForCausalLM.from_pretrained(text_dir).eval())
    paths = []
    for e in random_experts(text_svf, ("math", "code")):
        paths.append(tmp_path / f"{e.label}.safetensors")
        save_expert(e, paths[-1])
    model, processor = pretrain.build_vision_model(text_dir, tile=32, patch=8)
    model.eval()
    svf = SVF(model)
    with pytest.raises(ExpertError, match="not targets.*allow_transfer"):
        load_expert(paths[0], svf)  # another model's layout: refused unless asked for
    with pytest.warns(UserWarning, match="cross-model transfer"):
        transferred = [load_expert(p, svf, allow_transfer=True) for p in paths]
    assert all(set(e.z) <= set(svf.names) for e in transferred)
    assert torch.equal(transferred[0].z["model.language_model.layers.1.mlp.up_proj.weight"],
                       load_expert(paths[0]).z["model.layers.1.mlp.up_proj.weight"])
    vqa = random_experts(svf, ("vqa",), seed=5)[0]
    adapter = Adapter(LoadedModel.wrap(model, processor), [vqa, *transferred], svf=svf)
    example = tasks.TASKS["vqa"].examples("validation", 2)
    d, stream = adapter.answer(example[0].prompt, example[0].image, max_new_tokens=5)
    assert list(d.probabilities) == list(tasks.CATEGORIES) and math.isclose(sum(d.probabilities.values()), 1, rel_tol=1e-5)
    expected = probabilities_one_label_at_a_time(adapter.lm, example[0].prompt, example[0].image)
    assert torch.allclose(torch.tensor(list(d.probabilities.values())), expected, atol=1e-5)
    text = joined(stream)
    with svf.adapted(adapter.z_from_alpha(d.alpha)):
        assert text == generation.generate(adapter.lm, [example[0].prompt], [example[0].image], max_new_tokens=5)[0]
    r = adapter.fit(example, tasks.TASKS["vqa"], fast=True, population=2, generations=1)
    assert r.evaluations == 2 and math.isfinite(r.fitness)


# ----------------------------------------------------------------------------- errors

def test_errors_say_what_is_wrong(adapter, tokenizer):
    math_task = tasks.TASKS["math"]
    examples = math_task.examples("validation", 2)
    with pytest.raises(PipelineError, match="at least 2 examples"):
        adapter.fit(examples[:1], math_task)
    empty = [examples[0], tasks.Example(examples[1].prompt, "", "", "math")]
    with pytest.raises(PipelineError, match="empty reference"):
        adapter.fit(empty, math_task)
    for alpha, message in (([0.5, float("nan"), 0.1], "non-finite"), ([0.5, 1.5, 0.0], "outside the bounds"),
                           ([0.5, 0.5], "shape"), (None, "needs alpha")):
        with pytest.raises(PipelineError, match=message):
            adapter.answer("hi", strategy="manual", alpha=alpha)
    with pytest.raises(PipelineError, match="context window is 1024"):
        adapter.answer("apple " * 1100)
    with pytest.raises(PipelineError, match="context window"):
        adapter.answer("apple " * 900, max_new_tokens=300)
    with pytest.raises(PipelineError, match="text-only model"):
        adapter.answer("What word is shown?", image=tasks.TASKS["vqa"].examples("validation", 1)[0].image)
    with pytest.raises(PipelineError, match="unknown strategy"):
        adapter.answer("hi", strategy="guess")
    with pytest.raises(PipelineError, match="unknown mode"):
        adapter.answer("hi", mode="medium")
    with pytest.raises(PipelineError, match="few-shot needs a mixture"):
        adapter.answer("hi", strategy="fewshot")
    adapter.cls_expert = None
    with pytest.raises(PipelineError, match="classification expert"):
        adapter.answer("hi", strategy="cls")
    with pytest.raises(PipelineError, match="bounds"):
        cem.cem(toy_objective(torch.zeros(1)), (1,), bounds=(1.0, 0.0))


def test_bench_cem_refuses_a_missing_model(tmp_path):
    with pytest.raises(SystemExit, match="bench cem: .*not a Hugging Face model folder"):
        cli.main(["bench", "cem", "--model", str(tmp_path)])

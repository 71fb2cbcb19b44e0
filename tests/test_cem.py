"""CEM with a generation's members × examples as rows of one batch: the same fitness per member as
scoring one member at a time with z' composed into the weights (the same greedy answers, the same
log-likelihood up to float rounding), the same fit for a seed, cancel between calls, and the model
factorized only inside `factorized(svf)`, under svf's lock."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from conftest import save_model_dir, tiny_chat_model

from t2demo import pretrain, session, tasks
from t2demo.adapt import cem
from t2demo.adapt.adapter import Adapter
from t2demo.experts import Expert
from t2demo.factored import FactoredLinear, factorized
from t2demo.generation import encode_prompts, generate_replies, stop_token_ids
from t2demo.models import LoadedModel
from t2demo.svf import SVF


@pytest.fixture(scope="module")
def tokenizer():
    texts = [ex.prompt + "\n" + ex.response for name in ("math", "vqa") for ex in tasks.TASKS[name].examples("train", 40)]
    return pretrain.train_tokenizer(texts, vocab_size=200)


def random_experts(svf: SVF) -> list[Expert]:
    g = torch.Generator().manual_seed(1)
    return [Expert.from_svf(svf, {n: 1 + 0.5 * torch.randn(r, generator=g) for n, r in svf.ranks.items()}, label)
            for label in ("math", "code", "reasoning")]


@pytest.fixture
def adapter(tokenizer):
    model = tiny_chat_model(tokenizer, 0.3, num_hidden_layers=2, intermediate_size=64)
    svf = SVF(model)
    return Adapter(LoadedModel.wrap(model, tokenizer), random_experts(svf), svf=svf)


class Recording:
    """A task whose checker passes even-length answers (so accuracy moves with z) and keeps every
    (prompt, answer) it is shown."""

    name, category, vision, max_new_tokens = "math", "math", False, 6

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def check_many(self, examples, responses) -> list[bool]:
        self.seen += [(ex.prompt, r) for ex, r in zip(examples, responses)]
        return [len(r) % 2 == 0 for r in responses]


def members(shape: tuple[int, ...], n: int = 6) -> torch.Tensor:
    """The base (α = 0), the first expert alone, and random mixtures in [0, 1.5]."""
    out = 1.5 * torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))
    out[0] = 0
    out[1] = 0
    out[1, 0] = 1
    return out


def accuracy(f: float, n: int) -> float:
    """The accuracy part of a fitness on n examples (the tie-break term is below 1/n)."""
    return cem.examples_right(f, n) / n


def assert_batched_equals_alone(adapter, examples, alphas, batch_size: int, max_rows: int) -> None:
    """Per member: the same accuracy and fitness (log-likelihood within 1e-5), the same greedy
    answers, in accuracy and fast mode; and the members' answers really differ."""
    n = len(examples)
    alone_task, batch_task = Recording(), Recording()
    kw = dict(batch_size=batch_size, max_new_tokens=6)
    alone = cem.fewshot_objective(adapter, examples, alone_task, **kw)
    batch = cem.fewshot_batch_objective(adapter, examples, batch_task, max_rows=max_rows, **kw)
    assert batch.members == max(1, max_rows // min(batch_size, n))
    expected = [alone(a) for a in alphas]
    got, cancelled = cem._score(batch, alphas, None)  # in chunks of batch.members, as cem calls it
    assert not cancelled and len(got) == len(alphas)
    assert [accuracy(f, n) for f in got] == [accuracy(f, n) for f in expected]
    assert got == pytest.approx(expected, abs=1e-8)  # log-likelihoods within 1e-5 move the tie-break < 3e-9
    one_chunk = batch_size >= n  # then both list the answers member after member
    assert (batch_task.seen if one_chunk else sorted(batch_task.seen)) == \
        (alone_task.seen if one_chunk else sorted(alone_task.seen))
    answers = {tuple(a for _, a in alone_task.seen[m * n:(m + 1) * n]) for m in range(len(alphas))}
    assert len(answers) > 1  # z matters
    fast = cem.fewshot_batch_objective(adapter, examples, batch_task, fast=True, max_rows=max_rows, **kw)
    fast_alone = cem.fewshot_objective(adapter, examples, batch_task, fast=True, **kw)
    assert fast.score(alphas) == pytest.approx([fast_alone(a) for a in alphas], abs=1e-5)


@pytest.mark.parametrize("shape, batch_size, max_rows", [((3,), 8, 12), ((3, 2), 3, 7)])
def test_batched_fitness_equals_one_member_at_a_time(adapter, shape, batch_size, max_rows):
    examples = tasks.TASKS["math"].examples("validation", 5)
    assert_batched_equals_alone(adapter, examples, members(shape), batch_size, max_rows)


class Unanswerable(Recording):
    """A task no answer passes: every member is ranked by the references' log-likelihood alone."""

    def check_many(self, examples, responses) -> list[bool]:
        super().check_many(examples, responses)
        return [False] * len(responses)


def test_members_that_get_no_example_right_are_ranked_by_the_references(adapter):
    """Before, each scored exactly 0 and the first of them came first; now the one under which the right
    answers are likelier ranks higher, the same in the batched, per-member and naive objectives."""
    examples, alphas = tasks.TASKS["math"].examples("validation", 5), members((3,))
    kw = dict(batch_size=3, max_new_tokens=6)
    references = cem.fewshot_objective(adapter, examples, Unanswerable(), fast=True, **kw)
    expected = [cem.fitness(0.0, references(a)) for a in alphas]
    assert len({round(f, 12) for f in expected}) == len(alphas) and all(0 < f < 5e-4 for f in expected)
    batch = cem.fewshot_batch_objective(adapter, examples, Unanswerable(), max_rows=7, **kw)
    assert cem._score(batch, alphas, None)[0] == pytest.approx(expected, abs=1e-8)
    alone = cem.fewshot_objective(adapter, examples, Unanswerable(), **kw)
    assert [alone(a) for a in alphas] == pytest.approx(expected, abs=1e-8)
    naive = cem.naive_objective(adapter, examples, Unanswerable(), max_new_tokens=6)
    assert [naive(a) for a in alphas] == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("include_vision", [False, True])
def test_batched_fitness_on_a_vision_model(tokenizer, tmp_path, include_vision):
    """LLaVA-Next: the images are in the prompt cache only; with vision targets each image's patches
    take their row's z."""
    text = tiny_chat_model(tokenizer, 0.3, num_hidden_layers=2, intermediate_size=64)
    model, processor = pretrain.build_vision_model(save_model_dir(text, tokenizer, tmp_path / "text"), tile=32, patch=8)
    svf = SVF(model.eval(), include_vision=include_vision)
    assert any(svf.layer_of(n) is None for n in svf.names) == include_vision
    adapter = Adapter(LoadedModel.wrap(model, processor), random_experts(svf), svf=svf)
    examples = tasks.TASKS["vqa"].examples("validation", 3)
    assert_batched_equals_alone(adapter, examples, members((3,), 4), batch_size=3, max_rows=6)


def test_fit_alpha_batched_equals_unbatched_on_a_fixed_seed(adapter):
    examples = tasks.TASKS["math"].examples("validation", 4)
    kw = dict(population=6, generations=3, seed=2, max_new_tokens=6, max_rows=8)  # 3 calls per generation
    batched = cem.fit_alpha(adapter, examples, Recording(), **kw)
    unbatched = cem.fit_alpha(adapter, examples, Recording(), batched=False, **kw)
    assert torch.equal(batched.alpha, unbatched.alpha)
    assert batched.evaluations == unbatched.evaluations == 18
    assert [h["alpha"] for h in batched.history] == [h["alpha"] for h in unbatched.history]
    for key in ("best", "mean", "base"):
        assert [h[key] for h in batched.history] == pytest.approx([h[key] for h in unbatched.history], abs=1e-8)
    assert batched.fitness == pytest.approx(unbatched.fitness, abs=1e-8)
    assert batched.base_fitness == pytest.approx(unbatched.base_fitness, abs=1e-8)
    assert not any(isinstance(m, FactoredLinear) for m in adapter.model.modules())


def toy_objective(target: torch.Tensor):
    return lambda a: -float(((a - target) ** 2).sum())


def test_cem_with_a_batch_objective_equals_one_by_one():
    plain = toy_objective(torch.tensor([0.9, 0.1, 0.6]))
    calls = []

    def score(part: torch.Tensor) -> list[float]:
        calls.append(len(part))
        return [plain(a) for a in part]

    one = cem.cem(plain, (3,), population=10, generations=4, seed=1)
    batched = cem.cem(cem.BatchObjective(score, members=4), (3,), population=10, generations=4, seed=1)
    assert calls == [4, 3, 3] * 4  # near-equal chunks of at most 4
    assert torch.equal(one.alpha, batched.alpha) and one.evaluations == batched.evaluations == 40
    assert [h | {"seconds": 0} for h in one.history] == [h | {"seconds": 0} for h in batched.history]


def test_cancel_is_checked_between_calls():
    event = threading.Event()
    calls = []

    def score(part: torch.Tensor) -> list[float]:
        calls.append(len(part))
        event.set()
        return [0.0] * len(part)

    r = cem.cem(cem.BatchObjective(score, members=2), (2,), population=6, generations=5, cancel=event)
    assert calls == [2] and r.cancelled and r.evaluations == 2 and r.history == []


def test_factorized_holds_the_lock_and_gives_back_the_exact_model(adapter):
    svf, model = adapter.svf, adapter.model
    modules = dict(model.named_modules())
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    entered = threading.Event()

    def other_user() -> None:
        with svf.adapted(adapter.experts[0].z):
            entered.set()

    with factorized(svf) as handle:
        assert isinstance(model.get_submodule(svf.names[0].removesuffix(".weight")), FactoredLinear)
        thread = threading.Thread(target=other_user)
        thread.start()
        assert not entered.wait(0.5)  # the compose path waits for the block
        with factorized(svf) as inner:  # nested: the same handle, still factorized after
            assert inner is handle
        assert isinstance(model.get_submodule(svf.names[0].removesuffix(".weight")), FactoredLinear)
    thread.join(5)
    assert entered.is_set()
    assert all(m is modules[n] for n, m in model.named_modules())
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters())


def test_reply_confidence_is_the_teacher_forced_log_p_of_the_greedy_reply(adapter):
    """generate_replies' per-reply mean log p (read off the greedy steps) equals a teacher-forced forward
    over the prompt and the reply up to its first stop token, batched or one prompt at a time."""
    lm = adapter.lm
    prompts = [ex.prompt for ex in tasks.TASKS["math"].examples("validation", 3)]
    answers, means = generate_replies(lm, prompts, None, 8, scored=True)
    assert generate_replies(lm, prompts, None, 8) == (answers, None)  # unscored: the same answers, nothing recorded
    stops = stop_token_ids(lm)
    for i, prompt in enumerate(prompts):
        enc = encode_prompts(lm, [prompt])
        out = lm.model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id,
                                eos_token_id=stops)
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        reply = new[:next((k + 1 for k, t in enumerate(new) if t in stops), len(new))]
        with torch.no_grad():
            logp = lm.model(torch.tensor([enc["input_ids"][0].tolist() + reply])).logits[0].log_softmax(-1)
        start = enc["input_ids"].shape[1] - 1
        expected = sum(logp[start + k, t].item() for k, t in enumerate(reply)) / len(reply)
        alone_answers, alone = generate_replies(lm, [prompt], None, 8, scored=True)
        assert alone_answers == [answers[i]]
        assert alone.item() == pytest.approx(expected, abs=1e-4)
        assert means[i].item() == pytest.approx(expected, abs=1e-4)


def test_ties_go_to_the_more_confident_correct_replies():
    right, none = torch.tensor([True, False, True]), torch.zeros(3, dtype=torch.bool)
    sure, unsure = torch.tensor([-0.1, -9.0, -0.3]), torch.tensor([-1.0, -0.01, -1.2])

    def unasked() -> float:
        raise AssertionError("the references are scored only when no reply is right")

    assert cem.reply_fitness(right, sure, unasked) > cem.reply_fitness(right, unsure, unasked)  # the wrong reply's log p does not count
    assert math.floor(3 * cem.reply_fitness(right, sure, unasked)) == 2  # the tie-break stays below one example
    assert cem.reply_fitness(torch.ones(3, dtype=torch.bool), unsure, unasked) > cem.reply_fitness(right, sure, unasked)  # accuracy first
    # none right: the references' log-likelihood ranks the members, below any member with one right
    likely, unlikely = cem.reply_fitness(none, sure, lambda: -0.5), cem.reply_fitness(none, sure, lambda: -4.0)
    assert 0 < unlikely < likely < 5e-4 < cem.reply_fitness(torch.tensor([False, False, True]), unsure, unasked)


def test_cem_status_says_how_many_examples_the_fit_and_the_base_get_right():
    assert 0.57 * 100 < 57 and cem.examples_right(0.57, 100) == 57  # float error does not lose one
    assert cem.examples_right(5 / 8 + 5e-4, 8) == 5 and cem.examples_right(0.0, 8) == 0
    done = cem.CEMResult(torch.zeros(3), 5 / 8 + 4e-4, [], 128, 37.0, False, 1 / 8 + 3e-4)
    assert session.cem_status([], 8, done, 8) == ("done: best fitness 0.6254, 5 of 8 right (base model 0.1253, "
                                                  "1 of 8 right) after 128 evaluations in 37.0 s on 8 examples")
    entry = {"generation": 3, "best": 0.5004, "mean": 0.3, "base": 0.0}
    assert session.cem_status([entry], 8, None, 2) == ("generation 3/8: best 0.5004, 1 of 2 right, mean 0.3000 "
                                                       "(base model 0.0000, 0 of 2 right)")
    fast = cem.CEMResult(torch.zeros(3), -1.2, [], 8, 1.0, False, -1.5)  # a mean log-likelihood: no count
    assert "right" not in session.cem_status([], 8, fast, 2, fast=True)
    nothing = cem.CEMResult(torch.zeros(3), 3e-4, [], 8, 1.0, False, 2e-4)  # no member got an example right
    assert session.cem_status([], 8, nothing, 2).endswith(
        "0 of 2 right) after 8 evaluations in 1.0 s on 2 examples; no α got an example right, so this is the α "
        "under which the right answers are likeliest")
    assert "likeliest" not in session.cem_status([], 8, done, 8)
    stopped = cem.CEMResult(torch.zeros(3), -math.inf, [], 0, 1.0, True, 0.0)  # before a generation was scored
    assert session.cem_status([], 8, stopped, 2).startswith("cancelled: best fitness -inf (base model 0.0000, 0 of 2")

"""The probe (t2demo/probe.py): per-step accuracy is aligned with the steps' text, and the mode statistics."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_chat_model

from t2demo import pretrain, probe, tasks
from t2demo.generation import format_chat, generate
from t2demo.models import LoadedModel
from t2demo.tasks.modes import ANSWER, WORK, in_reliable_mode, modes_of


@pytest.fixture(scope="module")
def tokenizer():
    texts = [ex.prompt + "\n" + r for name in ("math", "code", "reasoning", "world-math")
             for ex in tasks.TASKS[name].examples("train", 40) for _, r in ex.meta["replies"]]
    return pretrain.train_tokenizer(texts, vocab_size=400)


class Oracle(torch.nn.Module):
    """Predicts the next input token exactly (good=True), or never (good=False): a probe's two extremes."""

    def __init__(self, vocab: int, good: bool):
        super().__init__()
        self.vocab, self.good = vocab, good
        self.device = torch.device("cpu")  # what LoadedModel reads

    def forward(self, input_ids, attention_mask=None, **_):
        target = torch.roll(input_ids, -1, dims=1)
        if not self.good:
            target = (target + 1) % self.vocab
        return SimpleNamespace(logits=torch.nn.functional.one_hot(target, self.vocab).float())


@pytest.mark.parametrize("name", ["math", "math-hard", "world-math", "code", "code-hard", "reasoning"])
def test_step_accuracy_reads_each_step_where_it_is(tokenizer, name):
    examples = tasks.TASKS[name].examples("test", 5)
    steps = sum(len(ex.meta["steps"]) for ex in examples)
    good = LoadedModel.wrap(tiny_chat_model(tokenizer), tokenizer)
    assert probe.step_accuracy(LoadedModel(Oracle(len(tokenizer), True), tokenizer, good.family), examples, 2) == [True] * steps
    assert probe.step_accuracy(LoadedModel(Oracle(len(tokenizer), False), tokenizer, good.family), examples, 2) == [False] * steps


@pytest.mark.parametrize("name", ["vqa", "vqa-knowledge"])
def test_step_accuracy_finds_the_steps_behind_the_expanded_image_tokens(model_dirs, name):
    """On a vision model the processor turns one image token into many: the steps are still read where they are."""
    from transformers import AutoProcessor, LlavaNextForConditionalGeneration

    processor = AutoProcessor.from_pretrained(model_dirs[1])
    family = LoadedModel.wrap(LlavaNextForConditionalGeneration.from_pretrained(model_dirs[1]), processor).family
    examples = tasks.TASKS[name].examples("test", 4)
    steps = sum(len(ex.meta["steps"]) for ex in examples)
    vocab = len(processor.tokenizer)
    assert steps == len(examples) * (1 if name == "vqa" else 2)
    assert probe.step_accuracy(LoadedModel(Oracle(vocab, True), processor, family), examples, 3) == [True] * steps
    assert probe.step_accuracy(LoadedModel(Oracle(vocab, False), processor, family), examples, 3) == [False] * steps


def test_mode_statistics_are_consistent(tokenizer):
    lm = LoadedModel.wrap(tiny_chat_model(tokenizer, init=0.3), tokenizer)
    examples = tasks.TASKS["math"].examples("test", 3)
    stats = probe.mode_stats(lm, tasks.TASKS["math"], examples, samples=4, batch_size=8, progress=False)
    assert stats["greedy"]["n"] == 3 and stats["pass_at_k"]["n"] == 3 and stats["sampled"]["n"] == 12
    assert stats["majority"]["accuracy"] <= stats["pass_at_k"]["accuracy"]  # a right vote needs a right sample
    assert 0 <= stats["sampled_reliable_share"] <= 100
    text = probe.format_probe({"math": {"steps": stats["greedy"]} | stats}, "t")
    assert "maj@k" in text and "k = 4 samples" in text


def test_the_reliable_mode_is_read_from_the_example():
    math = tasks.TASKS["math"].examples("test", 1)[0]
    reasoning = tasks.TASKS["reasoning"].examples("test", 1)[0]
    world = tasks.TASKS["world-math"].examples("test", 1)[0]
    assert modes_of(math.response) == [WORK] and modes_of(reasoning.response) == [ANSWER]
    assert modes_of(world.response) == [ANSWER, WORK]  # two decisions: recall, then arithmetic
    assert in_reliable_mode("Work: 1+2+0=03 = 3. The answer is 3.", math) is True
    assert in_reliable_mode("Answer: 3.", math) is False and in_reliable_mode("Answer: lake.", reasoning) is True
    assert in_reliable_mode("Work: the a weighs 1 kilos. Work: ...", world) is False
    assert in_reliable_mode("hello", tasks.TASKS["smalltalk"].examples("test", 1)[0]) is None  # no modes there


def test_decision_shares_read_each_marker_of_the_reliable_reply(tokenizer):
    """One share per mode decision (world-math makes two), each the model's own p(reliable marker) against
    the other marker at that point of the teacher-forced reply, the same in a padded batch as alone."""
    lm = LoadedModel.wrap(tiny_chat_model(tokenizer, init=0.3), tokenizer)
    examples = tasks.TASKS["world-math"].examples("test", 3) + tasks.TASKS["math"].examples("test", 2)
    shares = probe.decision_shares(lm, examples, batch_size=4)
    assert [len(s) for s in shares] == [len(modes_of(ex.response)) for ex in examples] == [2, 2, 2, 1, 1]
    ex = examples[0]  # alone, unpadded: the decisions' positions found from the reply's own text
    head = tokenizer(format_chat(lm.preprocessor, ex.prompt), add_special_tokens=False)["input_ids"]
    expected = []
    for marker, rival in (("Answer", "Work"), (" Work", " Answer")):  # the recall opens the reply, the sum follows
        ids = head + tokenizer(ex.response[:ex.response.index(marker)], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
        pair = [tokenizer(m, add_special_tokens=False)["input_ids"][0] for m in (marker, rival)]
        expected.append(torch.softmax(logits[pair].float(), 0)[0].item())
    assert shares[0] == pytest.approx(expected, abs=1e-4)
    assert all(0 < p < 1 for s in shares for p in s)


def test_an_opening_continues_the_reply_the_model_would_give(tokenizer):
    """generate(opening=...) makes the reply start with it; opened with what the model says anyway, the reply is
    the one it gives unopened."""
    lm = LoadedModel.wrap(tiny_chat_model(tokenizer, init=0.3), tokenizer)
    prompt = tasks.TASKS["math"].examples("test", 1)[0].prompt
    head = tokenizer(format_chat(lm.preprocessor, prompt), add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = lm.model.generate(head, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)[0, head.shape[1]:]
    opening = tokenizer.decode(ids[:2])
    reopened = tokenizer(format_chat(lm.preprocessor, prompt) + opening, add_special_tokens=False)["input_ids"]
    assert reopened == head[0].tolist() + ids[:2].tolist()  # the opening is read as the model's own two tokens
    assert generate(lm, [prompt], max_new_tokens=10, opening=opening) == [tokenizer.decode(ids, skip_special_tokens=True)]
    assert generate(lm, [prompt], max_new_tokens=3, opening="Answer:")[0].startswith("Answer:")


def test_forced_replies_open_with_each_examples_reliable_marker(tokenizer):
    """Math opens with Work:, reasoning with Answer: (batched per marker, outcomes in the examples' order);
    small talk has no modes and is left out."""
    lm = LoadedModel.wrap(tiny_chat_model(tokenizer, init=0.3), tokenizer)
    examples = (tasks.TASKS["math"].examples("test", 2) + tasks.TASKS["reasoning"].examples("test", 2)
                + tasks.TASKS["smalltalk"].examples("test", 1) + tasks.TASKS["math"].examples("test", 3)[2:])
    seen = {}

    def check_many(chunk, replies):
        seen.update({ex.prompt: reply for ex, reply in zip(chunk, replies)})
        return [modes_of(ex.response)[0] == WORK for ex in chunk]  # marks which were math

    task = SimpleNamespace(max_new_tokens=4, check_many=check_many)
    assert probe.forced_reliable(lm, task, examples, batch_size=2) == [True, True, False, False, True]
    assert [seen[ex.prompt][:len(m)] for ex in examples for m in modes_of(ex.response)[:1]] == \
        [WORK, WORK, ANSWER, ANSWER, WORK]


def test_mode_statistics_draw_the_same_samples_whatever_ran_before(tokenizer, monkeypatch):
    lm = LoadedModel.wrap(tiny_chat_model(tokenizer, init=0.3), tokenizer)
    task = tasks.TASKS["math"]
    examples = task.examples("test", 2)
    drawn, sample = [], probe.sample_rollout
    monkeypatch.setattr(probe, "sample_rollout", lambda *a, **k: (r := sample(*a, **k), drawn.append(r.texts))[0])

    def samples(**kw) -> list[str]:
        drawn.clear()
        probe.mode_stats(lm, task, examples, samples=4, batch_size=8, progress=False, **kw)
        return [t for batch in drawn for t in batch]

    first = samples()
    torch.rand(7)  # anything else that draws from torch's generator in between
    assert samples() == first and len(first) == 8
    assert samples(seed=1) != first

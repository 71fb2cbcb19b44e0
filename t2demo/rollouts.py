"""Prompts with answers, ready to score: the log-likelihood machinery that training (REINFORCE,
next-token) and few-shot fitness (CEM) both need, in one place.

A Rollout joins left-padded prompts with right-padded answers (sampled, or the references) so one
forward pass gives log p of every answer token, counted from the positions generate() uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from t2demo.generation import encode_prompts, end_of_turn_ids, images_of, stop_token_ids
from t2demo.models import LoadedModel


@dataclass
class Rollout:
    """Prompts (left-padded) followed by answers (right-padded), ready for one forward pass."""

    input_ids: Tensor  # (B, P + A)
    attention_mask: Tensor  # (B, P + A)
    answer_mask: Tensor  # (B, A): answer tokens up to and including the first eos
    extra: dict  # pixel_values, image_sizes for a vision model
    texts: list[str]  # decoded answers

    @property
    def answer_ids(self) -> Tensor:
        return self.input_ids[:, -self.answer_mask.shape[1]:]


def _prompt_batch(lm: LoadedModel, examples: Sequence) -> dict:
    enc = encode_prompts(lm, [ex.prompt for ex in examples], images_of(examples))
    return {k: v.to(lm.device) for k, v in enc.items()}


def _rollout(enc: dict, answers: Tensor, stop_ids: Sequence[int], tokenizer) -> Rollout:
    """Join prompts and answer tokens; mask everything after each answer's first stop token."""
    is_eos = torch.isin(answers, torch.tensor(list(stop_ids), device=answers.device))
    answer_mask = (is_eos.long().cumsum(1) - is_eos.long()) == 0
    texts = [tokenizer.decode(a[m], skip_special_tokens=True) for a, m in zip(answers, answer_mask)]
    extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    return Rollout(torch.cat([enc["input_ids"], answers], 1),
                   torch.cat([enc["attention_mask"], answer_mask.long()], 1), answer_mask, extra, texts)


@torch.no_grad()
def sample_rollout(lm: LoadedModel, examples: Sequence, max_new_tokens: int,
                   temperature: float = 1.0) -> Rollout:
    """Sample one answer per example from the full distribution (no top-k, top-p 1), with the
    model's current weights."""
    tokenizer = lm.tokenizer
    enc = _prompt_batch(lm, examples)
    stops = stop_token_ids(lm)  # where generation.generate stops: the checkpoint's own end-of-turn ids
    out = lm.model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                            max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, eos_token_id=stops)
    return _rollout(enc, out[:, enc["input_ids"].shape[1]:], stops, tokenizer)


def reference_rollout(lm: LoadedModel, examples: Sequence) -> Rollout:
    """The reference responses after the same prompts generation sees, for ntp, each closed as the
    chat template closes an assistant turn (generation.end_of_turn_ids: <|eot_id|> for Llama-3,
    <end_of_turn> for Gemma-2, not the tokenizer's eos), so training teaches the stop the model uses."""
    tokenizer = lm.tokenizer
    enc = _prompt_batch(lm, examples)
    end = end_of_turn_ids(lm)
    ids = [tokenizer(ex.response, add_special_tokens=False)["input_ids"] + end for ex in examples]
    width = max(map(len, ids))
    answers = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    for row, seq in enumerate(ids):
        answers[row, :len(seq)] = torch.tensor(seq)
    return _rollout(enc, answers.to(lm.device), end[-1:], tokenizer)


def answer_logprobs(model: torch.nn.Module, rollout: Rollout) -> Tensor:
    """log-softmax over the vocabulary at each answer position, (B, A, V), float32.

    Position ids are counted from the first real token, as generate() counts them, so the
    scored distribution is the sampled one.
    """
    mask = rollout.attention_mask
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    width = rollout.answer_mask.shape[1]
    logits = model(input_ids=rollout.input_ids, attention_mask=mask, position_ids=positions,
                   logits_to_keep=width + 1, **rollout.extra).logits[:, :-1]
    return logits.float().log_softmax(-1)


def answer_token_logp(logp: Tensor, rollout: Rollout) -> Tensor:
    """log p of each answer token actually in the rollout, (B, A)."""
    return logp.gather(-1, rollout.answer_ids[..., None]).squeeze(-1)


def mean_loglik(model: torch.nn.Module, rollout: Rollout) -> float:
    """Per-token mean log p of each reference response, averaged over the examples."""
    logp = answer_logprobs(model, rollout)
    mask = rollout.answer_mask.float()
    token = answer_token_logp(logp, rollout) * mask
    return (token.sum(1) / mask.sum(1).clamp_min(1)).mean().item()

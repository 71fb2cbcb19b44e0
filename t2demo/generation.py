"""Prompt formatting and batched greedy generation, shared by training, evaluation and the app.

Prompts always go through the checkpoint's own chat template, so the shipped models and a
user's real checkpoint are driven the same way: a processor (LLaVA-Next) gets every turn as a
list of typed parts, which its template iterates over; a tokenizer gets plain strings. A prompt
starts with one BOS, and generation stops where the checkpoint's generation_config says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from transformers import LogitsProcessor, ProcessorMixin

from t2demo.models import LoadedModel

_PROBE = "t2demo-probe-response"  # a reply no template alters, to find what closes an assistant turn


def images_of(examples: Sequence) -> list | None:
    """The examples' images for a vision batch, or None for text tasks (their image is None)."""
    return [ex.image for ex in examples] if examples[0].image is not None else None


def _content(text: str, image: bool, parts: bool) -> str | list[dict]:
    """A turn's content: typed parts (the image slot first) for a processor or an image, else the string."""
    if not (image or parts):
        return text
    return ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]


def format_chat(preprocessor, prompt: str, response: str | None = None, image: bool = False,
                history: Sequence[tuple[str, str]] = ()) -> str:
    """One user turn (with an image slot if asked) rendered by the chat template of a tokenizer or
    processor, after the earlier (user, assistant) turns of `history`.

    A processor's template (LLaVA-Next's) reads content only as a list of parts: given a string it
    drops the text or fails, so every turn it sees, history included, is a list. Without a response
    the text ends with the assistant's header, ready to generate.
    """
    parts = isinstance(preprocessor, ProcessorMixin)
    messages = [{"role": role, "content": _content(text, False, parts)}
                for turn in history for role, text in zip(("user", "assistant"), turn)]
    messages.append({"role": "user", "content": _content(prompt, image, parts)})
    if response is not None:
        messages.append({"role": "assistant", "content": _content(response, False, parts)})
    return preprocessor.apply_chat_template(messages, tokenize=False, add_generation_prompt=response is None)


def tokenize_chat(lm: LoadedModel, texts: Sequence[str], images: Sequence | None = None, **kwargs) -> dict:
    """Model inputs for rendered chats (and their images), with one BOS whatever the template does.

    Hugging Face's rule: a tokenizer's chat template carries its own special tokens, so none are
    added; a processor adds them unless the text already starts with BOS (llama3-llava's template
    has none and relies on the tokenizer, llava-v1.6-mistral's likewise; a template with BOS must
    not get a second).
    """
    bos = lm.tokenizer.bos_token
    add = lm.vision and not (bos and texts[0].startswith(bos))
    if images is not None:
        return dict(lm.preprocessor(images=list(images), text=list(texts), return_tensors="pt",
                                    add_special_tokens=add, **kwargs))
    return dict(lm.tokenizer(list(texts), return_tensors="pt", add_special_tokens=add, **kwargs))


def encode_prompts(lm: LoadedModel, prompts: Sequence[str], images: Sequence | None = None,
                   history: Sequence[tuple[str, str]] = (), opening: str = "") -> dict:
    """Left-padded model inputs for a batch of user prompts (and images for a vision model), each
    continuing the same conversation `history`, the assistant's reply begun with `opening`."""
    texts = [format_chat(lm.preprocessor, p, image=images is not None, history=history) + opening for p in prompts]
    return tokenize_chat(lm, texts, images, padding=True, padding_side="left")


def stop_token_ids(lm: LoadedModel) -> list[int]:
    """Where generation ends: the checkpoint's generation_config eos ids (an int or a list, e.g.
    Llama-3-Instruct's [<|end_of_text|>, <|eot_id|>], Gemma-2-it's [<eos>, <end_of_turn>]) and the
    tokenizer's eos, in that order."""
    configured = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids = configured if isinstance(configured, (list, tuple)) else [configured]
    ids = [*ids, lm.tokenizer.eos_token_id]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def end_of_turn_ids(lm: LoadedModel) -> list[int]:
    """The tokens the chat template closes an assistant turn with, up to the first stop token
    (<|eot_id|>, <end_of_turn>, <|im_end|>, </s>): what a reference answer ends with in next-token
    training. A closing with no stop token (llava-v1.6-mistral's template writes a literal "<\\s>")
    falls back to the tokenizer's eos, which is where that model really stops."""
    turn = format_chat(lm.preprocessor, "hi", _PROBE)
    closing = turn[turn.rindex(_PROBE) + len(_PROBE):]
    ids = lm.tokenizer(closing, add_special_tokens=False)["input_ids"]
    stops = set(stop_token_ids(lm))
    end = next((i for i, t in enumerate(ids) if t in stops), None)
    return ids[:end + 1] if end is not None else [lm.tokenizer.eos_token_id]


class GreedyLogp(LogitsProcessor):
    """Passed to a greedy generate(), records each step's log p of the token it picks (the largest
    log-softmax): the model's confidence in its own reply, without a second forward pass."""

    def __init__(self) -> None:
        self.steps: list[Tensor] = []

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        self.steps.append(scores.float().log_softmax(-1).amax(-1))  # kept on the device: no sync per step
        return scores

    def reply_means(self, new_tokens: Tensor, stop_ids: Sequence[int]) -> Tensor:
        """Per-row mean log p of the reply's tokens up to its first stop token (included), (B,) float64."""
        logp = torch.stack(self.steps, 1).double().cpu()[:, :new_tokens.shape[1]]
        stop = torch.isin(new_tokens.cpu(), torch.tensor(list(stop_ids)))
        reply = (stop.long().cumsum(1) - stop.long()) == 0  # before or at the first stop
        return (logp * reply).sum(1) / reply.sum(1).clamp_min(1)


@torch.inference_mode()
def generate(lm: LoadedModel, prompts: Sequence[str], images: Sequence | None = None,
             max_new_tokens: int = 64, history: Sequence[tuple[str, str]] = (), opening: str = "") -> list[str]:
    """Greedy answers to a batch of prompts with the model's current weights, each after the same
    earlier (user, assistant) turns; decoding is deterministic so results are testable. With an
    `opening`, every reply is made to start with it (the reply returned includes it)."""
    return generate_replies(lm, prompts, images, max_new_tokens, history, opening=opening)[0]


@torch.inference_mode()
def generate_replies(lm: LoadedModel, prompts: Sequence[str], images: Sequence | None = None,
                     max_new_tokens: int = 64, history: Sequence[tuple[str, str]] = (),
                     scored: bool = False, opening: str = "") -> tuple[list[str], Tensor | None]:
    """generate()'s answers and, if `scored`, each one's mean log p per token (greedy)."""
    batch = {k: v.to(lm.device) for k, v in encode_prompts(lm, prompts, images, history, opening).items()}
    texts, scores = greedy(lm, lambda enc, **kw: lm.model.generate(**enc, **kw), batch, max_new_tokens, scored)
    return [opening + t for t in texts], scores


def greedy(lm: LoadedModel, generate_fn: Callable[..., Tensor], batch: dict, max_new_tokens: int,
           scored: bool = False) -> tuple[list[str], Tensor | None]:
    """Greedy answers from generate_fn(batch, **generate kwargs) (a model's generate, or one with a z
    per row), decoded, and if `scored` each one's mean log p per token (GreedyLogp.reply_means; else
    None, and decoding records nothing)."""
    tokenizer, stops = lm.tokenizer, stop_token_ids(lm)
    record = GreedyLogp() if scored else None
    out = generate_fn(batch, max_new_tokens=max_new_tokens, do_sample=False, logits_processor=[record] if record else [],
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=stops)
    new = out[:, batch["input_ids"].shape[1]:]
    return tokenizer.batch_decode(new, skip_special_tokens=True), record.reply_means(new, stops) if record else None

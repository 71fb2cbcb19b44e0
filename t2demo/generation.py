"""Prompt formatting and batched greedy generation, shared by training, evaluation and the app.

Prompts always go through the checkpoint's own chat template, so the shipped models and a
user's real checkpoint are driven the same way.
"""

from __future__ import annotations

from typing import Sequence

import torch

from t2demo.models import LoadedModel


def images_of(examples: Sequence) -> list | None:
    """The examples' images for a vision batch, or None for text tasks (their image is None)."""
    return [ex.image for ex in examples] if examples[0].image is not None else None


def format_chat(preprocessor, prompt: str, response: str | None = None, image: bool = False,
                history: Sequence[tuple[str, str]] = ()) -> str:
    """One user turn (with an image slot if asked) rendered by the chat template of a tokenizer or
    processor, after the earlier (user, assistant) turns of `history`.

    Without a response the text ends with the assistant's header, ready to generate.
    """
    content = [{"type": "image"}, {"type": "text", "text": prompt}] if image else prompt
    messages = [{"role": role, "content": text} for turn in history for role, text in zip(("user", "assistant"), turn)]
    messages.append({"role": "user", "content": content})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return preprocessor.apply_chat_template(messages, tokenize=False, add_generation_prompt=response is None)


def encode_prompts(lm: LoadedModel, prompts: Sequence[str], images: Sequence | None = None,
                   history: Sequence[tuple[str, str]] = ()) -> dict:
    """Left-padded model inputs for a batch of user prompts (and images for a vision model), each
    continuing the same conversation `history`."""
    texts = [format_chat(lm.preprocessor, p, image=images is not None, history=history) for p in prompts]
    if images is not None:
        return dict(lm.preprocessor(images=list(images), text=texts, return_tensors="pt", padding=True,
                                    padding_side="left"))
    return dict(lm.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False))


@torch.inference_mode()
def generate(lm: LoadedModel, prompts: Sequence[str], images: Sequence | None = None,
             max_new_tokens: int = 64) -> list[str]:
    """Greedy answers to a batch of prompts with the model's current weights; decoding is
    deterministic so results are testable."""
    batch = {k: v.to(lm.device) for k, v in encode_prompts(lm, prompts, images).items()}
    tokenizer = lm.tokenizer
    out = lm.model.generate(
        **batch, max_new_tokens=max_new_tokens, do_sample=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)

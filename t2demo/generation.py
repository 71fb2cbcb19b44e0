"""Prompt formatting and batched greedy generation, shared by training, evaluation and the app.

Prompts always go through the checkpoint's own chat template, so the shipped models and a
user's real checkpoint are driven the same way.
"""

from __future__ import annotations

from typing import Sequence

import torch


def is_processor(tok_or_proc) -> bool:
    """True for a multimodal processor (it wraps a tokenizer)."""
    return hasattr(tok_or_proc, "tokenizer") and hasattr(tok_or_proc, "image_processor")


def tokenizer_of(tok_or_proc):
    """The text tokenizer, whether given a tokenizer or a multimodal processor."""
    return tok_or_proc.tokenizer if is_processor(tok_or_proc) else tok_or_proc


def images_of(examples: Sequence) -> list | None:
    """The examples' images for a vision batch, or None for text tasks (their image is None)."""
    return [ex.image for ex in examples] if examples[0].image is not None else None


def format_chat(tok_or_proc, prompt: str, response: str | None = None, image: bool = False,
                history: Sequence[tuple[str, str]] = ()) -> str:
    """One user turn (with an image slot if asked) rendered by the chat template, after the earlier
    (user, assistant) turns of `history`.

    Without a response the text ends with the assistant's header, ready to generate.
    """
    content = [{"type": "image"}, {"type": "text", "text": prompt}] if image else prompt
    messages = [{"role": role, "content": text} for turn in history for role, text in zip(("user", "assistant"), turn)]
    messages.append({"role": "user", "content": content})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return tok_or_proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=response is None)


def encode_prompts(tok_or_proc, prompts: Sequence[str], images: Sequence | None = None,
                   history: Sequence[tuple[str, str]] = ()) -> dict:
    """Left-padded model inputs for a batch of user prompts (and images for a processor), each
    continuing the same conversation `history`."""
    texts = [format_chat(tok_or_proc, p, image=images is not None, history=history) for p in prompts]
    if images is not None:
        return dict(tok_or_proc(images=list(images), text=texts, return_tensors="pt", padding=True, padding_side="left"))
    return dict(tok_or_proc(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False))


@torch.inference_mode()
def generate(model, tok_or_proc, prompts: Sequence[str], images: Sequence | None = None,
             max_new_tokens: int = 64) -> list[str]:
    """Greedy answers to a batch of prompts; decoding is deterministic so results are testable."""
    batch = {k: v.to(model.device) for k, v in encode_prompts(tok_or_proc, prompts, images).items()}
    tokenizer = tokenizer_of(tok_or_proc)
    out = model.generate(
        **batch, max_new_tokens=max_new_tokens, do_sample=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)

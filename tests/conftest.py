"""Shared fixtures: tiny random models built from configs (never downloaded), and a private cache."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    GemmaConfig,
    GemmaForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

# Tiny models gain nothing from intra-op threads; on 2 cores the contention only slows tests down.
torch.set_num_threads(1)

TINY_TEXT = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=2)


def tiny_model(arch: str = "llama", seed: int = 0) -> torch.nn.Module:
    """A random tiny model of the given family, in eval mode."""
    torch.manual_seed(seed)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**TINY_TEXT))
    elif arch == "mistral":
        model = MistralForCausalLM(MistralConfig(**TINY_TEXT))
    elif arch == "gemma":
        model = GemmaForCausalLM(GemmaConfig(**TINY_TEXT, head_dim=8))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**TINY_TEXT))
    elif arch == "llava_next":
        vision = CLIPVisionConfig(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=32, patch_size=8, projection_dim=32)
        config = LlavaNextConfig(vision_config=vision, text_config=LlamaConfig(**TINY_TEXT),
                                 image_grid_pinpoints=[[32, 32], [32, 64]], image_token_index=96)
        model = LlavaNextForConditionalGeneration(config)
    else:
        raise ValueError(arch)
    return model.eval()


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Every test gets its own SVF cache; the user's cache is never touched."""
    path = tmp_path / "cache"
    monkeypatch.setenv("T2DEMO_CACHE", str(path))
    return path


@pytest.fixture
def llama():
    return tiny_model("llama")


@pytest.fixture
def svf(llama):
    from t2demo.svf import SVF

    return SVF(llama)

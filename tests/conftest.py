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

from t2demo import generation, tasks
from t2demo.adapt import dispatch

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


def tiny_chat_model(tokenizer, init: float = 0.02, **sizes) -> torch.nn.Module:
    """The shipped chat model's configuration (pretrain.text_model_config) at a tiny size; a large
    `init` makes the random model's answers vary with its weights."""
    from t2demo import pretrain

    config = pretrain.text_model_config(tokenizer)
    config.update(TINY_TEXT | sizes | {"vocab_size": len(tokenizer), "initializer_range": init})
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def favour(model, tokenizer, label: str):
    """Bias the output head towards the tokens of `label` after "\\boxed{" (all of them: a bias on
    the first alone would, at the later positions, push down the label's own next tokens)."""
    prefix = generation.format_chat(tokenizer, tasks.classification_prompt("x")) + "\\boxed{"
    bias = torch.zeros(len(tokenizer))
    bias[dispatch.label_ids(tokenizer, prefix, label)] = 50.0
    return model.lm_head.register_forward_hook(lambda module, inputs, out: out + bias)


def save_model_dir(model, tokenizer_or_processor, path):
    """A model folder as from_pretrained reads it: weights plus tokenizer (or processor)."""
    model.save_pretrained(path)
    tokenizer_or_processor.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """A tiny text model with a trained tokenizer, and a LLaVA-Next built on it, saved as folders."""
    from t2demo import pretrain, tasks

    root = tmp_path_factory.mktemp("models")
    pairs = [(ex.prompt, ex.response) for name in ("math", "code", "reasoning", "vqa")
             for ex in tasks.TASKS[name].examples("train", 50)]
    tokenizer = pretrain.train_tokenizer([p + "\n" + r for p, r in pairs], vocab_size=400)
    text = save_model_dir(tiny_chat_model(tokenizer), tokenizer, root / "text")
    return text, save_model_dir(*pretrain.build_vision_model(text), root / "vision")


APP_LABELS = ("code", "math", "reasoning")


def _random_experts(svf, folder, labels, seed: int) -> None:
    """Strong random experts: the random tiny model only changes its greedy answer under large z."""
    from t2demo.experts import Expert, save_expert

    g = torch.Generator().manual_seed(seed)
    folder.mkdir()
    for label in labels:
        z = {n: 1 + 5 * torch.randn(r, generator=g) for n, r in svf.ranks.items()}
        save_expert(Expert.from_svf(svf, z, label, notes={"task": label, "steps": 1}), folder / f"{label}.safetensors")


@pytest.fixture(scope="session")
def app_runtime(model_dirs, tmp_path_factory):
    """Both tiny models with random text experts (APP_LABELS), a cls expert and a vqa expert, loaded
    the way the app loads them (runtime.load_runtime, with a private SVF cache)."""
    from t2demo import models, runtime
    from t2demo.svf import SVF

    text_dir, vision_dir = model_dirs
    root = tmp_path_factory.mktemp("experts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("T2DEMO_CACHE", str(tmp_path_factory.mktemp("cache")))
        _random_experts(SVF(models.load_model(text_dir, "text", "cpu").model), root / text_dir.name,
                        APP_LABELS + ("cls",), 0)
        _random_experts(SVF(models.load_model(vision_dir, "vision", "cpu").model), root / vision_dir.name, ("vqa",), 1)
        yield runtime.load_runtime(text_dir, vision_dir, root, "cpu", log=lambda *_: None)

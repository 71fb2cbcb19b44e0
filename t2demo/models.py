"""Loading the base models: the shipped defaults under assets/, a local folder, or a hub id.

Everything else in t2demo gets its models from here, so the default pair and a user's real
checkpoint go through the same code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoProcessor, AutoTokenizer, LlavaNextForConditionalGeneration

from t2demo.generation import tokenizer_of

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_TEXT_MODEL = ASSETS / "t2demo-llama-tiny"
DEFAULT_VISION_MODEL = ASSETS / "t2demo-llava-tiny"


class ModelLoadError(RuntimeError):
    """A model folder or hub id that cannot be used, with a message a person can act on."""


def resolve_model(name: str | Path, vision: bool = False) -> str:
    """Map "default" to the shipped model; pass folders and hub ids through."""
    if str(name) == "default":
        path = DEFAULT_VISION_MODEL if vision else DEFAULT_TEXT_MODEL
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"the default {'vision' if vision else 'text'} model is missing at {path}; "
                f"retrain it with `python -m t2demo train-base {'vision' if vision else 'text'}`"
            )
        return str(path)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    return str(name)


def pick_device(device: str | None = None) -> torch.device:
    """The fastest device present unless one is named."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """bfloat16 on a GPU, float32 on the CPU (CPU bf16 matmuls are slower and less exact)."""
    if dtype:
        try:
            return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        except KeyError:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16") from None
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _load(name: str | Path, vision: bool, device: str | None, dtype: str | None):
    path = resolve_model(name, vision)
    dev = pick_device(device)
    preprocessor_class, model_class = (
        (AutoProcessor, LlavaNextForConditionalGeneration) if vision else (AutoTokenizer, AutoModelForCausalLM)
    )
    try:
        preprocessor = preprocessor_class.from_pretrained(path)
        model = model_class.from_pretrained(path, dtype=pick_dtype(dtype, dev))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load {'vision' if vision else 'text'} model {name!r}: {err}") from err
    tokenizer = tokenizer_of(preprocessor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(dev).eval(), preprocessor


def load_text_model(name: str | Path = "default", device: str | None = None, dtype: str | None = None):
    """Return (model, tokenizer) for a causal LM, in eval mode on the chosen device."""
    return _load(name, False, device, dtype)


def load_vision_model(name: str | Path = "default", device: str | None = None, dtype: str | None = None):
    """Return (model, processor) for a LLaVA-Next model, in eval mode on the chosen device."""
    return _load(name, True, device, dtype)

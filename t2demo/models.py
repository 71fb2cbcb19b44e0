"""Loading the base models: the shipped defaults under assets/, a local folder, or a hub id.

Everything else in t2demo gets its models from here, as a LoadedModel (model, tokenizer or
processor, family), so the default pair and a user's real checkpoint go through the same code
and nothing downstream asks "is this a vision model" any other way than `lm.vision`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from t2demo import paths
from t2demo.families import TEXT_FAMILY, VISION_FAMILY, Family, family_of

ASSETS = paths.ASSETS
DEFAULT_MODELS = {"text": ASSETS / "t2demo-llama-tiny", "vision": ASSETS / "t2demo-llava-tiny"}
DEFAULT_TEXT_MODEL, DEFAULT_VISION_MODEL = DEFAULT_MODELS["text"], DEFAULT_MODELS["vision"]
KIND_FAMILY = {"text": TEXT_FAMILY, "vision": VISION_FAMILY}


class ModelLoadError(RuntimeError):
    """A model folder or hub id that cannot be used, with a message a person can act on."""


@dataclass
class LoadedModel:
    """A model with the tokenizer or processor that prepares its inputs, and its family."""

    model: nn.Module
    preprocessor: object  # a tokenizer, or a multimodal processor (family.vision)
    family: Family
    path: str = ""  # the resolved folder or hub id it came from

    @classmethod
    def wrap(cls, model: nn.Module, preprocessor, path: str = "") -> LoadedModel:
        """A model built or loaded elsewhere (tests, training), its family read from its config."""
        return cls(model, preprocessor, family_of(model), path or getattr(model.config, "_name_or_path", ""))

    @property
    def vision(self) -> bool:
        return self.family.vision

    @property
    def tokenizer(self):
        """The text tokenizer (a processor's own, for a vision model)."""
        return self.preprocessor.tokenizer if self.vision else self.preprocessor

    @property
    def device(self) -> torch.device:
        return self.model.device


def resolve_model(name: str | Path, kind: str = "text") -> str:
    """Map "default" to the shipped model of this kind; pass folders and hub ids through. A missing
    folder written as a path (it starts with ".", "/" or "~", or its parent folder exists here) is
    refused at once: passed on as a hub id, it would cost a minute of retries offline."""
    if str(name) == "default":
        path = DEFAULT_MODELS[kind]
        if not (path / "config.json").exists():
            raise ModelLoadError(f"the default {kind} model is missing at {path}; "
                                 f"retrain it with `python -m t2demo train-base {kind}`")
        return str(path)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    parent = path.parent
    parent_exists = parent.is_dir()
    if str(name).startswith((".", "/", "~")) or (len(path.parts) > 1 and parent_exists):
        folders = sorted(p.name for p in parent.iterdir() if (p / "config.json").exists()) if parent_exists else []
        hint = f"; model folders in {parent}: {', '.join(folders)}" if folders else ""
        raise ModelLoadError(f"no model folder at {path}{hint}")
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


def load_model(name: str | Path = "default", kind: str = "text", device: str | None = None,
               dtype: str | None = None) -> LoadedModel:
    """A causal LM (kind "text") or a LLaVA-Next model (kind "vision"), in eval mode on the chosen
    device; a pad token is set (the eos) where the tokenizer has none, for batched generation."""
    path = resolve_model(name, kind)
    family = KIND_FAMILY[kind]
    dev = pick_device(device)
    try:
        preprocessor = family.preprocessor_class.from_pretrained(path)
        model = family.model_class.from_pretrained(path, dtype=pick_dtype(dtype, dev))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load {kind} model {str(name)!r}: {err}") from err
    lm = LoadedModel(model.to(dev).eval(), preprocessor, family, path)
    if lm.tokenizer.pad_token is None:
        lm.tokenizer.pad_token = lm.tokenizer.eos_token
    return lm

"""Per-architecture facts, kept as data (as PEFT keeps its target-module tables).

A model family says how t2demo loads a checkpoint (model and preprocessor classes), whether it
reads images, which submodules belong to the vision side (never adapted unless asked), and how
decoder layers are named. Supporting a new family is one entry in FAMILIES.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import AutoModelForCausalLM, AutoProcessor, AutoTokenizer, LlavaNextForConditionalGeneration

# Regular expressions searched in a weight's parameter name. Only nn.Linear weights are ever
# candidates, so embeddings and norms never match; the output head (lm_head) is excluded.
TARGET_PRESETS: dict[str, tuple[str, ...]] = {
    "mlp": (r"\.mlp\.", r"multi_modal_projector\."),  # as the authors released; the projector is an MLP
    "attn": (r"\.self_attn\.",),
    "all": (r".",),
}
# Name parts of a vision-language model's vision side (towers of the families t2demo knows).
VISION_PARTS = ("vision_tower", "vision_model", "visual", "multi_modal_projector")
LAYER_PATTERN = r"layers\.(\d+)\."  # the decoder layer index inside a parameter name


@dataclass(frozen=True)
class Family:
    """How one kind of checkpoint is loaded and read."""

    name: str
    vision: bool  # takes images (a processor), else text only (a tokenizer)
    model_class: type
    preprocessor_class: type
    model_types: tuple[str, ...] = ()  # config.model_type values that belong here; () = any


FAMILIES: dict[str, Family] = {
    "causal-lm": Family("causal-lm", False, AutoModelForCausalLM, AutoTokenizer),
    "llava-next": Family("llava-next", True, LlavaNextForConditionalGeneration, AutoProcessor, ("llava_next",)),
}
TEXT_FAMILY, VISION_FAMILY = FAMILIES["causal-lm"], FAMILIES["llava-next"]


def family_of(model) -> Family:
    """The family of a loaded model, from its config's model_type (text models are the fallback)."""
    model_type = getattr(model.config, "model_type", "")
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    return TEXT_FAMILY

"""Loading what adapts: a model with its experts as an Adapter, or the app's text + vision pair.

The app, the CLI (`eval --mix`, `export-lora`) and the reports all load through here, so a model
folder gets the same experts everywhere: experts/<model folder>/ (experts.expert_dir), and for a
vision model also its text model's task experts, transferred onto its language model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from t2demo import models
from t2demo.adapt.adapter import Adapter
from t2demo.experts import expert_dir, load_model_experts
from t2demo.svf import SVF


def load_adapter(name: str | Path = "default", kind: str = "text", experts_root: str | Path | None = None,
                 device: str | None = None, dtype: str | None = None, targets: str = "mlp",
                 transfer_from: str | Path | None = None, lm: models.LoadedModel | None = None) -> Adapter:
    """A model (or the already loaded `lm`) with its experts; a vision model also gets the task
    experts of the text model `transfer_from` ("default", a folder or a hub id)."""
    lm = lm or models.load_model(name, kind, device, dtype)
    svf = SVF(lm.model, targets)
    folder = expert_dir(lm.path, experts_root)
    source = expert_dir(models.resolve_model(transfer_from), experts_root) if transfer_from is not None else None
    experts, cls = load_model_experts(folder, svf, source)
    return Adapter(lm, experts, cls, svf)


@dataclass
class Runtime:
    """The loaded models and experts, shared by all sessions (read-only outside the SVF lock)."""

    text: Adapter
    vision: Adapter | None
    notes: list[str] = field(default_factory=list)  # what could not be loaded, shown in the UI

    @property
    def device(self) -> str:
        return str(self.text.lm.device)


def load_runtime(model: str = "default", vlm: str | None = "default", experts: str | Path | None = None,
                 device: str | None = None, dtype: str | None = None, targets: str = "mlp",
                 log=print) -> Runtime:
    """Load the text model (and the vision model unless vlm is None) with their experts."""
    notes: list[str] = []
    start = time.perf_counter()
    log(f"[1/2] loading text model {model!r} ...")
    text = load_adapter(model, "text", experts, device, dtype, targets)
    log(f"      {len(text.experts)} experts {text.labels}, classifier: {'yes' if text.cls_expert else 'no'} "
        f"({time.perf_counter() - start:.1f} s)")
    if vlm == "default" and not (models.DEFAULT_VISION_MODEL / "config.json").exists():
        notes.append("the default vision model is missing (no VQA tab); train it with "
                     "`python -m t2demo train-base vision`")
        vlm = None
    vision = None
    if vlm:
        log(f"[2/2] loading vision model {vlm!r} ...")
        vision = load_adapter(vlm, "vision", experts, device, dtype, targets, transfer_from=model)
        log(f"      {len(vision.experts)} experts {vision.labels} ({time.perf_counter() - start:.1f} s)")
    for adapter, what in ((text, "text"), (vision, "vision")):
        if adapter is not None and not adapter.experts:
            notes.append(f"no experts for the {what} model: train them with `python -m t2demo train-expert` "
                         "(answers use the base model)")
    return Runtime(text, vision, notes)

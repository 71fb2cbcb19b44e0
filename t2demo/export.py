"""Two ways to take an adapted model out of t2demo, for serving stacks that know nothing of SVF.

- `export_merged`: a Hugging Face folder with W'(z) written into the weights; one full model per
  expert or mixture, loaded by `from_pretrained` anywhere.
- `export_lora`: a PEFT LoRA adapter holding the change ΔW = W' − W; one base model serves many
  adapters, chosen per request (PEFT, vLLM's multi-LoRA serving).

Why a LoRA fits an SVF expert: with W = U diag(σ) Vᵀ and W' = U diag(σ ⊙ z) Vᵀ the change is
ΔW = U diag(d) Vᵀ with d = σ ⊙ (z − 1), already a singular value decomposition (up to the order
and signs of d). By Eckart–Young its best rank-r approximation, in the Frobenius and the spectral
norm, keeps the r largest |dᵢ|, and the relative error is sqrt(Σ dropped dᵢ²) / sqrt(Σ dᵢ²): at
full rank the adapter is exact. `lora_fidelity` measures what a smaller rank costs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from t2demo.atomic import atomic_folder
from t2demo.experts import Expert, load_expert, load_model_experts, mixture_from_labels, parse_mix
from t2demo.svf import SVF

LoRA = dict[str, tuple[Tensor, Tensor]]  # target parameter name -> (A (k, in), B (out, k)), ΔW_k = B A
FIDELITY_RANKS = "0,1,2,4,8,16,32,full"
ACCURACY_RANKS = "0,4,16,full"


class ExportError(ValueError):
    """An export that cannot be made as asked (bad rank, unknown matrix, bad source)."""


class ExportExistsError(ExportError, FileExistsError):
    """The export's target folder exists already; exports never overwrite."""


def _z_of(svf: SVF, expert_or_z: Expert | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The z of an expert or a z dict, checked against svf's targets."""
    z = dict(expert_or_z.z if isinstance(expert_or_z, Expert) else expert_or_z)
    for name, v in z.items():
        if name not in svf.ranks:
            raise ExportError(f"z names {name!r}, which is not an adapted matrix of this model")
        if tuple(v.shape) != (svf.ranks[name],):
            raise ExportError(f"z[{name!r}] has shape {tuple(v.shape)}; this matrix has rank {svf.ranks[name]}")
    return z


def _fresh(target: str | Path) -> Path:
    target = Path(target)
    if target.exists():
        raise ExportExistsError(f"{target} already exists; choose another folder (exports never overwrite)")
    return target


def export_merged(svf: SVF, z: Expert | Mapping[str, Tensor], tokenizer_or_processor, target: str | Path) -> Path:
    """Save svf's model with W'(z) written in, plus its tokenizer or processor, as a folder that
    `from_pretrained` loads. Written beside `target` and renamed into place, so a failure leaves
    nothing; an existing target is refused. The model's own weights are restored afterwards."""
    target = _fresh(target)
    z = _z_of(svf, z)
    with atomic_folder(target) as tmp, svf.adapted(z) as model:
        model.save_pretrained(tmp)
        tokenizer_or_processor.save_pretrained(tmp)
    return target


# ----------------------------------------------------------------------------- LoRA factors

def delta_sigma(svf: SVF, name: str, z: Tensor) -> Tensor:
    """d with ΔW = U diag(d) Vᵀ for one matrix (float32): σ ⊙ (z − 1), or with svf.rescale the
    authors' Σσ/Σσz factor folded in (σ ⊙ (c·z − 1)), which is still diagonal in the same basis."""
    S = svf.factors(name)[1].float().cpu()
    scaled = S * z.detach().float().cpu()
    if svf.rescale:
        scaled = scaled * (S.sum() / scaled.sum())
    return scaled - S


def lora_from_z(svf: SVF, z: Expert | Mapping[str, Tensor], rank: int) -> LoRA:
    """The best rank-`rank` LoRA of ΔW per matrix of z: the `rank` largest |dᵢ| (fewer where a
    matrix has a smaller rank), B = U[:, i]·sign(d)·sqrt|d|, A = sqrt|d|·Vᵀ[i, :]. The sqrt split
    gives A and B the same scale, so bf16/fp16 serving rounds neither to nothing. float32, CPU."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ExportError(f"rank must be a positive integer, got {rank!r}")
    out = {}
    for name, v in _z_of(svf, z).items():
        U, _, Vh = svf.factors(name)
        d = delta_sigma(svf, name, v)
        idx = d.abs().topk(min(rank, d.numel())).indices
        root = d[idx].abs().sqrt()
        out[name] = (root[:, None] * Vh[idx.to(Vh.device)].float().cpu(),
                     U[:, idx.to(U.device)].float().cpu() * (root * d[idx].sign()))
    return out


def _peft_tensors(lora: LoRA, r: int) -> dict[str, Tensor]:
    """PEFT's key naming, each matrix zero-padded to the one rank r (see export_lora)."""
    tensors = {}
    for name, (A, B) in lora.items():
        module = name.removesuffix(".weight")
        pad = r - A.shape[0]
        tensors[f"base_model.model.{module}.lora_A.weight"] = torch.cat([A, A.new_zeros(pad, A.shape[1])])
        tensors[f"base_model.model.{module}.lora_B.weight"] = torch.cat([B, B.new_zeros(B.shape[0], pad)], dim=1)
    return tensors


def _target_modules(model: nn.Module, modules: Sequence[str]) -> list[str]:
    """Short names ("gate_proj") where they pick exactly these modules in the model, the form
    PEFT and vLLM examples use; else the full module names, which PEFT matches exactly."""
    short = sorted({m.rsplit(".", 1)[-1] for m in modules})
    picked = {n for n, _ in model.named_modules() if n.rsplit(".", 1)[-1] in short}
    return short if picked == set(modules) else sorted(modules)


def adapter_config(svf: SVF, modules: Sequence[str], r: int, base_model_name_or_path: str) -> dict:
    """adapter_config.json for a plain LoRA: lora_alpha = r, so PEFT's and vLLM's scaling
    lora_alpha / r is 1 and B·A is ΔW itself."""
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model_name_or_path,
            "r": r, "lora_alpha": r, "target_modules": _target_modules(svf.model, modules),
            "lora_dropout": 0.0, "fan_in_fan_out": False, "bias": "none", "use_rslora": False,
            "use_dora": False, "modules_to_save": None, "rank_pattern": {}, "alpha_pattern": {},
            "layers_to_transform": None, "init_lora_weights": True, "inference_mode": True}


def export_lora(svf: SVF, expert_or_z: Expert | Mapping[str, Tensor], rank: int, out: str | Path,
                base_model_name_or_path: str | None = None) -> Path:
    """Write ΔW at `rank` as a PEFT LoRA adapter folder (adapter_config.json,
    adapter_model.safetensors, t2demo_export.json with the source), atomically; `out` must not exist.

    Choices, for vLLM: one r for every module, with matrices of smaller rank zero-padded (vLLM
    applies one scaling lora_alpha / r per adapter and ignores PEFT's rank_pattern); r is `rank`
    clamped to the largest matrix rank, so r = full is exact. target_modules are the short names
    ("gate_proj", "up_proj", "down_proj") when they select exactly the adapted modules; vLLM reads
    the modules from the tensor keys and checks only their short names, PEFT needs the list. When
    short names would catch more (e.g. a few layers only), the full module names are written
    instead of layers_to_transform, which PEFT matches exactly and which covers any target set.
    Tensors are float32; the server casts them to its dtype.
    """
    out = _fresh(out)
    lora = lora_from_z(svf, expert_or_z, rank)
    if not lora:
        raise ExportError("z adapts no matrix; there is nothing to export")
    r = max(A.shape[0] for A, _ in lora.values())
    modules = [n.removesuffix(".weight") for n in lora]
    config = adapter_config(svf, modules, r, base_model_name_or_path or svf.base_model_name)
    source = {"label": expert_or_z.label if isinstance(expert_or_z, Expert) else "z", "rank": r,
              "base_fingerprint": svf.fingerprint, "rescale": svf.rescale}
    with atomic_folder(out) as tmp:
        save_file(_peft_tensors(lora, r), tmp / "adapter_model.safetensors", metadata={"format": "pt"})
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "t2demo_export.json").write_text(json.dumps(source, indent=2) + "\n")
    return out


# ----------------------------------------------------------------------------- fidelity

def _lora_hook(A: Tensor, B: Tensor) -> Callable:
    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        return output + ((inputs[0].to(A.dtype) @ A.T) @ B.T).to(output.dtype)
    return hook


@contextmanager
def lora_applied(svf: SVF, lora: LoRA) -> Iterator[nn.Module]:
    """svf's model with its exact base weights and, on each matrix of `lora`, x·Aᵀ·Bᵀ added to the
    layer's output: PEFT's unmerged forward, so measurements see the adapter as served, not a
    merged approximation. Holds svf's lock; the hooks are gone on exit, the weights never change."""
    with svf.adapted(None) as model:
        handles = []
        try:
            for name, (A, B) in lora.items():
                module = model.get_submodule(name.removesuffix(".weight"))
                device = module.weight.device
                handles.append(module.register_forward_hook(_lora_hook(A.to(device), B.to(device))))
            yield model
        finally:
            for handle in handles:
                handle.remove()


def _relative_error(svf: SVF, z: Mapping[str, Tensor], lora: LoRA) -> float:
    """‖ΔW − B·A‖ / ‖ΔW‖ over all matrices together (Frobenius), from the reconstructed matrices."""
    err = total = 0.0
    for name, v in z.items():
        U, _, Vh = svf.factors(name)
        delta = (U.float().cpu() * delta_sigma(svf, name, v)) @ Vh.float().cpu()
        approx = lora[name][1] @ lora[name][0] if name in lora else torch.zeros_like(delta)
        err += float((delta - approx).square().sum())
        total += float(delta.square().sum())
    return (err / total) ** 0.5 if total else 0.0


def _rank_label(svf: SVF, z: Expert | Mapping[str, Tensor], r: int) -> str:
    full = max((svf.ranks[n] for n in _z_of(svf, z)), default=0)
    return f"{r} (base)" if r == 0 else f"{r} (full)" if r >= full else str(r)


def _log_probs(model: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    device = next(model.parameters()).device
    logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
    return torch.log_softmax(logits.float(), dim=-1).cpu()


@torch.no_grad()
def lora_fidelity(svf: SVF, z: Expert | Mapping[str, Tensor], ranks: Sequence[int], input_ids: Tensor,
                  attention_mask: Tensor | None = None) -> list[dict]:
    """Per rank (0 = the base model): the LoRA's numbers in the adapter file ("params"), the
    relative error ‖ΔW − ΔW_r‖/‖ΔW‖ over all matrices ("rel_error"), and the mean next-token
    KL(SVF-adapted ‖ base + LoRA) over the unmasked positions of input_ids ("kl", nats)."""
    z = _z_of(svf, z)
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    with svf.adapted(z) as model:
        ref = _log_probs(model, input_ids, mask)
    rows = []
    for r in sorted(set(ranks)):
        lora = lora_from_z(svf, z, r) if r else {}
        with lora_applied(svf, lora) as model:
            logq = _log_probs(model, input_ids, mask)
        kl = (ref.exp() * (ref - logq)).sum(-1).clamp_min(0)  # ≥ 0; rounding can dip below at full rank
        padded = max((A.shape[0] for A, _ in lora.values()), default=0)
        rows.append({"rank": r, "label": _rank_label(svf, z, r),
                     "params": sum(padded * (A.shape[1] + B.shape[0]) for A, B in lora.values()),
                     "rel_error": _relative_error(svf, z, lora), "kl": float((kl * mask).sum() / mask.sum())})
    return rows


def lora_accuracy(svf: SVF, z: Expert | Mapping[str, Tensor], ranks: Sequence[int],
                  score: Callable[[nn.Module], dict]) -> list[dict]:
    """`score(model)` (e.g. greedy task accuracy) of base + LoRA at each rank (0 = base) and of
    the SVF path itself (rank None, label "SVF"), for the fidelity table."""
    rows = []
    for r in sorted(set(ranks)):
        with lora_applied(svf, lora_from_z(svf, z, r) if r else {}) as model:
            rows.append({"rank": r, "label": _rank_label(svf, z, r), "accuracy": score(model)})
    with svf.adapted(_z_of(svf, z)) as model:
        rows.append({"rank": None, "label": "SVF", "accuracy": score(model)})
    return rows


def format_fidelity(rows: Sequence[dict], title: str = "") -> str:
    """Fidelity and accuracy rows, merged by rank, as a text table ("-" where a row has no value)."""
    merged: dict = {}
    for row in rows:
        merged.setdefault(row["rank"], {}).update(row)
    lines = [title] if title else []
    lines.append(f"{'rank':<11}{'params':>10}{'rel ‖ΔW−ΔW_r‖':>15}{'KL nats':>11}{'accuracy':>10}{'95% CI':>16}"
                 f"{'n':>6}")
    for rank, row in sorted(merged.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        acc = row.get("accuracy") or {}
        ci = "[{:.1f}, {:.1f}]".format(*acc["ci95"]) if acc else None
        cells = [(row.get("params"), "{:>10}", 10), (row.get("rel_error"), "{:>15.4f}", 15),
                 (row.get("kl"), "{:>11.2e}", 11), (acc.get("accuracy"), "{:>9.1f}%", 10),
                 (ci, "{:>16}", 16), (acc.get("n"), "{:>6}", 6)]
        lines.append(f"{row.get('label', rank):<11}" + "".join(
            "-".rjust(width) if value is None else fmt.format(value) for value, fmt, width in cells))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- sources and measurements

def z_from_source(svf: SVF, source: str, folder: str | Path) -> tuple[dict[str, Tensor], str]:
    """z and a label for `source`: an expert file (*.safetensors), a label of the experts in
    `folder` (the classifier "cls" included: vLLM can serve the first pass too), or a mixture of
    them "math=0.5,code=0.5" (z' = 1 + Σ αₖ (zₖ − 1), as `eval --mix`)."""
    path = Path(source)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ExportError(f"no expert file {path}")
        expert = load_expert(path, svf)
        return expert.z, expert.label
    mix = parse_mix(source)
    experts, cls = load_model_experts(folder, svf)
    return mixture_from_labels(svf, experts + ([cls] if cls else []), mix), source


def parse_ranks(spec: str, full: int) -> list[int]:
    """"0,4,full" -> [0, 4, full]: integers >= 0 (0 = the base model) or "full"."""
    ranks = []
    for item in filter(None, (part.strip() for part in str(spec).split(","))):
        if item == "full":
            ranks.append(full)
        elif item.isdigit():
            ranks.append(int(item))
        else:
            raise ExportError(f"a rank is a non-negative integer or 'full', got {item!r}")
    return ranks


def kl_batch(lm, task_name: str, n: int) -> dict[str, Tensor]:
    """n validation examples of the task, prompt and reference answer in the chat template."""
    from t2demo import tasks
    from t2demo.generation import format_chat

    examples = tasks.TASKS[task_name].examples("validation", n)
    texts = [format_chat(lm.preprocessor, ex.prompt, ex.response) for ex in examples]
    return dict(lm.tokenizer(texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False))


def task_scorer(lm, task_name: str, limit: int, batch_size: int) -> Callable[[nn.Module], dict]:
    """Greedy accuracy on the task's first `limit` test examples with lm's model as it is now."""
    from t2demo import tasks
    from t2demo.evaluate import summarise
    from t2demo.generation import generate

    task = tasks.TASKS[task_name]
    examples = task.examples("test", limit)

    def score(_model: nn.Module) -> dict:  # lm.model is that model, hooks included
        answers = [a for i in range(0, len(examples), batch_size)
                   for a in generate(lm, [ex.prompt for ex in examples[i:i + batch_size]], None, task.max_new_tokens)]
        return summarise(task.check_many(examples, answers))
    return score

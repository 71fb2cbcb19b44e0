"""SVF expert vectors on disk: one safetensors file per expert, validated before use.

File layout: one 1-D tensor per adapted matrix, named by the matrix's parameter name, holding the
scale z itself (parameterisation "scale"; W' = U diag(σ ⊙ z) Vᵀ), plus string metadata:
format_version, label, base_model, fingerprint (of the base weights of those matrices), targets
(JSON), parameterisation, notes (JSON). Pickles are never loaded, except the authors' released
format through `import_authors_expert`, which uses torch.load(weights_only=True).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from t2demo import paths
from t2demo.atomic import save_safetensors_atomic
from t2demo.svf import SVF

FORMAT_VERSION = 1
EXPERTS_DIR = paths.EXPERTS
CLASSIFIER_LABEL = "cls"  # the first-pass classification expert; every other file is a task expert
_REQUIRED = ("format_version", "label", "base_model", "fingerprint", "targets", "parameterisation", "notes")
MAX_LABEL_CHARS = 90  # "uploaded:" + a label still fits the app's names (validation.MAX_NAME_CHARS)
SHOWN_NOTES = ("task", "objective", "steps", "best_val_accuracy")  # expert_row's columns


class ExpertError(ValueError):
    """An expert file that cannot be used (safely) with this model."""


@dataclass
class Expert:
    z: dict[str, Tensor]
    label: str
    base_model: str
    fingerprint: str
    targets: str | list[str]
    parameterisation: str = "scale"
    notes: dict = field(default_factory=dict)

    @classmethod
    def from_svf(cls, svf: SVF, z: Mapping[str, Tensor], label: str, notes: dict | None = None) -> Expert:
        """An expert for svf's base model, with the fingerprint of the matrices z covers."""
        names = [n for n in svf.names if n in z]
        if len(names) != len(z):
            raise ExpertError(f"z has names that are not targets of this model, e.g. {next(n for n in z if n not in svf.ranks)!r}")
        return cls(z={n: z[n].detach().float().cpu() for n in names}, label=label,
                   base_model=svf.base_model_name, fingerprint=svf.fingerprint_of(names),
                   targets=svf.targets if isinstance(svf.targets, str) else list(svf.targets),
                   notes=dict(notes or {}))


def save_expert(expert: Expert, path: str | Path) -> None:
    """Write an expert atomically (a crash never leaves a half-written file at `path`)."""
    if expert.parameterisation != "scale":
        raise ExpertError(f"only the 'scale' parameterisation is stored, got {expert.parameterisation!r}")
    metadata = {
        "format_version": str(FORMAT_VERSION),
        "label": expert.label,
        "base_model": expert.base_model,
        "fingerprint": expert.fingerprint,
        "targets": json.dumps(expert.targets),
        "parameterisation": expert.parameterisation,
        "notes": json.dumps(expert.notes),
    }
    save_safetensors_atomic(dict(expert.z), path, metadata)


def _check_is_safetensors(path: Path) -> None:
    """Refuse anything that is not safetensors before a parser sees it (pickles in particular)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    if len(head) == 9 and 0 < header_len <= size - 8 and head[8:9] == b"{":
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise ExpertError(f"{path} is a pickle (torch.save) file; pickles are refused, never loaded. "
                          "For the authors' released experts use import_authors_expert()")
    raise ExpertError(f"{path} is not a safetensors file (or its header is truncated)")


def _check_against(expert: Expert, svf: SVF, path: Path, allow_transfer: bool) -> Expert:
    """The expert, validated against svf's model. With allow_transfer, names from another model's
    layout (a text model's "model.layers.0..." on a LLaVA-Next's "model.language_model.layers.0...")
    are mapped onto this model's targets, as in the paper's transfer of language experts."""
    unknown = [n for n in expert.z if n not in svf.ranks]
    if unknown and allow_transfer:
        expert = replace(expert, z={_match_name(n, svf): v for n, v in expert.z.items()})
    elif unknown:
        raise ExpertError(f"{path}: {len(unknown)} matrix names are not targets of this model, e.g. {unknown[0]!r} "
                          "(another model's expert? pass allow_transfer=True)")
    for n, v in expert.z.items():
        if v.numel() != svf.ranks[n]:
            raise ExpertError(f"{path}: {n} has {v.numel()} values but this model's matrix has rank {svf.ranks[n]}")
    fingerprint = svf.fingerprint_of([n for n in svf.names if n in expert.z])
    if expert.fingerprint != fingerprint:
        msg = (f"{path}: expert trained on {expert.base_model!r} (fingerprint {expert.fingerprint[:12]}), "
               f"this model is {svf.base_model_name!r} (fingerprint {fingerprint[:12]}): cross-model transfer")
        if not allow_transfer:
            raise ExpertError(msg + "; pass allow_transfer=True to use it anyway")
        warnings.warn(msg, stacklevel=3)
    return expert


def load_expert(path: str | Path, svf: SVF | None = None, *, allow_transfer: bool = False) -> Expert:
    """Read and validate an expert file; with `svf`, also check names, shapes and fingerprint."""
    path = Path(path)
    _check_is_safetensors(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            z = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ExpertError(f"{path} is corrupt or truncated: {e}") from e
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ExpertError(f"{path}: unknown format version {meta.get('format_version')!r} "
                          f"(this t2demo reads version {FORMAT_VERSION})")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise ExpertError(f"{path}: metadata lacks {missing}")
    if meta["parameterisation"] != "scale":
        raise ExpertError(f"{path}: unknown parameterisation {meta['parameterisation']!r} (expected 'scale')")
    if not z:
        raise ExpertError(f"{path} holds no vectors")
    for n, v in z.items():
        if v.ndim != 1 or not v.is_floating_point():
            raise ExpertError(f"{path}: {n} must be a 1-D float vector, got {tuple(v.shape)} {v.dtype}")
        if not bool(torch.isfinite(v).all()):
            raise ExpertError(f"{path}: {n} holds non-finite values (NaN or inf)")
    try:
        targets, notes = json.loads(meta["targets"]), json.loads(meta["notes"])
    except json.JSONDecodeError as e:
        raise ExpertError(f"{path}: metadata 'targets' or 'notes' is not valid JSON ({e})") from e
    _check_metadata(path, meta["label"], targets, notes)
    expert = Expert(z=z, label=meta["label"], base_model=meta["base_model"], fingerprint=meta["fingerprint"],
                    targets=targets, parameterisation="scale", notes=notes)
    return expert if svf is None else _check_against(expert, svf, path, allow_transfer)


def _check_metadata(path: Path, label: str, targets, notes) -> None:
    """Refuse metadata of the wrong type or content before an Expert holds it: the experts table,
    mixture names and messages read these fields as the types below."""
    if not 0 < len(label) <= MAX_LABEL_CHARS or not label.isprintable():
        raise ExpertError(f"{path}: metadata 'label' must be 1 to {MAX_LABEL_CHARS} printable characters, "
                          f"got {label[:MAX_LABEL_CHARS]!r}{'...' if len(label) > MAX_LABEL_CHARS else ''}")
    if not (isinstance(targets, str) or (isinstance(targets, list) and all(isinstance(t, str) for t in targets))):
        raise ExpertError(f"{path}: metadata 'targets' must be a string or a list of strings, "
                          f"got {type(targets).__name__}")
    if not isinstance(notes, dict):
        raise ExpertError(f"{path}: metadata 'notes' must be a JSON object, got {type(notes).__name__}")
    wrong = [k for k in SHOWN_NOTES if not isinstance(notes.get(k, ""), (str, int, float))]
    if wrong:
        raise ExpertError(f"{path}: notes {wrong} must be text or numbers")


def _match_name(key: str, svf: SVF) -> str:
    """Map a parameter name from another naming (e.g. with a "base_model." prefix) to a target."""
    found = [n for n in svf.names if n == key or n.endswith("." + key) or key.endswith("." + n)]
    if len(found) != 1 and "layers." in key:  # e.g. "language_model.model.layers.0..." (older LLaVA naming)
        tail = key[key.index("layers."):]
        found = [n for n in svf.names if n.endswith("." + tail) and svf.layer_of(n) is not None]
    if len(found) != 1:
        raise ExpertError(f"cannot map {key!r} to one target of this model "
                          f"({'no match' if not found else f'{len(found)} matches'})")
    return found[0]


POLICY_PREFIX = "learnable_params_module_list."  # the authors' Policy.state_dict(): policy_params.pt
AUTHORS_RESCALE = "authors_rescale"  # notes key: {matrix: c}, the Σσ / Σ(σ·mask) folded into an imported z


def authors_order(svf: SVF) -> list[str]:
    """The matrices the authors' Policy adapts, in its order: every decoder-layer weight whose name
    holds "mlp", as model.state_dict() lists them (gate_proj, up_proj, down_proj per layer for
    Llama-3 and Mistral). policy_params.pt numbers its vectors in this order."""
    return [n for n in svf.names if ".mlp." in n and svf.layer_of(n) is not None]


def _authors_raw(state: Mapping, svf: SVF, path: Path) -> tuple[str, dict[str, Tensor]]:
    """The file kind and {target name: raw p}: policy_params.pt ({"learnable_params_module_list.N": p},
    N in authors_order) or learnable_params.pt ({parameter name: p})."""
    keys = [str(k) for k in state]
    if "adaptive_weights" in keys:
        raise ExpertError(f"{path} is a WeightedCombination policy (a mixture of experts), not an expert; "
                          "import the experts it mixes")
    if not any(k.startswith(POLICY_PREFIX) for k in keys):
        return "learnable_params", {_match_name(k, svf): p for k, p in zip(keys, state.values())}
    order = authors_order(svf)
    expected = [f"{POLICY_PREFIX}{i}" for i in range(len(order))]
    if sorted(keys) != sorted(expected):
        raise ExpertError(f"{path}: a policy_params file with {len(keys)} entries, but this model's SVF targets "
                          f"hold {len(order)} MLP matrices ({expected[0]}..{len(order) - 1} expected)")
    return "policy_params", {name: state[key] for name, key in zip(order, expected)}


def authors_mask(p: Tensor, max_mult: float = 1.0) -> Tensor:
    """The authors' get_mask: sigmoid(p) in bfloat16, times max_mult (float32 out)."""
    return (torch.sigmoid(p).to(torch.bfloat16) * max_mult).float()


def authors_rescale(mask: Tensor, S: Tensor) -> float:
    """c = Σσ / Σ(σ·mask): what the authors' compose_new_params multiplies U diag(σ·mask) Vᵀ by."""
    S = S.detach().double().cpu()
    return float(S.sum() / (S * mask.detach().double()).sum())


def _is_safetensors(path: Path) -> bool:
    try:
        with safe_open(path, framework="pt"):
            return True
    except (SafetensorError, OSError):
        return False


def _load_authors_file(path: Path) -> Mapping:
    """The file's {name: tensor} dict, unpickled weights_only. A safetensors file is refused (torch.load
    would read it): it is a t2demo expert, or at least not the authors' format."""
    if _is_safetensors(path):
        raise ExpertError(f"{path} is a safetensors file (a t2demo expert?), not the authors' torch.save format")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ExpertError(f"{path} is not a loadable torch state dict: {e}") from e
    if not isinstance(state, Mapping) or not state:
        raise ExpertError(f"{path} does not hold a {{name: tensor}} dict")
    return state


def import_authors_expert(path: str | Path, svf: SVF, label: str, max_mult: float = 1.0) -> Expert:
    """The authors' released expert as a t2demo expert that composes exactly their W'.

    Both file kinds of SakanaAI/self-adaptive-llms load with torch.load(weights_only=True): policy_params.pt
    (what their training always writes) and learnable_params.pt (save_legacy_params). Their W' is
    U diag(σ·m) Vᵀ · Σσ/Σ(σ·m) with m = sigmoid(p)·max_mult; the rescale c is one scalar per matrix,
    so z = m·c gives the same W' under t2demo's composition (no rescale), and every path (dispatch,
    the app, eval --mix, export-lora) uses it unchanged. c is kept in notes[AUTHORS_RESCALE], so
    authors_mixture can mix the way their WeightedCombination does.
    """
    path = Path(path)
    state = _load_authors_file(path)
    kind, raw = _authors_raw(state, svf, path)
    z, rescale = {}, {}
    for name, p in raw.items():
        if not isinstance(p, Tensor) or p.ndim != 1 or not p.is_floating_point():
            raise ExpertError(f"{path}: the vector for {name} is not a 1-D float tensor")
        if p.numel() != svf.ranks[name]:
            raise ExpertError(f"{path}: the vector for {name} has {p.numel()} values but {name} has rank {svf.ranks[name]}")
        if not bool(torch.isfinite(p).all()):
            raise ExpertError(f"{path}: the vector for {name} holds non-finite values")
        mask = authors_mask(p.detach(), max_mult)
        rescale[name] = authors_rescale(mask, svf.factors(name)[1])
        z[name] = mask * rescale[name]
    notes = {"imported_from": path.name, "source_format": kind, "max_mult": max_mult,
             "source_parameterisation": "m = sigmoid(p) * max_mult; W' = U diag(σ m) Vᵀ · Σσ/Σ(σ m)",
             "conversion": "z = m · c, c = Σσ/Σ(σ m) per matrix (notes.authors_rescale): the same W' without a rescale",
             AUTHORS_RESCALE: rescale}
    return Expert.from_svf(svf, z, label, notes=notes)


def authors_mixture(svf: SVF, experts: Sequence[Expert], alpha: Tensor | Sequence) -> dict[str, Tensor]:
    """z' that composes what the authors' WeightedCombination composes from imported experts: their
    masks m = z / c mixed (svf.mix: Σ αₖ mₖ, any mass α leaves to the base mask 1), then the Σσ rescale,
    folded in per matrix. svf.mix of the converted z's instead mixes the experts' W' linearly
    (Σ αₖ W'ₖ where Σα = 1): the same for a one-hot α, slightly different in between."""
    missing = [e.label for e in experts if AUTHORS_RESCALE not in e.notes]
    if missing:
        raise ExpertError(f"expert {missing[0]!r} was not imported from the authors' files (no {AUTHORS_RESCALE} in its notes)")
    masks = [{n: v / e.notes[AUTHORS_RESCALE][n] for n, v in e.z.items()} for e in experts]
    return {n: m * authors_rescale(m, svf.factors(n)[1]) for n, m in svf.mix(masks, alpha).items()}


def mixture_expert(svf: SVF, experts: Sequence[Expert], alpha: Tensor | Sequence) -> Expert:
    """z' = svf.mix(experts, α) as an ordinary expert, labelled "mixture:a+b", with α in its notes."""
    alpha = torch.as_tensor(alpha, dtype=torch.float32)
    z = svf.mix([e.z for e in experts], alpha)
    labels = [e.label for e in experts]
    return Expert.from_svf(svf, z, "mixture:" + "+".join(labels),
                           notes={"alpha": alpha.tolist(), "experts": labels})


def parse_mix(spec: str) -> dict[str, float]:
    """"math" -> {"math": 1.0}; "math=0.5,code=0.25" -> {"math": 0.5, "code": 0.25} (what `eval --mix`
    and `export-lora` take); a malformed item is an ExpertError."""
    mix = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        label, eq, value = item.partition("=")
        try:
            mix[label.strip()] = float(value) if eq else 1.0
        except ValueError:
            raise ExpertError(f"expected LABEL=ALPHA items such as math=0.5,code=0.5, got {item!r}") from None
    if not mix:
        raise ExpertError("no expert given")
    return mix


def mixture_from_labels(svf: SVF, experts: Sequence[Expert], alpha_by_label: Mapping[str, float]) -> dict[str, Tensor]:
    """z' = svf.mix of `experts` picked by label, e.g. {"math": 0.5} (what `eval --mix` evaluates);
    an unknown label is an ExpertError that lists the ones there."""
    by_label = {e.label: e for e in experts}
    unknown = [label for label in alpha_by_label if label not in by_label]
    if unknown:
        raise ExpertError(f"no expert {unknown[0]!r} (there: {sorted(by_label) or 'none'})")
    return svf.mix([by_label[label].z for label in alpha_by_label], list(alpha_by_label.values()))


LORA_NOTES = "t2demo_training.json"  # in a LoRA baseline's folder: {"label": ..., "notes": {...}} (train.py writes it)


def lora_notes(folder: str | Path) -> dict:
    """A LoRA baseline folder's training notes ({} when it has none)."""
    meta = Path(folder) / LORA_NOTES
    return json.loads(meta.read_text())["notes"] if meta.exists() else {}


def expert_dir(model_path: str | Path, root: str | Path | None = None) -> Path:
    """Where a model's experts live: <root>/<model folder name>, root defaulting to the project's
    experts/ folder (experts/README.md)."""
    return Path(root if root is not None else EXPERTS_DIR) / Path(str(model_path)).name


def load_expert_dir(folder: str | Path, svf: SVF, *, allow_transfer: bool = False) -> tuple[list[Expert], Expert | None]:
    """The task experts of a folder (sorted by label) and its classification expert, if any.

    Only `<label>.safetensors` files whose label has no "-" are loaded: ablations (math-rl) and
    LoRA folders sit beside the experts but are not mixed. A missing folder gives no experts.
    """
    paths = sorted(p for p in Path(folder).glob("*.safetensors") if "-" not in p.stem)
    loaded = [load_expert(p, svf, allow_transfer=allow_transfer) for p in paths]
    cls = next((e for e in loaded if e.label == CLASSIFIER_LABEL), None)
    return [e for e in loaded if e.label != CLASSIFIER_LABEL], cls


def load_model_experts(folder: str | Path, svf: SVF, transfer_from: str | Path | None = None) -> tuple[list[Expert], Expert | None]:
    """A model's task experts and classifier (load_expert_dir), plus, for a LLaVA-Next model, its text
    model's task experts from `transfer_from` mapped onto its language model (the paper's transfer
    of language experts), where it has none of the same label. Text experts that do not fit its
    language model (another architecture than the text model's) are left out with a warning."""
    experts, cls = load_expert_dir(folder, svf)
    if transfer_from is not None:
        try:
            with warnings.catch_warnings():  # the transfer is intended: the language model started as the text model
                warnings.simplefilter("ignore", UserWarning)
                extra, _ = load_expert_dir(transfer_from, svf, allow_transfer=True)
        except ExpertError as e:
            warnings.warn(f"the text model's experts are not transferred to this vision model: {e}", stacklevel=2)
            extra = []
        own = {e.label for e in experts}
        experts += [e for e in extra if e.label not in own]
    return experts, cls


# ----------------------------------------------------------------------------- analytics

def shuffled_z(z: Mapping[str, Tensor], seed: int = 0) -> dict[str, Tensor]:
    """z with its values permuted within each matrix: the same size of change, no learnt direction (the
    control every expert is reported beside)."""
    g = torch.Generator().manual_seed(seed)
    return {n: v[torch.randperm(len(v), generator=g).to(v.device)] for n, v in z.items()}


def z_change(z: Mapping[str, Tensor]) -> Tensor:
    """z − 1 over every matrix (in name order), as one flat float vector: the change from the base model."""
    return torch.cat([v.float().flatten() - 1 for _, v in sorted(z.items())])


def change_norms(expert: Expert) -> dict[str, float]:
    """‖z − 1‖ per matrix: how far the expert moves each matrix from the base model."""
    return {n: float((v.float() - 1).norm()) for n, v in expert.z.items()}


def change_similarity(experts: Sequence[Expert]) -> list[list[float]]:
    """Cosine similarity of the experts' changes z − 1 (z itself is ≈ 1 everywhere, so its cosine is
    ≈ 1 and says nothing); NaN for experts over different matrices."""
    vecs = [z_change(e.z) for e in experts]
    return [[float(torch.nn.functional.cosine_similarity(a, b, dim=0)) if a.shape == b.shape else float("nan")
             for b in vecs] for a in vecs]


EXPERT_COLUMNS = ["label", "source", "task", "objective", "targets", "steps", "best val acc %", "parameters",
                  "mean |z−1|"]


def expert_row(expert: Expert, source: str) -> list:
    """One expert's training metadata and size, as a row under EXPERT_COLUMNS."""
    notes = expert.notes
    change = z_change(expert.z)
    targets = expert.targets if isinstance(expert.targets, str) else ",".join(map(str, expert.targets))
    return [expert.label, source, notes.get("task", ""), notes.get("objective", ""), targets, notes.get("steps", ""),
            notes.get("best_val_accuracy", ""), sum(v.numel() for v in expert.z.values()),
            round(float(change.abs().mean()), 5)]

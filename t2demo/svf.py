"""Singular Value Fine-tuning (SVF): decompose chosen weight matrices once, then re-weight their
singular values with a vector z per matrix to adapt the model (Transformer², Sun et al. 2025).

    W = U diag(σ) Vᵀ           (decomposed once, cached on disk as safetensors)
    W' = U diag(σ ⊙ z) Vᵀ      (z = 1 gives back W)

Memory, per adapted m×n matrix with r = min(m, n): the factors hold m·r + r·n + r numbers next to
the m·n of W. For Llama-3-8B's MLP matrices (14336×4096) that is 1.29× the weights in the same
dtype (2.6× if the factors are float32 and the model bfloat16); `SVF.memory_ratio` reports it.
Restoring the base weights bit-for-bit needs their original values: they are kept as a CPU copy
(pinned when CUDA is present), so device memory does not double; the price is a host-to-device
copy of the changed matrices on `restore()` (11 GB for Llama-3-8B's MLP in bf16: about half a
second at 25 GB/s). On a CPU-only machine that copy costs 1× the target weights in RAM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn
from torch.nn.utils import parametrize

from t2demo.atomic import save_safetensors_atomic
from t2demo.families import LAYER_PATTERN, TARGET_PRESETS, VISION_PARTS

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = "1"


def default_cache_dir() -> Path:
    """Where SVD factors are cached: $T2DEMO_CACHE, else the user's cache dir (XDG) / t2demo."""
    if os.environ.get("T2DEMO_CACHE"):
        return Path(os.environ["T2DEMO_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "t2demo"


def _decoder_prefix(model: nn.Module) -> str:
    """Name prefix of the text decoder (e.g. "model" or "model.language_model") in `model`."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    for name, module in model.named_modules():
        if module is decoder:
            return name
    raise ValueError(f"{type(model).__name__}: its decoder is not one of its submodules")


def select_targets(
    model: nn.Module, targets: str | Sequence[str] = "mlp", include_vision: bool = False
) -> list[str]:
    """Parameter names of the nn.Linear weights to adapt, in model order.

    `targets` is a preset name ("mlp", "attn", "all") or one or more regular expressions searched
    in the parameter name (e.g. "q_proj" or [r"layers\\.[0-3]\\."]). The vision tower and the
    multimodal projector of a vision-language model only count with include_vision=True.
    """
    if isinstance(targets, str):
        targets = [targets]
    patterns: list[str] = []
    for t in targets:
        patterns.extend(TARGET_PRESETS.get(t, (t,)))
    regexes = [re.compile(p) for p in patterns]
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = []
    for module_name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or module is head:
            continue
        name = f"{module_name}.weight"
        if not include_vision and any(part in name.split(".") for part in VISION_PARTS):
            continue
        if any(r.search(name) for r in regexes):
            names.append(name)
    if not names:
        raise ValueError(f"no nn.Linear weight of {type(model).__name__} matches targets {list(targets)}")
    return names


def _tensor_digest(t: Tensor) -> str:
    data = t.detach().contiguous().reshape(-1).view(torch.uint8).cpu().numpy()
    return hashlib.sha256(memoryview(data)).hexdigest()


def _fingerprint(names: Sequence[str], params: Mapping[str, Tensor], digests: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for n in names:
        p = params[n]
        h.update(f"{n}|{tuple(p.shape)}|{p.dtype}|{digests[n]}\n".encode())
    return h.hexdigest()


def _digests(params: Mapping[str, Tensor]) -> dict[str, str]:
    # sha256 releases the GIL on large buffers, so threads hash matrices in parallel.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return dict(zip(params, pool.map(_tensor_digest, params.values())))


def weight_fingerprint(model: nn.Module, names: Sequence[str]) -> str:
    """sha256 over the names, shapes, dtypes and exact bytes of the given parameters."""
    params = dict(model.named_parameters())
    chosen = {n: params[n] for n in names}
    return _fingerprint(names, chosen, _digests(chosen))


def compose(U: Tensor, S: Tensor, Vh: Tensor, z: Tensor, rescale: bool = False) -> Tensor:
    """U diag(σ ⊙ z) Vᵀ with one matrix product: the smaller factor is scaled, no r×r diagonal.

    rescale=True multiplies by Σσ / Σ(σ·z) (the authors' choice: the sum of singular values is
    kept), folded into the scale vector. Differentiable in z.
    """
    s = S * z.to(S.device, S.dtype)
    if rescale:
        s = s * (S.sum() / s.sum())
    s = s.to(U.dtype)
    if U.shape[0] <= Vh.shape[1]:
        return (U * s) @ Vh
    return U @ (s[:, None] * Vh)


class SVF:
    """SVD factors of a model's target matrices, and the ways to run the model with W' from z.

    z is a dict {parameter name: 1-D tensor of length r}; a missing name means z = 1 (base).
    Thread safety: every method that changes weights holds one RLock; `adapted(z)` holds it
    across compose + generate so no concurrent caller can swap weights halfway.
    """

    def __init__(
        self,
        model: nn.Module,
        targets: str | Sequence[str] = "mlp",
        *,
        include_vision: bool = False,
        cache_dir: str | Path | None = None,
        rescale: bool = False,
        factor_dtype: torch.dtype | None = None,
        decompose_device: str | torch.device | None = None,
    ) -> None:
        """Decompose (or load from the cache) every target matrix.

        rescale: apply the authors' Σσ / Σ(σ·z) rescaling. Off by default: then z = 1 is exactly
        the identity and W' is linear in z, so mixing experts mixes their weight changes.
        factor_dtype: dtype of U and Vᵀ (σ stays float32); default: each matrix's own dtype, which
        is what the authors do (bf16) and halves memory against float32.
        decompose_device: where the float32 SVD runs; default: the matrix's device if it is an
        accelerator, else CUDA when present, else CPU. Factors always live on the matrix's device.
        """
        self.model = model
        self.targets = targets
        self.rescale = rescale
        self.names = select_targets(model, targets, include_vision)
        self.base_model_name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        params = dict(model.named_parameters())
        self._params: dict[str, nn.Parameter] = {n: params[n] for n in self.names}
        meta = [n for n, p in self._params.items() if p.device.type == "meta"]
        if meta:
            raise ValueError(f"{len(meta)} target weights are offloaded (meta device), e.g. {meta[0]}; "
                             "load the model without disk/CPU offload to adapt it")
        # The CPU copy of the base weights serves restore() and is what gets hashed (one transfer).
        pin = torch.cuda.is_available()
        self._base = {n: torch.empty_like(p, device="cpu", pin_memory=pin).copy_(p.detach())
                      for n, p in self._params.items()}
        self._digests = _digests(self._base)
        self.fingerprint = _fingerprint(self.names, self._params, self._digests)
        decoder = _decoder_prefix(model)
        layer_re = re.compile(rf"^{re.escape(decoder + '.' if decoder else '')}{LAYER_PATTERN}")
        self._layers = {n: int(m.group(1)) if (m := layer_re.match(n)) else None for n in self.names}
        self.num_layers = len(model.get_submodule(decoder).layers)

        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self._factors = {n: self._load_or_decompose(n, p, factor_dtype or p.dtype, decompose_device)
                         for n, p in self._params.items()}
        self._dirty: set[str] = set()  # matrices whose weights currently differ from the base
        self._lock = threading.RLock()
        self.ranks = {n: self._factors[n][1].numel() for n in self.names}

    # --- decomposition and cache -------------------------------------------------------------

    def _cache_path(self, name: str, dtype: torch.dtype) -> Path:
        return self.cache_dir / "svf" / self.fingerprint[:32] / f"{name}.{str(dtype).removeprefix('torch.')}.safetensors"

    def _load_or_decompose(self, name: str, p: Tensor, dtype: torch.dtype,
                           decompose_device: str | torch.device | None) -> tuple[Tensor, Tensor, Tensor]:
        path = self._cache_path(name, dtype)
        if path.exists():
            try:
                return self._load_factors(path, name, p, dtype)
            except Exception as e:  # a corrupt or stale cache is rebuilt, never trusted
                warnings.warn(f"SVF cache {path} is invalid ({e}); recomputing", stacklevel=3)
        if decompose_device is None:
            decompose_device = p.device if p.device.type != "cpu" else ("cuda" if torch.cuda.is_available() else "cpu")
        U, S, Vh = torch.linalg.svd(p.detach().to(decompose_device, torch.float32), full_matrices=False)
        factors = (U.to(p.device, dtype).contiguous(), S.to(p.device), Vh.to(p.device, dtype).contiguous())
        meta = {"format_version": CACHE_FORMAT_VERSION, "fingerprint": self.fingerprint,
                "name": name, "digest": self._digests[name]}
        save_safetensors_atomic(dict(zip(("U", "S", "Vh"), factors)), path, meta)
        log.info("SVF: decomposed %s %s", name, tuple(p.shape))
        return factors

    def _load_factors(self, path: Path, name: str, p: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Load and check one cache file: metadata, shapes, dtypes, finiteness, and U σ Vᵀ x ≈ W x."""
        with safe_open(path, framework="pt", device=str(p.device)) as f:
            meta = f.metadata() or {}
            want = {"format_version": CACHE_FORMAT_VERSION, "fingerprint": self.fingerprint,
                    "name": name, "digest": self._digests[name]}
            if any(meta.get(k) != v for k, v in want.items()):
                raise ValueError("metadata does not match this model")
            U, S, Vh = (f.get_tensor(k) for k in ("U", "S", "Vh"))
        m, n = p.shape
        r = min(m, n)
        if U.shape != (m, r) or S.shape != (r,) or Vh.shape != (r, n):
            raise ValueError("factor shapes do not match the weight")
        if U.dtype != dtype or Vh.dtype != dtype or S.dtype != torch.float32:
            raise ValueError("factor dtypes do not match")
        if not all(torch.isfinite(t).all() for t in (U, S, Vh)):
            raise ValueError("non-finite factors")
        x = torch.randn(n, 1, device=p.device, generator=torch.Generator(p.device).manual_seed(0))
        ref = p.detach().float() @ x
        err = (U.float() @ (S[:, None] * (Vh.float() @ x)) - ref).norm() / ref.norm().clamp_min(1e-30)
        if err > torch.finfo(dtype).eps ** 0.5:
            raise ValueError(f"factors do not reproduce the weight (relative error {err:.2e})")
        return U, S, Vh

    # --- introspection -----------------------------------------------------------------------

    def layer_of(self, name: str) -> int | None:
        """Decoder layer index of a target matrix, None outside the decoder layers (vision tower,
        projector)."""
        return self._layers[name]

    def factors(self, name: str) -> tuple[Tensor, Tensor, Tensor]:
        """The cached factors (U, σ, Vᵀ) of one target matrix, W = U diag(σ) Vᵀ (read-only)."""
        return self._factors[name]

    def fingerprint_of(self, names: Sequence[str]) -> str:
        """Fingerprint of a subset of the targets (as `weight_fingerprint`, without rehashing)."""
        return _fingerprint(names, self._params, self._digests)

    @property
    def memory_ratio(self) -> float:
        """Bytes of the SVD factors / bytes of the target base weights (on their devices)."""
        factor = sum(t.numel() * t.element_size() for f in self._factors.values() for t in f)
        base = sum(p.numel() * p.element_size() for p in self._params.values())
        return factor / base

    def matrix_kind(self, name: str) -> str:
        """The matrix's role inside its layer, e.g. "mlp.down_proj" (a heatmap column)."""
        return re.sub(r"^.*?layers\.\d+\.", "", name).removesuffix(".weight")

    def spectrum(self, name: str) -> Tensor:
        """The base singular values σ of one target matrix (float32, CPU)."""
        return self._factors[name][1].float().cpu()

    def layer_grid(self, values: Mapping[str, float]) -> tuple[list[str], Tensor]:
        """Per-matrix numbers laid out as (decoder layer, matrix kind) for a heatmap: the kinds
        (columns) and a (num_layers, kinds) tensor. Targets absent from `values` are 0, cells without
        a target NaN; matrices outside the decoder layers (vision tower) are left out."""
        in_layers = [n for n in self.names if self._layers[n] is not None]
        kinds = list(dict.fromkeys(self.matrix_kind(n) for n in in_layers))
        grid = torch.full((self.num_layers, len(kinds)), float("nan"))
        for n in in_layers:
            grid[self._layers[n], kinds.index(self.matrix_kind(n))] = values.get(n, 0.0)
        return kinds, grid

    def scaling_grid(self, z: Mapping[str, Tensor] | None) -> tuple[list[str], Tensor]:
        """Mean log|z'| per (decoder layer, matrix kind), 0 where z' = 1: the summary the app draws."""
        return self.layer_grid({n: v.detach().float().abs().clamp_min(1e-6).log().mean().item()
                                for n, v in (z or {}).items()})

    def identity(self) -> dict[str, Tensor]:
        """z = 1 for every target: the base model."""
        return {n: torch.ones(r) for n, r in self.ranks.items()}

    # --- composition -------------------------------------------------------------------------

    def _check_z(self, z: Mapping[str, Tensor]) -> None:
        unknown = [n for n in z if n not in self._params]
        if unknown:
            raise KeyError(f"z has {len(unknown)} names that are not targets, e.g. {unknown[0]!r}")
        for n, v in z.items():
            if v.shape != (self.ranks[n],):
                raise ValueError(f"z[{n!r}] has shape {tuple(v.shape)}, expected ({self.ranks[n]},)")

    def compose(self, name: str, z: Tensor) -> Tensor:
        """W' for one matrix, in the parameter's dtype on its device."""
        U, S, Vh = self._factors[name]
        p = self._params[name]
        return compose(U, S, Vh, z, self.rescale).to(p.dtype)

    @torch.no_grad()
    def apply(self, z: Mapping[str, Tensor] | None) -> None:
        """Write W' into the model's own parameter tensors. None, or z = 1 for a matrix, writes
        back that matrix's exact base weights instead of composing."""
        with self._lock:
            if z is None:
                self.restore()
                return
            self._check_z(z)
            for name, p in self._params.items():
                v = z.get(name)
                if v is None or bool((v == 1).all()):
                    if name in self._dirty:
                        p.data.copy_(self._base[name])
                        self._dirty.discard(name)
                else:
                    p.data.copy_(self.compose(name, v.detach()))
                    self._dirty.add(name)

    @torch.no_grad()
    def restore(self) -> None:
        """Bit-exact base weights (copies back only the matrices that were changed)."""
        with self._lock:
            for name in self._dirty:
                self._params[name].data.copy_(self._base[name])
            self._dirty.clear()

    def mix(self, zs: Sequence[Mapping[str, Tensor]], alpha: Tensor | Sequence) -> dict[str, Tensor]:
        """z' = 1 + Σₖ αₖ (zₖ − 1) = Σₖ αₖ zₖ + (1 − Σα)·1: each αₖ is how much of expert k's change
        to apply, and whatever α leaves over goes to the base model (z = 1).

        The paper writes z' = Σₖ αₖ zₖ; the authors' composition then rescales every matrix to keep
        Σσ, so the overall size of α cancels. Without that rescale (the default here, so z = 1 is
        exactly the base model) Σα < 1 would shrink every singular value and break the model; the
        base share keeps every α in the box meaningful: α = 0 is the base model, a one-hot α is that
        expert, and one α going 0 → 1 moves smoothly from base to expert. Where Σα = 1 the two
        formulas agree. alpha has shape (K,) or (K, L) with L = num_layers; with (K, L) a matrix
        outside the decoder layers (vision tower, projector) uses each expert's mean α over layers."""
        alpha = torch.as_tensor(alpha, dtype=torch.float32)
        K = len(zs)
        if alpha.shape not in ((K,), (K, self.num_layers)):
            raise ValueError(f"alpha has shape {tuple(alpha.shape)}; expected ({K},) or ({K}, {self.num_layers})")
        if not bool(alpha.any()):
            return self.identity()
        names = [n for n in self.names if any(n in z for z in zs)]
        for z in zs:
            self._check_z(z)
        out = {}
        for n in names:
            if alpha.ndim == 1:
                a = alpha
            else:
                layer = self._layers[n]
                a = alpha.mean(dim=1) if layer is None else alpha[:, layer]
            out[n] = 1 + sum(a[k] * (z[n].float().cpu() - 1) for k, z in enumerate(zs) if n in z)
        return out

    @contextmanager
    def adapted(self, z: Mapping[str, Tensor] | None) -> Iterator[nn.Module]:
        """`with svf.adapted(z) as model: model.generate(...)`: holds the lock across apply and
        generation, and restores the base weights on exit."""
        with self._lock:
            try:
                self.apply(z)
                yield self.model
            finally:
                self.restore()

    @contextmanager
    def differentiable(self, z: Mapping[str, Tensor]) -> Iterator[nn.Module]:
        """`with svf.differentiable(z): loss = f(model(...))`: each forward composes W'(z) from the
        cached factors, so autograd reaches z (e.g. nn.Parameters for REINFORCE). Implemented
        with torch.nn.utils.parametrize; the original parameter objects are back on exit."""
        with self._lock:
            self._check_z(z)
            self.restore()
            modules = {n: self.model.get_submodule(n.removesuffix(".weight")) for n in z}
            try:
                for name, module in modules.items():
                    parametrize.register_parametrization(module, "weight", _Composed(self, name, z), unsafe=True)
                yield self.model
            finally:
                for module in modules.values():
                    if parametrize.is_parametrized(module, "weight"):
                        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


class _Composed(nn.Module):
    """Parametrization returning W'(z) and ignoring the stored weight."""

    def __init__(self, svf: SVF, name: str, z: Mapping[str, Tensor]) -> None:
        super().__init__()
        self.svf, self.name, self.zs = svf, name, z  # plain attributes: z must not become a model parameter

    def forward(self, _weight: Tensor) -> Tensor:
        return self.svf.compose(self.name, self.zs[self.name])

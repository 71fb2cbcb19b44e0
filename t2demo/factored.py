"""Factored forward with a z per batch row: y = U ((σ ⊙ z_b) ⊙ (Vᵀ x)) for the row b of x.

The compose path (`SVF.adapted`) writes W' = U diag(σ ⊙ z) Vᵀ into the model's weights under one
lock, so a batch can only ever use one z. Here every target nn.Linear is replaced by a
FactoredLinear that keeps SVF's factors and scales the r-wide middle per row, so requests with
different experts or mixtures (z' is linear in α) share one batch and one generate() call: nothing
is composed, restored or locked. The scale depends on the row, not the position, so the KV cache
of a row stays valid from one decoding step to the next.

    handle = factorize(svf)
    out = generate_rows(handle, enc, [z_math, None, svf.mix(zs, alpha)], max_new_tokens=64)
    handle.unfactorize()           # the original modules and bit-exact weights are back

On a model shared with users of the compose path, `with factorized(svf) as handle:` does the same
under svf's lock, for the block only.

Cost: r·(m + n) multiply-adds per token against m·n for the dense W (r = min(m, n)): 1.29× for
Llama-3-8B's 14336×4096 MLP matrices; `memory_report` gives both ratios for a model.

Thread safety: the per-row scales live in a ContextVar set by `FactoredModel.rows()`, and HF
generate() runs its forwards in the caller's thread, so two threads generating at once on the same
modules each read their own rows. A thread does not inherit its creator's rows (threads start with
an empty context): set rows() in the thread that generates, as `generate_rows` does.

Vision matrices (targets only with include_vision=True, outside the decoder layers) see image
patches, not text rows. When all rows share one z it applies to every patch; when they differ, each
patch takes the z of the row holding its image, which needs the batch's input_ids and image_sizes
(LLaVA-Next, at most one image per row; `generate_rows` passes them). Anything else is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.generation.utils import GenerateOutput
from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

from t2demo.svf import SVF

RowZ = Mapping[str, Tensor] | None  # one row's z: target name -> 1-D scale; None is the base model


@dataclass(frozen=True)
class _Rows:
    """One batch's scales: σ ⊙ z_m per target, stacked (M, r) over the M distinct z of the batch,
    and which of the M each text row and each image patch uses."""

    owner: FactoredModel
    scales: dict[str, Tensor]
    row_member: Tensor  # (B,), CPU
    patch_member: Tensor | None  # (P,), CPU; None when the batch's images are not mapped to rows
    _on_device: dict = field(default_factory=dict)

    def index(self, per_image: bool, leading: int, device: torch.device) -> Tensor:
        """The member index of each of the `leading` rows (or patches) of an input, on `device`."""
        member = self.patch_member if per_image else self.row_member
        if member is None:
            raise ValueError("rows with different z on vision matrices need the batch's input_ids and image_sizes: "
                             "pass inputs= to rows() (LLaVA-Next, at most one image per row)")
        if member.shape[0] != leading:
            raise ValueError(f"a factored matrix got {leading} {'patches' if per_image else 'rows'} but rows() "
                             f"set {member.shape[0]}; per-row z cannot follow num_beams or num_return_sequences > 1, "
                             "which multiply the batch")
        key = (per_image, device)
        if key not in self._on_device:
            self._on_device[key] = member.to(device)
        return self._on_device[key]


_ROWS: ContextVar[_Rows | None] = ContextVar("t2demo_factored_rows", default=None)


class FactoredLinear(nn.Module):
    """An nn.Linear computed as U ((σ ⊙ z_b) ⊙ (Vᵀ x)) with z_b the scale of x's row b, set by
    `FactoredModel.rows()`; outside it (or for a row with z = None) σ alone, the base W."""

    def __init__(self, owner: FactoredModel, name: str, linear: nn.Linear, per_image: bool) -> None:
        super().__init__()
        U, S, Vh = owner.svf.factors(name)
        self.owner, self.name, self.per_image = owner, name, per_image
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.dense_dtype = linear.weight.dtype
        # The very tensors SVF caches: no copy (σ is cast to the factors' dtype, r numbers).
        self.register_buffer("U", U, persistent=False)
        self.register_buffer("Vh", Vh, persistent=False)
        self.register_buffer("sigma", S.to(U.dtype), persistent=False)
        self.register_parameter("bias", linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = F.linear(x.to(self.Vh.dtype), self.Vh) * self._scale(x)
        bias = None if self.bias is None else self.bias.to(h.dtype)
        return F.linear(h, self.U, bias).to(x.dtype)

    def _scale(self, x: Tensor) -> Tensor:
        """σ ⊙ z for each leading row of x, shaped to broadcast over its middle dimensions."""
        rows = _ROWS.get()
        s = rows.scales.get(self.name) if rows is not None and rows.owner is self.owner else None
        if s is None:
            return self.sigma
        if s.shape[0] == 1:  # one z for the whole batch: any batch layout is right
            return s[0]
        s = s[rows.index(self.per_image, x.shape[0], s.device)]
        return s.view(s.shape[0], *(1,) * (x.ndim - 2), s.shape[1])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.sigma.numel()}"


def _distinct(zs: Sequence[RowZ]) -> tuple[list[RowZ], Tensor]:
    """The distinct z objects of a batch (by identity) and each row's index into them."""
    first: dict[int, int] = {}
    members: list[RowZ] = []
    index = []
    for z in zs:
        if id(z) not in first:
            first[id(z)] = len(members)
            members.append(z)
        index.append(first[id(z)])
    return members, torch.tensor(index, dtype=torch.long)


class FactoredModel:
    """svf.model with every target nn.Linear replaced by a FactoredLinear; made by `factorize`.

    While factorized the original weights are emptied (0 elements), so the compose path
    (svf.apply / adapted) fails loudly instead of silently changing modules the model no longer
    runs. keep_dense=True keeps the dense tensors aside for an instant unfactorize; keep_dense=False
    frees them, and unfactorize rebuilds them bit-exact from SVF's own base copy."""

    def __init__(self, svf: SVF, keep_dense: bool = True) -> None:
        self.svf, self.model = svf, svf.model
        self._linears: dict[str, nn.Linear] = {}
        self._dense: dict[str, Tensor] = {}
        with svf.adapted(None):  # base weights in place, and no compose while the modules change
            for name in svf.names:
                linear = self.model.get_submodule(name.removesuffix(".weight"))
                factored = FactoredLinear(self, name, linear, per_image=svf.layer_of(name) is None)
                self._linears[name] = linear
                if keep_dense:
                    self._dense[name] = linear.weight.data
                linear.weight.data = linear.weight.data.new_empty(0)
                self.model.set_submodule(name.removesuffix(".weight"), factored)

    def unfactorize(self) -> None:
        """Put the original nn.Linear modules back, with their exact base weights."""
        if not self._linears:
            return
        dropped = [n for n in self._linears if n not in self._dense]
        for name, linear in self._linears.items():
            U, _, Vh = self.svf.factors(name)
            data = self._dense.get(name)
            linear.weight.data = data if data is not None else linear.weight.data.new_empty(U.shape[0], Vh.shape[1])
        if dropped:
            # apply() marks every matrix it composes as changed; restore() then copies SVF's
            # bit-exact base copy into each of them.
            with self.svf.adapted({n: torch.zeros(self.svf.ranks[n]) for n in dropped}):
                pass
        for name, linear in self._linears.items():
            self.model.set_submodule(name.removesuffix(".weight"), linear)
        self._linears.clear()
        self._dense.clear()

    @contextmanager
    def rows(self, zs: Sequence[RowZ], inputs: Mapping[str, Tensor] | None = None) -> Iterator[nn.Module]:
        """`with handle.rows(zs) as model: model.generate(...)`: in this thread, row b of every
        forward inside the block uses zs[b] (None, or a name left out: z = 1, the base model).
        Rows given the same dict object share one scale row (e.g. CEM's examples of one member).
        inputs: the batch's input_ids and image_sizes, needed only for vision matrices whose z
        differs between rows."""
        if not self._linears:
            raise RuntimeError("this model was unfactorized; call factorize(svf) again")
        token = _ROWS.set(self._build_rows(zs, inputs))
        try:
            yield self.model
        finally:
            _ROWS.reset(token)

    def _build_rows(self, zs: Sequence[RowZ], inputs: Mapping[str, Tensor] | None) -> _Rows:
        members, row_member = _distinct(zs)
        for z in members:
            self._check(z)
        scales = {}
        for name in self.svf.names:
            if any(z is not None and name in z for z in members):
                scales[name] = self._member_scales(name, members)
        vision_differs = len(members) > 1 and any(self.svf.layer_of(n) is None for n in scales)
        patch_member = self._patch_member(row_member, inputs) if vision_differs and inputs is not None else None
        return _Rows(self, scales, row_member, patch_member)

    def _check(self, z: RowZ) -> None:
        for name, v in (z or {}).items():
            if name not in self.svf.ranks:
                raise KeyError(f"z names {name!r}, which is not a target of this model")
            if v.shape != (self.svf.ranks[name],):
                raise ValueError(f"z[{name!r}] has shape {tuple(v.shape)}, expected ({self.svf.ranks[name]},)")

    def _member_scales(self, name: str, members: Sequence[RowZ]) -> Tensor:
        """(M, r): σ ⊙ z_m in the factors' dtype, with SVF's Σσ-preserving rescale if it has one."""
        U, S, _ = self.svf.factors(name)
        out = []
        for z in members:
            s = S if z is None or name not in z else S * z[name].detach().to(S.device, torch.float32)
            out.append(s * (S.sum() / s.sum()) if self.svf.rescale else s)
        return torch.stack(out).to(U.dtype)

    def _patch_member(self, row_member: Tensor, inputs: Mapping[str, Tensor]) -> Tensor | None:
        """The member each image patch uses: that of the row holding its image (LLaVA-Next)."""
        sizes = inputs.get("image_sizes")
        if sizes is None:
            return None
        config = self.model.config
        if not hasattr(config, "image_grid_pinpoints"):
            raise ValueError("per-row z on vision matrices is implemented for LLaVA-Next, "
                             f"not {type(self.model).__name__}")
        image_rows = (inputs["input_ids"] == config.image_token_id).any(dim=1).nonzero().flatten().cpu()
        if len(image_rows) != len(sizes):
            raise ValueError(f"per-row z on vision matrices needs at most one image per row; "
                             f"got {len(sizes)} images in {len(image_rows)} rows")
        patches = [image_size_to_num_patches(s, config.image_grid_pinpoints, config.vision_config.image_size)
                   for s in sizes]
        return row_member[image_rows].repeat_interleave(torch.tensor(patches))


def factorize(svf: SVF, keep_dense: bool = True) -> FactoredModel:
    """Swap every target nn.Linear of svf.model for a FactoredLinear sharing svf's factors.

    keep_dense=False frees the dense target weights (device memory: the factors alone remain)."""
    return FactoredModel(svf, keep_dense)


def unfactorize(handle: FactoredModel) -> None:
    """Put back the original modules and bit-exact base weights (see FactoredModel.unfactorize)."""
    handle.unfactorize()


@contextmanager
def factorized(svf: SVF) -> Iterator[FactoredModel]:
    """`with factorized(svf) as handle: generate_rows(handle, ...)`: svf.model factorized for the
    block only, for callers that share the model with users of svf.adapted (the app).

    The block holds svf's lock from start to end, so a concurrent svf.adapted waits for it instead
    of failing on the factored modules; on exit the original modules and bit-exact base weights are
    back (keep_dense=True: nothing is recomposed). Nested in the same thread (the lock is re-entrant),
    or entered while svf.model is factorized already, it yields the live handle and leaves it as is."""
    with svf.adapted(None):
        live = _live_handle(svf)
        if live is not None:
            yield live
            return
        handle = FactoredModel(svf, keep_dense=True)
        try:
            yield handle
        finally:
            handle.unfactorize()


def _live_handle(svf: SVF) -> FactoredModel | None:
    """The handle that has factorized svf.model, None when its targets are dense."""
    module = svf.model.get_submodule(svf.names[0].removesuffix(".weight"))
    return module.owner if isinstance(module, FactoredLinear) else None


def generate_rows(handle: FactoredModel, enc: Mapping[str, Tensor], zs: Sequence[RowZ],
                  **generate_kwargs) -> Tensor | GenerateOutput:
    """One generate() call for a left-padded batch in which row b is adapted by zs[b] (None: base).

    The rows are set in the calling thread, so concurrent callers each get their own. Returns what
    model.generate returns (the prompt and the new tokens, or a GenerateOutput)."""
    if len(zs) != enc["input_ids"].shape[0]:
        raise ValueError(f"{len(zs)} z for a batch of {enc['input_ids'].shape[0]} rows")
    device = handle.model.device
    enc = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in enc.items()}
    with handle.rows(zs, enc) as model:
        return model.generate(**enc, **generate_kwargs)


def memory_report(svf: SVF) -> dict[str, float]:
    """The SVD factors of svf's targets against the dense weights they stand for: bytes, and the
    multiply-adds per token of a factored product against a dense one."""
    dense = factors = dense_macs = factored_macs = 0
    for name in svf.names:
        U, S, Vh = svf.factors(name)
        (m, r), n = U.shape, Vh.shape[1]
        module = svf.model.get_submodule(name.removesuffix(".weight"))
        dtype = module.dense_dtype if isinstance(module, FactoredLinear) else module.weight.dtype
        dense += m * n * dtype.itemsize
        factors += sum(t.numel() * t.element_size() for t in (U, S, Vh))
        dense_macs += m * n
        factored_macs += r * (m + n)
    return {"matrices": len(svf.names), "dense_bytes": dense, "factor_bytes": factors,
            "memory_ratio": factors / dense, "compute_ratio": factored_macs / dense_macs}

"""The SVF engine: targets, decomposition cache, composition, restore, mixing, gradients."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from conftest import tiny_model

from t2demo.svf import SVF, compose, default_cache_dir, select_targets, weight_fingerprint

IDS = torch.tensor([[1, 5, 9, 2, 7, 3]])


def random_z(svf: SVF, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: 0.5 + torch.rand(r, generator=g) for n, r in svf.ranks.items()}


def weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_bit_exact(model, ref: dict[str, torch.Tensor]) -> None:
    for n, p in model.named_parameters():
        assert torch.equal(p, ref[n]), n


# --- targets ---------------------------------------------------------------------------------


def test_presets_and_patterns(llama):
    L = llama.config.num_hidden_layers
    mlp = select_targets(llama)
    assert mlp[:3] == [f"model.layers.0.mlp.{k}_proj.weight" for k in ("gate", "up", "down")]
    assert len(mlp) == 3 * L
    assert len(select_targets(llama, "attn")) == 4 * L
    every = select_targets(llama, "all")
    assert len(every) == 7 * L
    assert not any(k in n for n in every for k in ("embed", "norm", "lm_head"))
    assert select_targets(llama, [r"layers\.1\..*q_proj"]) == ["model.layers.1.self_attn.q_proj.weight"]
    with pytest.raises(ValueError, match="no nn.Linear weight"):
        select_targets(llama, "embed_tokens")


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "gemma", "llava_next"])
def test_architectures(arch):
    model = tiny_model(arch)
    svf = SVF(model, "all")
    L = svf.num_layers
    assert L == 3 and len(svf.names) == 7 * L
    if arch == "llava_next":
        assert all(n.startswith("model.language_model.layers.") for n in svf.names)
    ref = weights(model)
    z = random_z(svf)
    svf.apply(z)
    name = svf.names[-1]
    assert torch.allclose(model.get_parameter(name), svf.compose(name, z[name]))
    assert not torch.equal(model.get_parameter(name), ref[name])
    svf.restore()
    assert_bit_exact(model, ref)


def test_llava_vision_option():
    model = tiny_model("llava_next")
    names = SVF(model, "mlp", include_vision=True).names
    assert "model.vision_tower.encoder.layers.0.mlp.fc1.weight" in names
    assert "model.multi_modal_projector.linear_1.weight" in names
    assert "model.language_model.layers.2.mlp.down_proj.weight" in names
    assert not any("self_attn" in n for n in names)
    svf = SVF(model, "all", include_vision=True)
    assert "model.vision_tower.encoder.layers.1.self_attn.out_proj.weight" in svf.names
    assert svf.layer_of("model.language_model.layers.2.mlp.up_proj.weight") == 2
    assert svf.layer_of("model.vision_tower.encoder.layers.1.mlp.fc1.weight") is None
    # per-layer alpha: matrices outside the decoder take the mean over layers
    z = svf.mix([random_z(svf)], torch.tensor([[0.0, 0.5, 1.0]]))
    vision = "model.multi_modal_projector.linear_2.weight"
    assert torch.allclose(z[vision], 1 + 0.5 * (random_z(svf)[vision] - 1))


# --- composition -----------------------------------------------------------------------------


@pytest.mark.parametrize("rescale", [False, True])
def test_compose_matches_float64_reference(llama, rescale):
    svf = SVF(llama, "all", rescale=rescale)
    z = random_z(svf)
    for name in svf.names:
        # the same factors in float64 (a fresh float64 SVD may rotate near-degenerate singular vectors)
        U, S, Vh = (t.double() for t in svf.factors(name))
        s = S * z[name].double()
        if rescale:
            s = s * S.sum() / s.sum()
        ref = U @ torch.diag(s) @ Vh
        got = svf.compose(name, z[name]).double()
        assert ((got - ref).norm() / ref.norm()) < 1e-5, name


def test_compose_scales_the_smaller_factor():
    g = torch.Generator().manual_seed(0)
    for m, n in [(7, 3), (3, 7), (5, 5)]:
        U, S, Vh = torch.linalg.svd(torch.randn(m, n, generator=g), full_matrices=False)
        z = torch.rand(min(m, n), generator=g)
        assert torch.allclose(compose(U, S, Vh, z), U @ torch.diag(S * z) @ Vh, atol=1e-6)


def test_z_one_gives_base(llama, svf):
    ref = weights(llama)
    for name in svf.names:
        assert torch.allclose(svf.compose(name, torch.ones(svf.ranks[name])), ref[name], atol=1e-5)
    svf.apply(svf.identity())  # fast path: exact
    assert_bit_exact(llama, ref)


def test_restore_is_bit_exact(llama, svf):
    ref = weights(llama)
    base_logits = llama(IDS).logits
    svf.apply(random_z(svf, 1))
    svf.apply(random_z(svf, 2))
    assert not torch.equal(llama(IDS).logits, base_logits)
    svf.restore()
    assert_bit_exact(llama, ref)
    assert torch.equal(llama(IDS).logits, base_logits)


def test_logits_with_z_one_equal_base(llama, svf):
    base = llama(IDS).logits
    with svf.adapted(svf.identity()):
        assert torch.equal(llama(IDS).logits, base)
    ones = {n: torch.ones(r, requires_grad=True) for n, r in svf.ranks.items()}
    with svf.differentiable(ones):
        assert torch.allclose(llama(IDS).logits, base, atol=1e-5)


def test_z_is_validated(svf):
    with pytest.raises(KeyError, match="not targets"):
        svf.apply({"lm_head.weight": torch.ones(3)})
    with pytest.raises(ValueError, match="has shape"):
        svf.apply({svf.names[0]: torch.ones(3)})


def test_partial_z_leaves_other_matrices_at_base(llama, svf):
    ref = weights(llama)
    first, *rest = svf.names
    svf.apply({first: torch.full((svf.ranks[first],), 0.5)})
    assert not torch.equal(llama.get_parameter(first), ref[first])
    assert all(torch.equal(llama.get_parameter(n), ref[n]) for n in rest)


# --- mixing ----------------------------------------------------------------------------------


def test_mix_adds_the_experts_changes(svf):
    zs = [random_z(svf, k) for k in range(3)]
    a, b = torch.tensor([0.2, 0.5, 0.1]), torch.tensor([0.3, -0.1, 0.7])
    za, zb, zab = svf.mix(zs, a), svf.mix(zs, b), svf.mix(zs, a + b)
    for n in svf.names:
        # z' − 1 is linear in α: the changes (z − 1) of the experts add up
        assert torch.allclose(zab[n] - 1, (za[n] - 1) + (zb[n] - 1), atol=1e-6)
        # z' = Σ αₖ zₖ + (1 − Σα)·1: what α leaves over goes to the base model
        assert torch.allclose(za[n], sum(a[k] * zs[k][n] for k in range(3)) + (1 - a.sum()), atol=1e-6)
    one_hot = svf.mix(zs, torch.tensor([0.0, 1.0, 0.0]))
    assert all(torch.allclose(one_hot[n], zs[1][n]) for n in svf.names)
    # without rescaling W' is linear in z, so mixing experts mixes their weight changes
    n, W = svf.names[0], svf.compose(svf.names[0], torch.ones(svf.ranks[svf.names[0]]))
    assert torch.allclose(svf.compose(n, zab[n]) - W, (svf.compose(n, za[n]) - W) + (svf.compose(n, zb[n]) - W),
                          atol=1e-5)


def test_mix_per_layer(svf):
    zs = [random_z(svf, k) for k in range(2)]
    alpha = torch.tensor([[1.0, 0.0, 0.3], [0.0, 1.0, 0.6]])
    z = svf.mix(zs, alpha)
    for n in svf.names:
        layer = svf.layer_of(n)
        a = alpha[:, layer]
        assert torch.allclose(z[n], a[0] * zs[0][n] + a[1] * zs[1][n] + (1 - a.sum()), atol=1e-6)
    with pytest.raises(ValueError, match="expected"):
        svf.mix(zs, torch.ones(2, 5))


def test_all_zero_alpha_is_base(llama, svf):
    ref = weights(llama)
    zs = [random_z(svf, k) for k in range(2)]
    svf.apply(zs[0])
    for alpha in (torch.zeros(2), torch.zeros(2, svf.num_layers)):
        z = svf.mix(zs, alpha)
        assert all(torch.equal(v, torch.ones_like(v)) for v in z.values())
        svf.apply(z)
        assert_bit_exact(llama, ref)


def test_applying_a_mixture_writes_its_composition(llama, svf):
    ref = weights(llama)
    zs = [random_z(svf, k) for k in range(2)]
    mixed = svf.mix(zs, torch.tensor([0.4, 0.8]))
    svf.apply(mixed)
    for n in svf.names:
        assert torch.equal(llama.get_parameter(n), svf.compose(n, mixed[n]))
    svf.apply(svf.mix(zs, torch.zeros(2)))
    assert_bit_exact(llama, ref)


def test_concurrent_adapted_generations_match_serial(llama, svf):
    """Two threads with different z get the logits they would get alone."""
    ids = torch.tensor([[1, 2, 3, 4]])
    zs = [random_z(svf, k) for k in range(2)]

    def logits(z):
        with svf.adapted(z) as model, torch.no_grad():
            return model(ids).logits

    serial = [logits(z) for z in zs]
    results = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, [logits(zs[k]) for _ in range(5)]))
               for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        assert all(torch.equal(r, serial[k]) for r in results[k])
    assert not torch.equal(serial[0], serial[1])


# --- concurrency and gradients ---------------------------------------------------------------


def test_adapted_holds_the_lock(llama, svf):
    ref = weights(llama)
    z = random_z(svf)
    seen = []

    def other():
        svf.apply(random_z(svf, 9))  # must wait until the adapted block is over
        seen.append(time.monotonic())

    with svf.adapted(z) as model:
        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.2)
        inside = time.monotonic()
        name = svf.names[0]
        assert torch.allclose(model.get_parameter(name), svf.compose(name, z[name]))
    t.join()
    assert seen[0] > inside
    svf.restore()
    assert_bit_exact(llama, ref)


def test_gradients_reach_z(llama, svf):
    ref = weights(llama)
    params = {id(p) for p in llama.parameters()}
    z = {n: torch.nn.Parameter(0.5 + torch.rand(r)) for n, r in svf.ranks.items()}
    with svf.differentiable(z):
        assert len(list(llama.parameters())) == len(params)  # z never becomes a model parameter
        loss = torch.nn.functional.cross_entropy(llama(IDS).logits[0, :-1], IDS[0, 1:])
    loss.backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in z.values())
    assert {id(p) for p in llama.parameters()} == params  # the original parameter objects are back
    assert type(llama.model.layers[0].mlp.gate_proj) is torch.nn.Linear
    assert_bit_exact(llama, ref)
    # the differentiable forward matches the swapped-weights forward
    with torch.no_grad(), svf.differentiable(z):
        diff = llama(IDS).logits
    with svf.adapted({n: v.detach() for n, v in z.items()}):
        assert torch.allclose(llama(IDS).logits, diff, atol=1e-5)


# --- cache -----------------------------------------------------------------------------------


def test_cache_dir_from_env(cache_dir, llama, tmp_path):
    assert default_cache_dir() == cache_dir
    svf = SVF(llama)
    assert svf.cache_dir == cache_dir and len(list(cache_dir.rglob("*.safetensors"))) == len(svf.names)
    other = tmp_path / "explicit"
    assert SVF(llama, cache_dir=other).cache_dir == other and any(other.rglob("*.safetensors"))


def test_cache_hit_skips_svd(llama, monkeypatch):
    first = SVF(llama)

    def no_svd(*args, **kwargs):
        raise AssertionError("SVD recomputed despite a valid cache")

    monkeypatch.setattr(torch.linalg, "svd", no_svd)
    second = SVF(llama)
    for n in first.names:
        assert all(torch.equal(a, b) for a, b in zip(first.factors(n), second.factors(n)))


def count_svd(monkeypatch) -> list[int]:
    calls, svd = [], torch.linalg.svd

    def counting(*args, **kwargs):
        calls.append(1)
        return svd(*args, **kwargs)

    monkeypatch.setattr(torch.linalg, "svd", counting)
    return calls


def test_corrupt_cache_is_rebuilt(llama, cache_dir, monkeypatch):
    svf = SVF(llama)
    files = sorted(cache_dir.rglob("*.safetensors"))
    truncated, garbage, tampered = files[:3]
    truncated.write_bytes(truncated.read_bytes()[:-10])
    garbage.write_bytes(b"not a safetensors file at all")
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(tampered, "pt") as f:
        meta = f.metadata()
    t = load_file(tampered)
    t["U"] = t["U"].flip(1)  # valid file, right shapes, wrong values
    save_file(t, tampered, metadata=meta)

    calls = count_svd(monkeypatch)
    with pytest.warns(UserWarning, match="invalid"):
        again = SVF(llama)
    assert len(calls) == 3
    z = random_z(svf)
    assert all(torch.allclose(svf.compose(n, z[n]), again.compose(n, z[n]), atol=1e-6) for n in svf.names)
    calls.clear()
    SVF(llama)  # the rebuilt files are valid
    assert not calls


def test_stale_cache_is_rebuilt(llama, monkeypatch):
    old = SVF(llama)
    with torch.no_grad():
        llama.model.layers[1].mlp.up_proj.weight[0, 0] += 1.0
    calls = count_svd(monkeypatch)
    new = SVF(llama)
    assert new.fingerprint != old.fingerprint == weight_fingerprint(tiny_model(), old.names)
    assert len(calls) == len(new.names)
    name = "model.layers.1.mlp.up_proj.weight"
    assert torch.allclose(new.compose(name, torch.ones(new.ranks[name])), llama.get_parameter(name), atol=1e-5)


def test_memory_ratio(llama):
    # gate/up are 48×32 (r=32), down 32×48: factors hold 48·32 + 32·32 + 32 numbers per 48·32
    svf = SVF(llama)
    assert svf.memory_ratio == pytest.approx((48 * 32 + 32 * 32 + 32) / (48 * 32))
    half = SVF(llama, factor_dtype=torch.bfloat16)
    assert half.memory_ratio < svf.memory_ratio


# --- devices ---------------------------------------------------------------------------------


def test_device_map_dispatched_model():
    from accelerate import dispatch_model

    plain, model = tiny_model(), tiny_model()
    device_map = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "cpu",
                  "model.layers.2": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    model = dispatch_model(model, device_map=device_map, force_hooks=True)
    assert hasattr(model.model.layers[0], "_hf_hook")
    svf_plain, svf = SVF(plain, "all"), SVF(model, "all")
    z = random_z(svf)
    base = model(IDS).logits
    with svf.adapted(z), svf_plain.adapted(z):
        assert torch.allclose(model(IDS).logits, plain(IDS).logits, atol=1e-5)
    assert torch.equal(model(IDS).logits, base)

"""Expert files: round trip, every refusal, cross-model transfer, the authors' format, mixtures."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_model
from safetensors.torch import save_file

from t2demo import experts as experts_module
from t2demo.experts import (
    FORMAT_VERSION,
    Expert,
    ExpertError,
    import_authors_expert,
    load_expert,
    mixture_expert,
    save_expert,
)
from t2demo.svf import SVF


def make_expert(svf: SVF, label: str = "math", seed: int = 0) -> Expert:
    g = torch.Generator().manual_seed(seed)
    z = {n: 0.5 + torch.rand(r, generator=g) for n, r in svf.ranks.items()}
    return Expert.from_svf(svf, z, label, notes={"steps": 3, "lr": 2e-3})


def test_round_trip_is_exact(svf, tmp_path):
    expert = make_expert(svf)
    path = tmp_path / "experts" / "math.safetensors"
    save_expert(expert, path)
    back = load_expert(path, svf)
    assert back.z.keys() == expert.z.keys()
    assert all(torch.equal(back.z[n], expert.z[n]) for n in expert.z)
    assert (back.label, back.base_model, back.fingerprint, back.targets, back.parameterisation, back.notes) == (
        "math", "LlamaForCausalLM", svf.fingerprint, "mlp", "scale", {"steps": 3, "lr": 2e-3})
    assert [p.name for p in path.parent.iterdir()] == ["math.safetensors"]  # no temporary file left


def test_failed_write_keeps_the_old_file(svf, tmp_path, monkeypatch):
    path = tmp_path / "experts" / "math.safetensors"
    save_expert(make_expert(svf), path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("t2demo.atomic.save_file", crash)  # the write behind save_safetensors_atomic
    with pytest.raises(OSError, match="disk full"):
        save_expert(make_expert(svf, seed=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["math.safetensors"]


def write_raw(path, tensors, **meta_overrides):
    meta = {"format_version": str(FORMAT_VERSION), "label": "x", "base_model": "m", "fingerprint": "f",
            "targets": json.dumps("mlp"), "parameterisation": "scale", "notes": "{}"}
    meta.update(meta_overrides)
    save_file(tensors, path, metadata={k: v for k, v in meta.items() if v is not None})


def test_refusals(svf, tmp_path):
    good = make_expert(svf).z
    name = svf.names[0]
    path = tmp_path / "bad.safetensors"

    def refused(match, **kw):
        with pytest.raises(ExpertError, match=match):
            load_expert(path, svf, **kw)

    write_raw(path, {**good, name: torch.ones(svf.ranks[name] + 1)})
    refused(f"{name} has 33 values but this model's matrix has rank 32")
    write_raw(path, {**good, "model.layers.0.mlp.gate.weight": torch.ones(4)})
    refused("1 matrix names are not targets of this model, e.g. 'model.layers.0.mlp.gate.weight'")
    write_raw(path, {**good, name: torch.full((svf.ranks[name],), float("nan"))})
    refused(f"{name} holds non-finite values")
    write_raw(path, good, format_version="2")
    refused("unknown format version '2'")
    write_raw(path, good, format_version=None)
    refused("unknown format version None")
    write_raw(path, good, parameterisation="sigmoid")
    refused("unknown parameterisation 'sigmoid'")
    write_raw(path, {name: torch.ones(2, 16)})
    refused("must be a 1-D float vector")

    torch.save(good, path)
    refused("is a pickle")
    path.write_bytes(b"\x80\x04K\x01.")  # a bare (legacy) pickle
    refused("is a pickle")
    path.write_bytes(b"hello, I am plain text")
    refused("not a safetensors file")
    save_expert(make_expert(svf), path)
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    refused("corrupt or truncated")
    path.write_bytes(data[:20])
    refused("not a safetensors file")


def test_transfer_only_when_asked(svf, tmp_path):
    path = tmp_path / "math.safetensors"
    save_expert(make_expert(svf), path)
    other = SVF(tiny_model("mistral", seed=1))  # same shapes, other weights
    with pytest.raises(ExpertError, match="cross-model transfer; pass allow_transfer=True"):
        load_expert(path, other)
    with pytest.warns(UserWarning, match="cross-model transfer"):
        expert = load_expert(path, other, allow_transfer=True)
    other.apply(expert.z)
    other.restore()


def test_subset_expert_loads_into_larger_target_set(llama, tmp_path):
    path = tmp_path / "math.safetensors"
    save_expert(make_expert(SVF(llama, "mlp")), path)
    expert = load_expert(path, SVF(llama, "all"))  # same base: no transfer warning
    assert len(expert.z) == 3 * llama.config.num_hidden_layers


@pytest.mark.parametrize("prefix", ["", "base_model.", "base_model.model."])
def test_import_authors_format(svf, tmp_path, prefix):
    g = torch.Generator().manual_seed(0)
    raw = {prefix + n: 0.1 + 0.01 * torch.randn(r, generator=g) for n, r in svf.ranks.items()}
    path = tmp_path / "authors.pt"
    torch.save(raw, path)
    expert = import_authors_expert(path, svf, "math")
    assert expert.parameterisation == "scale" and expert.fingerprint == svf.fingerprint
    for n in svf.names:  # their mask sigmoid(p) (bf16), times their Σσ rescale c (tests/test_authors_experts.py)
        c = expert.notes["authors_rescale"][n]
        assert torch.allclose(expert.z[n], torch.sigmoid(raw[prefix + n]).to(torch.bfloat16).float() * c)
    save_expert(expert, tmp_path / "ours.safetensors")
    assert load_expert(tmp_path / "ours.safetensors", svf).notes["imported_from"] == "authors.pt"


def test_import_llava_legacy_names(tmp_path):
    svf = SVF(tiny_model("llava_next"))
    raw = {n.replace("model.language_model.", "language_model.model."): torch.zeros(r) for n, r in svf.ranks.items()}
    torch.save(raw, tmp_path / "authors.pt")
    expert = import_authors_expert(tmp_path / "authors.pt", svf, "vqa")
    assert sorted(expert.z) == sorted(svf.names)


def test_import_refuses_unmatched(svf, tmp_path):
    path = tmp_path / "authors.pt"
    torch.save({"model.layers.0.mlp.gate_proj.weight": torch.zeros(32), "model.layers.9.mlp.up_proj.weight": torch.zeros(32)}, path)
    with pytest.raises(ExpertError, match="cannot map 'model.layers.9.mlp.up_proj.weight' to one target"):
        import_authors_expert(path, svf, "math")
    torch.save({"model.layers.0.mlp.gate_proj.weight": torch.zeros(5)}, path)
    with pytest.raises(ExpertError, match="has 5 values but model.layers.0.mlp.gate_proj.weight has rank 32"):
        import_authors_expert(path, svf, "math")
    path.write_bytes(b"junk")
    with pytest.raises(ExpertError, match="not a loadable torch state dict"):
        import_authors_expert(path, svf, "math")


def test_mixture_is_an_ordinary_expert(svf, tmp_path):
    math, code = make_expert(svf, "math", 0), make_expert(svf, "code", 1)
    mixture = mixture_expert(svf, [math, code], [0.7, 0.4])
    assert mixture.label == "mixture:math+code"
    assert mixture.notes["experts"] == ["math", "code"]
    assert mixture.notes["alpha"] == pytest.approx([0.7, 0.4])
    save_expert(mixture, tmp_path / "mix.safetensors")
    back = load_expert(tmp_path / "mix.safetensors", svf)
    n = svf.names[0]
    assert torch.allclose(back.z[n], 1 + 0.7 * (math.z[n] - 1) + 0.4 * (code.z[n] - 1))


def test_module_exports():
    assert issubclass(ExpertError, ValueError)
    assert experts_module.FORMAT_VERSION == 1

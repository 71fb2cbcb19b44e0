"""The authors' expert files (SakanaAI/self-adaptive-llms) imported against their own formula.

AuthorsPolicy and authors_W re-implement their policy/base.py, policy/weighted_combination.py and
utils.compose_new_params: the mask sigmoid(p) in bfloat16 (times max_mult), and
W' = U diag(σ·m) Vᵀ · Σσ/Σ(σ·m), here in float32 arithmetic on a float32 SVD (theirs runs in
bfloat16, which only adds bfloat16 rounding).
"""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import tiny_model
from torch import nn

from t2demo import cli, models
from t2demo.experts import (
    AUTHORS_RESCALE,
    Expert,
    ExpertError,
    authors_mixture,
    authors_order,
    import_authors_expert,
    load_expert,
    save_expert,
)
from t2demo.svf import SVF


class AuthorsPolicy(nn.Module):
    """Their Policy: one bf16 vector per parameter whose name holds "mlp", in state_dict order."""

    def __init__(self, model: nn.Module, init_val: float = 0.1, spread: float = 0.3, max_mult: float = 1.0,
                 seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.max_mult = max_mult
        self.learnable_params = {k: nn.Parameter((torch.randn(min(v.shape), generator=g) * spread + init_val)
                                                 .to(torch.bfloat16))
                                 for k, v in model.state_dict().items() if "mlp" in k}
        self.learnable_params_module_list = nn.ParameterList(self.learnable_params.values())

    def get_mask(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(p).to(torch.bfloat16) * self.max_mult


def authors_W(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Their compose_new_params on torch.svd's factors: U diag(S·m) Vᵀ · ΣS / Σ(S·m)."""
    U, S, V = torch.svd(weight.detach().float())
    m = mask.detach().float()
    return (U @ torch.diag_embed(S * m) @ V.T) * (S.sum() / (S * m).sum())


def weighted_masks(policies: list[AuthorsPolicy], coeffs: list[float]) -> dict[str, torch.Tensor]:
    """Their WeightedCombination.get_learnable_params (norm_coeffs, one α per expert): Σ αₖ maskₖ, α normalised."""
    a = torch.tensor(coeffs) / sum(coeffs)
    return {k: sum(a[i] * pol.get_mask(pol.learnable_params[k]).float() for i, pol in enumerate(policies))
            for k in policies[0].learnable_params}


def composed(svf: SVF, z) -> dict[str, torch.Tensor]:
    """The model's target weights under t2demo's default composition of z."""
    with svf.adapted(z) as model:
        return {n: model.get_parameter(n).detach().clone() for n in svf.names}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture
def llama_svf():
    return SVF(tiny_model("llama"))


def save_both(policy: AuthorsPolicy, folder) -> tuple:
    """What their training writes: policy_params.pt always, learnable_params.pt with save_legacy_params."""
    torch.save(policy.state_dict(), folder / "policy_params.pt")
    torch.save(policy.learnable_params, folder / "learnable_params.pt")
    return folder / "policy_params.pt", folder / "learnable_params.pt"


def test_both_files_compose_exactly_the_authors_W(llama_svf, tmp_path):
    svf = llama_svf
    policy = AuthorsPolicy(svf.model)
    assert list(policy.state_dict()) == [f"learnable_params_module_list.{i}" for i in range(9)]
    base = {n: svf.model.get_parameter(n).detach().clone() for n in svf.names}
    expected = {n: authors_W(base[n], policy.get_mask(policy.learnable_params[n])) for n in svf.names}
    experts = [import_authors_expert(path, svf, "math") for path in save_both(policy, tmp_path)]
    assert experts[0].notes["source_format"] == "policy_params" and experts[1].notes["source_format"] == "learnable_params"
    for expert in experts:
        got = composed(svf, expert.z)
        assert max(rel(got[n], expected[n]) for n in svf.names) < 1e-5
    # before the conversion: z = sigmoid(p) without the rescale, W' about half of theirs
    sigmoid_only = composed(svf, {n: torch.sigmoid(p.float()) for n, p in policy.learnable_params.items()})
    assert min(rel(sigmoid_only[n], expected[n]) for n in svf.names) > 0.4


def test_policy_params_follow_the_authors_order(tmp_path):
    for arch in ("llama", "mistral", "qwen2", "llava_next"):
        model = tiny_model(arch)
        svf = SVF(model)
        text = model.model.language_model if arch == "llava_next" else model.model
        theirs = [k for k in text.state_dict() if "mlp" in k]  # their base_params: the language model's state dict
        assert [n.split("layers.", 1)[1] for n in authors_order(svf)] == [k.split("layers.", 1)[1] for k in theirs]
    # distinct vectors land on their own matrices: each matrix's W' is the authors' for its own vector
    svf = SVF(tiny_model("llama"))
    policy = AuthorsPolicy(svf.model, spread=1.0, seed=3)
    path, _ = save_both(policy, tmp_path)
    got = composed(svf, import_authors_expert(path, svf, "code").z)
    for n in svf.names:
        assert rel(got[n], authors_W(svf.model.get_parameter(n), policy.get_mask(policy.learnable_params[n]))) < 1e-5


def test_max_mult_and_transfer_to_llava(tmp_path):
    text = tiny_model("llama")
    policy = AuthorsPolicy(text, max_mult=2.0)
    path, _ = save_both(policy, tmp_path)
    llava = SVF(tiny_model("llava_next"))  # the paper's transfer: a text expert on the LLaVA's language model
    expert = import_authors_expert(path, llava, "math", max_mult=2.0)
    assert sorted(expert.z) == sorted(authors_order(llava)) and expert.notes["max_mult"] == 2.0
    got = composed(llava, expert.z)
    for n, k in zip(authors_order(llava), policy.learnable_params):
        assert rel(got[n], authors_W(llava.model.get_parameter(n), policy.get_mask(policy.learnable_params[k]))) < 1e-5


def test_mixing_one_hot_exact_soft_as_documented(llama_svf, tmp_path):
    svf = llama_svf
    policies = [AuthorsPolicy(svf.model, seed=s) for s in (0, 1)]
    experts = []
    for i, pol in enumerate(policies):
        (tmp_path / str(i)).mkdir()
        save_expert(import_authors_expert(save_both(pol, tmp_path / str(i))[0], svf, f"e{i}"), tmp_path / f"e{i}.safetensors")
        experts.append(load_expert(tmp_path / f"e{i}.safetensors", svf))  # the rescale survives the file
    base = {n: svf.model.get_parameter(n).detach().clone() for n in svf.names}
    one_hot = composed(svf, svf.mix([e.z for e in experts], [0.0, 1.0]))
    assert max(rel(one_hot[n], authors_W(base[n], policies[1].get_mask(policies[1].learnable_params[n])))
               for n in svf.names) < 1e-5
    # their WeightedCombination: masks mixed, then the rescale; authors_mixture composes exactly that
    theirs = {n: authors_W(base[n], m) for n, m in weighted_masks(policies, [0.3, 0.7]).items()}
    exact = composed(svf, authors_mixture(svf, experts, [0.3, 0.7]))
    assert max(rel(exact[n], theirs[n]) for n in svf.names) < 1e-5
    # t2demo's own mixing of the converted experts is Σ αₖ W'ₖ: close to theirs, not equal
    linear = composed(svf, svf.mix([e.z for e in experts], [0.3, 0.7]))
    for n in svf.names:
        W = [authors_W(base[n], pol.get_mask(pol.learnable_params[n])) for pol in policies]
        assert rel(linear[n], 0.3 * W[0] + 0.7 * W[1]) < 1e-5
    gap = max(rel(linear[n], theirs[n]) for n in svf.names)
    assert 1e-5 < gap < 2e-2, gap


def test_refusals(llama_svf, tmp_path):
    svf = llama_svf
    policy = AuthorsPolicy(svf.model)
    path = tmp_path / "policy_params.pt"
    torch.save({k: v for k, v in list(policy.state_dict().items())[:-1]}, path)
    with pytest.raises(ExpertError, match="8 entries, but this model's SVF targets hold 9 MLP matrices"):
        import_authors_expert(path, svf, "math")
    torch.save({"adaptive_weights": torch.ones(2, 1), "weights_0_k_model_layers_0_mlp_up_proj_weight": torch.ones(32)}, path)
    with pytest.raises(ExpertError, match="WeightedCombination"):
        import_authors_expert(path, svf, "math")
    with pytest.raises(ExpertError, match="no authors_rescale"):
        authors_mixture(svf, [Expert.from_svf(svf, svf.identity(), "own")], [1.0])


class Payload:
    """A pickle that would run code when unpickled without weights_only."""

    def __reduce__(self):
        return (exec, (f"open({str(MARK)!r}, 'w').write('ran')",))


MARK = None


def test_pickles_are_read_weights_only(llama_svf, tmp_path):
    global MARK
    MARK = tmp_path / "ran"
    path = tmp_path / "learnable_params.pt"
    with open(path, "wb") as f:
        pickle.dump({"model.layers.0.mlp.up_proj.weight": Payload()}, f, protocol=2)
    with pytest.raises(ExpertError, match="not a loadable torch state dict"):
        import_authors_expert(path, llama_svf, "math")
    assert not MARK.exists()


def test_cli_import_authors(model_dirs, tmp_path, capsys):
    text_dir, _ = model_dirs
    svf = SVF(models.load_model(text_dir, "text", "cpu").model)
    policy = AuthorsPolicy(svf.model)
    path, _ = save_both(policy, tmp_path)
    out = tmp_path / "experts" / "math.safetensors"
    cli.main(["import-authors", str(path), "--model", str(text_dir), "--out", str(out), "--device", "cpu"])
    assert "wrote" in capsys.readouterr().out
    expert = load_expert(out, svf)
    assert expert.label == "math" and set(expert.notes[AUTHORS_RESCALE]) == set(svf.names)
    got = composed(svf, expert.z)
    for n in svf.names:
        assert rel(got[n], authors_W(svf.model.get_parameter(n), policy.get_mask(policy.learnable_params[n]))) < 1e-5
    with pytest.raises(SystemExit, match="import-authors: .*is a safetensors file"):
        cli.main(["import-authors", str(out), "--model", str(text_dir), "--out", str(tmp_path / "x.safetensors")])

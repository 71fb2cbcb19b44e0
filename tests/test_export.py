"""Exports: the merged folder, the PEFT LoRA adapter against the SVF path, fidelity, refusals."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_model
from peft import PeftModel
from safetensors import safe_open
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerFast

from t2demo import cli
from t2demo.experts import Expert, ExpertError, mixture_expert, save_expert
from t2demo.export import (
    ExportError,
    ExportExistsError,
    export_lora,
    export_merged,
    format_fidelity,
    lora_accuracy,
    lora_fidelity,
    lora_from_z,
    parse_ranks,
    z_from_source,
)
from t2demo.svf import SVF

IDS = torch.tensor([[1, 5, 9, 2, 7, 3, 11, 4], [8, 6, 2, 2, 9, 1, 0, 3]])
FULL = 32  # the tiny model's MLP matrices are 32×48 / 48×32


def random_z(svf: SVF, seed: int = 0, scale: float = 0.5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: 1 + scale * torch.randn(r, generator=g) for n, r in svf.ranks.items()}


def logits(model, ids=IDS) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def adapted_logits(svf: SVF, z) -> torch.Tensor:
    with svf.adapted(z) as model:
        return logits(model)


def peft_logits(path) -> torch.Tensor:
    """The exported adapter as PEFT serves it, on a fresh copy of the base model."""
    return logits(PeftModel.from_pretrained(tiny_model("llama"), str(path)).eval())


def word_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer of the tiny model's 97 ids ("w5" is 5) with a pad token and a chat template."""
    vocab = {"[PAD]": 0, "[UNK]": 1, **{f"w{i}": i for i in range(2, 97)}}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="[UNK]")), unk_token="[UNK]",
                                  pad_token="[PAD]", eos_token="[PAD]")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return tok


def truncated_z(svf: SVF, z, rank: int) -> dict[str, torch.Tensor]:
    """z with every change outside the `rank` largest |σ(z − 1)| undone: what rank-r LoRA should be."""
    out = {}
    for n, v in z.items():
        d = svf.factors(n)[1].float() * (v - 1)
        keep = torch.zeros_like(v, dtype=torch.bool)
        keep[d.abs().topk(min(rank, v.numel())).indices] = True
        out[n] = torch.where(keep, v, torch.ones_like(v))
    return out


# --- export_merged ---------------------------------------------------------------------------


def test_merged_folder_loads_with_the_adapted_weights(svf, tmp_path):
    z = random_z(svf)
    base = logits(svf.model)
    target = export_merged(svf, z, word_tokenizer(), tmp_path / "exports" / "math")
    loaded = LlamaForCausalLM.from_pretrained(target).eval()
    torch.testing.assert_close(logits(loaded), adapted_logits(svf, z), atol=1e-5, rtol=0)
    assert AutoTokenizer.from_pretrained(target).convert_tokens_to_ids("w5") == 5
    assert torch.equal(logits(svf.model), base)  # the live model is back to its base weights
    assert [p.name for p in target.parent.iterdir()] == ["math"]


def test_merged_refuses_an_existing_target(svf, tmp_path):
    target = tmp_path / "math"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ExportExistsError, match="already exists") as err:
        export_merged(svf, random_z(svf), word_tokenizer(), target)
    assert isinstance(err.value, FileExistsError) and isinstance(err.value, ValueError)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_merged_failure_leaves_nothing(svf, tmp_path):
    class Broken:
        def save_pretrained(self, path):
            raise OSError("disk full")

    base = logits(svf.model)
    with pytest.raises(OSError, match="disk full"):
        export_merged(svf, random_z(svf), Broken(), tmp_path / "out" / "math")
    assert list((tmp_path / "out").iterdir()) == []  # neither the target nor a temporary folder
    assert torch.equal(logits(svf.model), base)


# --- export_lora -----------------------------------------------------------------------------


@pytest.mark.parametrize("rescale", [False, True])
def test_full_rank_lora_reproduces_the_svf_path(llama, tmp_path, rescale):
    svf = SVF(llama, rescale=rescale)
    z = random_z(svf)
    out = export_lora(svf, z, 1000, tmp_path / "lora", "assets/t2demo-llama-tiny")  # clamped to the full rank
    config = json.loads((out / "adapter_config.json").read_text())
    assert {k: config[k] for k in ("peft_type", "task_type", "r", "lora_alpha", "target_modules",
                                   "base_model_name_or_path", "fan_in_fan_out", "bias")} == {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": FULL, "lora_alpha": FULL,
        "target_modules": ["down_proj", "gate_proj", "up_proj"], "base_model_name_or_path": "assets/t2demo-llama-tiny",
        "fan_in_fan_out": False, "bias": "none"}
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").shape == (FULL, 48)
        assert f.get_tensor("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").shape == (32, FULL)
    assert keys == {f"base_model.model.{n.removesuffix('.weight')}.lora_{ab}.weight" for n in svf.names for ab in "AB"}
    torch.testing.assert_close(peft_logits(out), adapted_logits(svf, z), atol=1e-4, rtol=0)
    assert (peft_logits(out) - logits(llama)).abs().max() > 1e-3  # the change is not negligible


def test_llava_next_language_model_exports(tmp_path):
    svf = SVF(tiny_model("llava_next"))
    z = random_z(svf)
    out = export_lora(svf, z, FULL, tmp_path / "lora")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["target_modules"] == ["down_proj", "gate_proj", "up_proj"]  # CLIP's MLP is fc1/fc2
    served = logits(PeftModel.from_pretrained(tiny_model("llava_next"), str(out)).eval())
    torch.testing.assert_close(served, adapted_logits(svf, z), atol=1e-4, rtol=0)


def test_low_rank_lora_is_the_truncated_svd_of_the_change(svf, tmp_path):
    z = random_z(svf)
    out = export_lora(svf, z, 3, tmp_path / "lora")
    torch.testing.assert_close(peft_logits(out), adapted_logits(svf, truncated_z(svf, z, 3)), atol=1e-4, rtol=0)


def test_relative_error_is_the_analytic_tail_and_falls_with_rank(svf):
    z = random_z(svf)
    ranks = [0, 1, 2, 4, 8, 16, FULL]
    rows = lora_fidelity(svf, z, ranks, IDS)
    d = {n: svf.factors(n)[1].float() * (v - 1) for n, v in z.items()}
    total = sum(float(v.square().sum()) for v in d.values())
    for row, r in zip(rows, ranks):
        dropped = sum(float(v.square().sort(descending=True).values[r:].sum()) for v in d.values())
        assert row["rank"] == r
        assert row["rel_error"] == pytest.approx((dropped / total) ** 0.5, abs=1e-5)
    errors = [row["rel_error"] for row in rows]
    assert errors[0] == pytest.approx(1.0) and errors[-1] == pytest.approx(0.0, abs=1e-5)
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert rows[0]["kl"] > 1e-6 and rows[-1]["kl"] < 1e-6  # base ≠ SVF; full rank is exact (to float32 noise)
    assert [row["params"] for row in rows] == [r * 9 * (32 + 48) for r in ranks]  # 9 matrices of 32×48 / 48×32
    table = format_fidelity(rows, "t")
    assert "0 (base)" in table and f"{FULL} (full)" in table


def test_lora_factors_have_balanced_scales(svf):
    z = random_z(svf)
    for n, (A, B) in lora_from_z(svf, z, 4).items():
        torch.testing.assert_close(A.norm(dim=1), B.norm(dim=0))  # sqrt split: |row of A| = |column of B|


def test_a_mixture_exports_correctly(svf, tmp_path):
    math, code = (Expert.from_svf(svf, random_z(svf, seed), label) for seed, label in ((1, "math"), (2, "code")))
    mixed = mixture_expert(svf, [math, code], [0.5, 0.5])
    out = export_lora(svf, mixed, FULL, tmp_path / "mix")
    torch.testing.assert_close(peft_logits(out), adapted_logits(svf, svf.mix([math.z, code.z], [0.5, 0.5])),
                               atol=1e-4, rtol=0)
    assert json.loads((out / "t2demo_export.json").read_text())["label"] == "mixture:math+code"


def test_a_partial_z_names_its_modules_in_full(svf, tmp_path):
    z = {n: v for n, v in random_z(svf).items() if ".layers.0." in n}  # short names would catch layers 1, 2 too
    out = export_lora(svf, z, FULL, tmp_path / "lora")
    assert json.loads((out / "adapter_config.json").read_text())["target_modules"] == sorted(
        n.removesuffix(".weight") for n in z)
    torch.testing.assert_close(peft_logits(out), adapted_logits(svf, z), atol=1e-4, rtol=0)


def test_accuracy_rows_score_each_rank_and_the_svf_path(svf):
    z = random_z(svf)
    target = adapted_logits(svf, z)[:, -1].argmax(-1)

    def score(model):
        hits = (logits(model)[:, -1].argmax(-1) == target).tolist()
        return {"accuracy": 100 * sum(hits) / len(hits), "n": len(hits), "ci95": [0.0, 100.0]}

    rows = lora_accuracy(svf, z, [FULL, 0], score)
    assert [(r["rank"], r["label"]) for r in rows] == [(0, "0 (base)"), (FULL, f"{FULL} (full)"), (None, "SVF")]
    assert rows[1]["accuracy"]["accuracy"] == rows[2]["accuracy"]["accuracy"] == 100
    assert "SVF" in format_fidelity(rows)


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [0, -1, 2.5, True, "4"])
def test_bad_rank_is_refused(svf, tmp_path, rank):
    with pytest.raises(ExportError, match="rank must be a positive integer"):
        export_lora(svf, random_z(svf), rank, tmp_path / "out" / "lora")
    assert not (tmp_path / "out").exists()


def test_existing_out_dir_is_refused_untouched(svf, tmp_path):
    (tmp_path / "lora").mkdir()
    with pytest.raises(ExportExistsError, match="already exists"):
        export_lora(svf, random_z(svf), 4, tmp_path / "lora")
    assert list((tmp_path / "lora").iterdir()) == []


def test_z_for_another_model_is_refused(svf, tmp_path):
    with pytest.raises(ExportError, match="not an adapted matrix"):
        export_lora(svf, {"model.layers.0.self_attn.q_proj.weight": torch.ones(32)}, 4, tmp_path / "a")
    with pytest.raises(ExportError, match="has rank 32"):
        export_lora(svf, {svf.names[0]: torch.ones(5)}, 4, tmp_path / "b")


def test_sources_files_labels_and_mixtures(svf, tmp_path):
    folder = tmp_path / "experts"
    for seed, label in ((1, "math"), (2, "code"), (3, "cls")):
        save_expert(Expert.from_svf(svf, random_z(svf, seed), label), folder / f"{label}.safetensors")
    math_z, label = z_from_source(svf, str(folder / "math.safetensors"), folder)
    assert label == "math"
    z, _ = z_from_source(svf, "math", folder)
    assert all(torch.allclose(z[n], math_z[n]) for n in svf.names)
    z, label = z_from_source(svf, "math=0.5, code=0.5", folder)
    code_z = z_from_source(svf, "code", folder)[0]
    assert label == "math=0.5, code=0.5"
    assert all(torch.allclose(z[n], (math_z[n] + code_z[n]) / 2) for n in svf.names)
    assert z_from_source(svf, "cls", folder)[1] == "cls"  # the first-pass classifier exports too
    with pytest.raises(ExpertError, match="no expert 'poetry'.*'code', 'math'"):
        z_from_source(svf, "poetry=1", folder)
    with pytest.raises(ExportError, match="no expert file"):
        z_from_source(svf, str(tmp_path / "missing.safetensors"), folder)
    with pytest.raises(ExpertError, match="LABEL=ALPHA"):
        z_from_source(svf, "math=lots", folder)


def run_cli(*argv: str) -> None:
    cli.main(["export-lora", *argv])


def test_command_line_writes_the_adapter(svf, tmp_path, capsys):
    model_dir = tmp_path / "tiny"
    svf.model.save_pretrained(model_dir)
    word_tokenizer().save_pretrained(model_dir)
    for seed, label in ((1, "math"), (2, "code")):
        path = tmp_path / "experts" / "tiny" / f"{label}.safetensors"
        save_expert(Expert.from_svf(svf, random_z(svf, seed), label), path)
    common = ["--model", str(model_dir), "--experts", str(tmp_path / "experts"), "--device", "cpu"]
    run_cli("math=0.5,code=0.5", "--rank", "full", "--out", str(tmp_path / "mix"), *common)
    assert f"wrote {tmp_path / 'mix'} (rank {FULL}, math=0.5,code=0.5" in capsys.readouterr().out
    z = z_from_source(svf, "math=0.5,code=0.5", tmp_path / "experts" / "tiny")[0]
    torch.testing.assert_close(peft_logits(tmp_path / "mix"), adapted_logits(svf, z), atol=1e-4, rtol=0)
    for argv, message in (
        (["poetry", "--out", str(tmp_path / "p")], "export-lora: no expert 'poetry'"),
        (["math", "--rank", "0", "--out", str(tmp_path / "r")], "--rank takes one positive integer"),
        (["math", "--out", str(tmp_path / "mix")], "already exists"),
    ):
        with pytest.raises(SystemExit, match=message):
            run_cli(*argv, *common)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "experts", "mix", "tiny"]
    run_cli("math", "--rank", "2", "--out", str(tmp_path / "m2"), "--fidelity", "--fidelity-ranks", "0,2,full",
            "--kl-n", "3", "--limit", "2", "--accuracy-ranks", "full", *common)
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table[3:]] == ["0", "2", str(FULL), "SVF"]
    assert table[-1].split()[-1] == table[-2].split()[-1] == "2"  # n of the accuracy at full rank and of SVF


def test_parser_and_ranks():
    args = cli.build_parser().parse_args(["export-lora", "math=0.5,code=0.5", "--rank", "full", "--out", "x", "--fidelity"])
    assert (args.source, args.rank, args.out, args.fidelity, args.model) == ("math=0.5,code=0.5", "full", "x", True,
                                                                             "default")
    assert parse_ranks(args.fidelity_ranks, 256) == [0, 1, 2, 4, 8, 16, 32, 256]
    with pytest.raises(ExportError, match="'half'"):
        parse_ranks("4,half", 256)

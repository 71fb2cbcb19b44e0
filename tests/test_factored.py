"""Factored forward with a z per batch row: it equals the dense model and the compose path, row by
row, through generate() and its KV cache, with LLaVA-Next images, mixtures and concurrent threads;
unfactorize gives back the exact modules and weights."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import tiny_model

from t2demo.factored import FactoredLinear, factorize, generate_rows, memory_report, unfactorize
from t2demo.svf import SVF

PAD = 0
IMAGE = 96  # the tiny LLaVA-Next's image token; text prompts avoid it
NEW = 8


def strong_z(svf: SVF, seed: int) -> dict[str, torch.Tensor]:
    """A z large enough to change a random tiny model's greedy answer."""
    g = torch.Generator().manual_seed(seed)
    return {n: 1 + 2 * torch.randn(r, generator=g) for n, r in svf.ranks.items()}


def prompts(lengths, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, IMAGE, (n,), generator=g).tolist() for n in lengths]


def left_padded(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.tensor([[PAD] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return {"input_ids": ids, "attention_mask": mask}


def greedy(model, enc: dict, zs=None, handle=None) -> tuple[torch.Tensor, torch.Tensor]:
    """New tokens (B, NEW) and their logits (B, NEW, V): by the compose path without `handle`,
    else by generate_rows."""
    kwargs = dict(max_new_tokens=NEW, do_sample=False, pad_token_id=PAD,
                  return_dict_in_generate=True, output_logits=True)
    with torch.no_grad():
        out = generate_rows(handle, enc, zs, **kwargs) if handle else model.generate(**enc, **kwargs)
    return out.sequences[:, enc["input_ids"].shape[1]:], torch.stack(out.logits, dim=1)


def compose_alone(svf: SVF, encs: list[dict], zs: list) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each prompt generated alone with its own z composed into the weights: the reference."""
    out = []
    for enc, z in zip(encs, zs):
        with svf.adapted(z) as model:
            out.append(greedy(model, enc))
    return out


def assert_rows_match(batch: tuple[torch.Tensor, torch.Tensor], alone: list, atol: float = 1e-4) -> None:
    tokens, logits = batch
    for b, (ref_tokens, ref_logits) in enumerate(alone):
        assert torch.equal(tokens[b], ref_tokens[0]), b
        torch.testing.assert_close(logits[b], ref_logits[0], atol=atol, rtol=1e-4)


def llama(dtype: torch.dtype = torch.float32):
    model = tiny_model("llama").to(dtype)
    model.generation_config.eos_token_id = None  # every row runs NEW tokens, alone or batched
    return model


# --- equal to the dense and compose paths ------------------------------------------------------


def test_base_rows_equal_the_dense_model():
    model = llama()
    svf = SVF(model)
    ids = torch.tensor(prompts([7, 7, 7]))
    with torch.no_grad():
        dense = model(ids).logits
        handle = factorize(svf)
        assert isinstance(model.get_submodule(svf.names[0].removesuffix(".weight")), FactoredLinear)
        torch.testing.assert_close(model(ids).logits, dense, atol=1e-5, rtol=0)
        for zs in ([None] * 3, [svf.identity()] * 3, [None, svf.identity(), {}]):
            with handle.rows(zs):
                torch.testing.assert_close(model(ids).logits, dense, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-4), (torch.bfloat16, 0.02)])
def test_one_z_for_all_rows_equals_compose(dtype, atol):
    model = llama(dtype)
    svf = SVF(model)
    z = strong_z(svf, 0)
    ids = torch.tensor(prompts([6, 6, 6]))
    with torch.no_grad(), svf.adapted(z):
        composed = model(ids).logits.float()
    with svf.adapted(z):
        reference, _ = greedy(model, {"input_ids": ids})
    handle = factorize(svf)
    with torch.no_grad(), handle.rows([z] * 3):
        factored = model(ids).logits.float()
    assert (factored - composed).abs().max() <= atol * max(1.0, composed.abs().max().item())
    if dtype == torch.float32:  # bfloat16 rounds W' and the factored product differently
        tokens, _ = greedy(model, {"input_ids": ids}, [z] * 3, handle)
        assert torch.equal(tokens, reference)


def test_rows_with_different_z_equal_each_prompt_alone():
    """Left-padded prompts of different lengths, each with its own z (one shared by two rows, one
    None), generated in one batch with the KV cache, against each prompt alone on the compose path."""
    model = llama()
    svf = SVF(model)
    z0, z1 = strong_z(svf, 0), strong_z(svf, 1)
    zs = [z0, None, z1, z0]
    rows = prompts([5, 9, 3, 7])
    encs = [left_padded([r]) for r in rows]
    alone = compose_alone(svf, encs, zs)
    base = compose_alone(svf, encs, [None] * len(rows))
    for b in (0, 2, 3):  # the z really change the answers
        assert not torch.equal(alone[b][0], base[b][0])
    handle = factorize(svf)
    assert_rows_match(greedy(model, left_padded(rows), zs, handle), alone)


def test_mixtures_equal_compose():
    model = llama()
    svf = SVF(model)
    experts = [strong_z(svf, k) for k in range(3)]
    zs = [svf.mix(experts, torch.tensor([0.5, 0.2, 0.8])),
          svf.mix(experts, torch.rand(3, svf.num_layers, generator=torch.Generator().manual_seed(0))),
          svf.mix(experts, torch.zeros(3))]
    rows = prompts([4, 6, 5], seed=1)
    alone = compose_alone(svf, [left_padded([r]) for r in rows], zs)
    handle = factorize(svf)
    assert_rows_match(greedy(model, left_padded(rows), zs, handle), alone)


def test_rescaled_svf_equals_compose():
    model = llama()
    svf = SVF(model, rescale=True)
    zs = [strong_z(svf, 0).copy(), None]
    zs[0] = {n: v.abs() for n, v in zs[0].items()}  # Σσz > 0: the rescale stays finite
    rows = prompts([4, 6], seed=2)
    alone = compose_alone(svf, [left_padded([r]) for r in rows], zs)
    handle = factorize(svf)
    assert_rows_match(greedy(model, left_padded(rows), zs, handle), alone)


# --- LLaVA-Next ------------------------------------------------------------------------------


def llava_rows(model) -> tuple[list[dict], dict]:
    """Three prompts, the first and last with an image of a different size, the middle text only:
    each alone and as one left-padded batch."""
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([[32, 32], [32, 64]])
    pixels = torch.randn(2, 3, 3, 32, 32, generator=g)  # padded to the larger image's 3 tiles
    with torch.no_grad():
        lengths = [len(f) for f in model.model.get_image_features(pixels, sizes).pooler_output]
    text = prompts([4, 6, 3, 5, 2], seed=3)
    rows = [text[0] + [IMAGE] * lengths[0] + text[1], text[2], text[3] + [IMAGE] * lengths[1] + text[4]]
    images = {0: 0, 2: 1}
    alone = []
    for b, r in enumerate(rows):
        enc = left_padded([r])
        if b in images:
            i = images[b]
            enc |= {"pixel_values": pixels[i:i + 1, :2 + i], "image_sizes": sizes[i:i + 1]}
        alone.append(enc)
    return alone, left_padded(rows) | {"pixel_values": pixels, "image_sizes": sizes}


@pytest.mark.parametrize("include_vision", [False, True])
def test_llava_rows_with_images_equal_compose(include_vision):
    model = tiny_model("llava_next")
    model.generation_config.eos_token_id = None
    svf = SVF(model, include_vision=include_vision)
    assert any(svf.layer_of(n) is None for n in svf.names) == include_vision
    zs = [strong_z(svf, 0), strong_z(svf, 1), None]
    encs, batch = llava_rows(model)
    alone = compose_alone(svf, encs, zs)
    handle = factorize(svf)
    assert_rows_match(greedy(model, batch, zs, handle), alone)
    if include_vision:  # the image patches cannot be given their rows' z without the batch's inputs
        with handle.rows(zs), pytest.raises(ValueError, match="image_sizes"), torch.no_grad():
            model(**batch)


# --- unfactorize, errors, memory ---------------------------------------------------------------


@pytest.mark.parametrize("keep_dense", [True, False])
def test_unfactorize_restores_modules_and_weights(keep_dense):
    model = llama()
    svf = SVF(model)
    modules = dict(model.named_modules())
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.tensor(prompts([5, 5]))
    with torch.no_grad():
        before = model(ids).logits
    handle = factorize(svf, keep_dense=keep_dense)
    with pytest.raises(RuntimeError):  # the compose path refuses to write into modules not in use
        svf.apply(strong_z(svf, 0))
    unfactorize(handle)
    unfactorize(handle)  # a second call changes nothing
    assert all(m is modules[n] for n, m in model.named_modules())
    params = dict(model.named_parameters())
    assert params.keys() == weights.keys()
    assert all(torch.equal(params[n], w) for n, w in weights.items())
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)
    with svf.adapted(strong_z(svf, 0)), torch.no_grad():  # the compose path works again
        assert not torch.allclose(model(ids).logits, before)
    with pytest.raises(RuntimeError, match="unfactorized"), handle.rows([None, None]):
        pass


def test_bad_rows_are_refused():
    model = llama()
    svf = SVF(model)
    handle = factorize(svf)
    z0, z1 = strong_z(svf, 0), strong_z(svf, 1)
    enc = left_padded(prompts([3, 4]))
    with pytest.raises(ValueError, match="num_beams"):
        generate_rows(handle, enc, [z0, z1], max_new_tokens=2, num_beams=2, do_sample=False, pad_token_id=PAD)
    with pytest.raises(ValueError, match="3 z for a batch of 2"):
        generate_rows(handle, enc, [z0, z1, None], max_new_tokens=2)
    with pytest.raises(KeyError, match="not a target"), handle.rows([{"lm_head.weight": torch.ones(3)}]):
        pass
    name = svf.names[0]
    with pytest.raises(ValueError, match="shape"), handle.rows([{name: torch.ones(2)}]):
        pass


def test_memory_report():
    model = llama()
    svf = SVF(model)
    shapes = [model.get_parameter(n).shape for n in svf.names]
    report = memory_report(svf)
    assert report["matrices"] == len(svf.names)
    assert report["dense_bytes"] == sum(m * n * 4 for m, n in shapes)
    macs = sum(min(m, n) * (m + n) for m, n in shapes) / sum(m * n for m, n in shapes)
    assert report["compute_ratio"] == pytest.approx(macs)
    assert report["memory_ratio"] == pytest.approx(svf.memory_ratio)
    factorize(svf, keep_dense=False)
    assert memory_report(svf) == report


# --- threads -----------------------------------------------------------------------------------


def test_threads_generating_at_once_each_get_their_own_rows():
    model = llama()
    svf = SVF(model)
    rows = prompts([5, 7], seed=4)
    zs = {"a": [strong_z(svf, 0), None], "b": [strong_z(svf, 1), strong_z(svf, 2)]}
    enc = left_padded(rows)
    handle = factorize(svf)
    expected = {k: greedy(model, enc, z, handle)[0] for k, z in zs.items()}  # one thread at a time
    start = threading.Barrier(2)
    got: dict[str, list[torch.Tensor]] = {k: [] for k in zs}

    def worker(key: str) -> None:
        start.wait()
        for _ in range(4):
            got[key].append(greedy(model, enc, zs[key], handle)[0])

    threads = [threading.Thread(target=worker, args=(k,)) for k in zs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torch.equal(expected["a"], expected["b"])
    for k in zs:
        assert len(got[k]) == 4 and all(torch.equal(t, expected[k]) for t in got[k]), k

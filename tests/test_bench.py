"""The compose benchmark measures what it claims: the same W' three ways, errors against float64."""

import torch

from t2demo import bench


def test_compose_rows_agree_with_float64():
    rows = bench.bench_shapes(torch.device("cpu"), divisor=64, repeats=2)
    assert [r["count"] for r in rows] == [2, 2, 2, 1]  # q/o, k/v, gate/up, down per layer
    for r in rows:
        assert r["ours_rel_err"] < 1e-5 and r["authors_rel_err"] < 1e-5
        assert min(r["authors_s"], r["ours_s"], r["matmul_s"]) > 0


def test_timed_runs_setup_untimed():
    calls = []
    seconds = bench.timed(lambda: calls.append("fn"), torch.device("cpu"), repeats=3, warmup=1,
                          setup=lambda: calls.append("setup"))
    assert calls == ["setup", "fn"] * 4 and seconds >= 0


def test_model_costs_are_measured_on_the_shipped_model():
    from transformers import AutoConfig

    from t2demo.models import DEFAULT_TEXT_MODEL

    config = AutoConfig.from_pretrained(DEFAULT_TEXT_MODEL)
    m = bench.bench_model(torch.device("cpu"), repeats=1)
    assert (m["layers"], m["hidden"]) == (config.num_hidden_layers, config.hidden_size)
    assert m["matrices"] == 3 * config.num_hidden_layers  # gate, up and down of every layer
    assert m["adapted_forward_s"] > 0 and m["memory_ratio"] > 1

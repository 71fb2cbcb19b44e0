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

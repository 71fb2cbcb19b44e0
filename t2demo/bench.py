"""`python -m t2demo bench compose`: how fast and how exact SVF composition is, against the authors'
formulation and against the floor a full-rank compose cannot beat (one plain matrix product);
plus the cost of decomposing, loading the cache, swapping weights and the no-swap forward.
`bench app`, `bench cem` and `bench serve` (many users at once: the old swap-and-lock path, the
batched factored path and the base model alone) measure the app's paths on the shipped models.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch import Tensor

from t2demo.svf import SVF, compose

# Llama-3-8B: (name, out features m, in features n, matrices of this shape per layer)
LLAMA3_8B_SHAPES = [("q/o", 4096, 4096, 2), ("k/v", 1024, 4096, 2), ("gate/up", 14336, 4096, 2), ("down", 4096, 14336, 1)]
CPU_DIVISOR = 8  # same aspect ratios, small enough for a CPU


def authors_compose(U: Tensor, S: Tensor, Vh: Tensor, z: Tensor) -> Tensor:
    """The authors' formulation: a dense r×r diagonal, two products, then the Σσ rescale."""
    s = S * z
    return (U @ torch.diag_embed(s) @ Vh) * (S.sum() / s.sum())


def timed_together(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int = 2,
                   setup: Callable[[], object] = lambda: None) -> dict[str, float]:
    """Median wall time in seconds of each function, timed in turn within every repeat so that a
    load that comes and goes on a busy machine hits all of them alike and their ratios stay fair.
    `setup` runs untimed before each call (e.g. apply z before timing restore)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        for fn in fns.values():
            setup()
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            setup()
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2,
          setup: Callable[[], object] = lambda: None) -> float:
    """Median wall time of one function (see timed_together)."""
    return timed_together({"fn": fn}, device, repeats, warmup, setup)["fn"]


def _rel_err(W: Tensor, ref: Tensor) -> float:
    return ((W.double() - ref).norm() / ref.norm()).item()


def bench_shapes(device: torch.device, divisor: int, repeats: int) -> list[dict]:
    g = torch.Generator(device).manual_seed(0)
    rows = []
    for name, m, n, count in LLAMA3_8B_SHAPES:
        m, n = m // divisor, n // divisor
        r = min(m, n)
        U = torch.linalg.qr(torch.randn(m, r, device=device, generator=g)).Q
        Vh = torch.linalg.qr(torch.randn(n, r, device=device, generator=g)).Q.T.contiguous()
        S = torch.linspace(1.0, 0.01, r, device=device)
        z = 0.5 + torch.rand(r, device=device, generator=g)
        s64 = S.double() * z.double()
        ref = (U.double() * (s64 * S.double().sum() / s64.sum())) @ Vh.double()
        seconds = timed_together({"authors_s": lambda: authors_compose(U, S, Vh, z),
                                  "ours_s": lambda: compose(U, S, Vh, z, rescale=True),
                                  "matmul_s": lambda: U @ Vh}, device, repeats)
        row = {"shape": name, "m": m, "n": n, "count": count, **seconds,
               "authors_rel_err": _rel_err(authors_compose(U, S, Vh, z), ref),
               "ours_rel_err": _rel_err(compose(U, S, Vh, z, rescale=True), ref)}
        row["speedup"] = row["authors_s"] / row["ours_s"]
        row["ours_over_matmul"] = row["ours_s"] / row["matmul_s"]
        rows.append(row)
    return rows


def bench_model(device: torch.device, repeats: int) -> dict:
    """Decompose, load from cache, apply/restore and forward costs on the shipped default text model."""
    from transformers import LlamaForCausalLM

    from t2demo.models import DEFAULT_TEXT_MODEL

    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(DEFAULT_TEXT_MODEL, dtype=torch.float32).to(device).eval()
    ids = torch.randint(0, model.config.vocab_size, (1, 64), device=device)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        SVF(model, cache_dir=cache)
        decompose_s = time.perf_counter() - start
        start = time.perf_counter()
        svf = SVF(model, cache_dir=cache)
        load_s = time.perf_counter() - start
    z = {k: 0.5 + torch.rand(r) for k, r in svf.ranks.items()}
    with torch.no_grad():
        forward_s = timed(lambda: model(ids), device, repeats)
        apply_s = timed(lambda: svf.apply(z), device, repeats)
        restore_s = timed(svf.restore, device, repeats, setup=lambda: svf.apply(z))

        def swapped():
            with svf.adapted(z):
                model(ids)

        def no_swap():
            with svf.differentiable(z):
                model(ids)

        paths = timed_together({"swapped": swapped, "no_swap": no_swap}, device, repeats)
        swapped_s, no_swap_s = paths["swapped"], paths["no_swap"]
    return {"layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size,
            "matrices": len(svf.names), "targets": svf.targets, "decompose_s": decompose_s, "cache_load_s": load_s,
            "memory_ratio": svf.memory_ratio, "apply_s": apply_s, "restore_s": restore_s, "forward_s": forward_s,
            "adapted_forward_s": swapped_s, "no_swap_forward_s": no_swap_s}


def run(device: torch.device) -> dict:
    gpu = device.type == "cuda"
    divisor, repeats = (1, 20) if gpu else (CPU_DIVISOR, 15)
    rows = bench_shapes(device, divisor, repeats)
    per_layer = {k: sum(r[k] * r["count"] for r in rows) for k in ("authors_s", "ours_s", "matmul_s")}
    overall = {**per_layer, "speedup": per_layer["authors_s"] / per_layer["ours_s"],
               "ours_over_matmul": per_layer["ours_s"] / per_layer["matmul_s"],
               "authors_max_rel_err": max(r["authors_rel_err"] for r in rows),
               "ours_max_rel_err": max(r["ours_rel_err"] for r in rows)}
    return {"device": torch.cuda.get_device_name(device) if gpu else "cpu", "dtype": "float32",
            "shape_divisor": divisor, "repeats": repeats, "torch_threads": torch.get_num_threads(),
            "shapes": rows, "per_layer": overall, "model": bench_model(device, repeats)}


def format_table(res: dict) -> str:
    ms = 1e3
    scale = "Llama-3-8B shapes" + (f" / {res['shape_divisor']}" if res["shape_divisor"] > 1 else "")
    lines = [f"SVF compose, {res['dtype']}, {res['device']}, {scale}, median of {res['repeats']} after warm-up "
             "(authors' and ours both with the Σσ rescale)",
             f"{'shape':<9}{'m×n':>13}{'count':>6}{'authors ms':>12}{'ours ms':>10}{'matmul ms':>11}"
             f"{'speedup':>9}{'ours/mm':>9}{'err authors':>13}{'err ours':>10}"]
    for r in res["shapes"] + [{"shape": "per layer", "m": "", "n": "", "count": "", **res["per_layer"],
                               "authors_rel_err": res["per_layer"]["authors_max_rel_err"],
                               "ours_rel_err": res["per_layer"]["ours_max_rel_err"]}]:
        dims = f"{r['m']}×{r['n']}" if r["m"] else ""
        lines.append(f"{r['shape']:<9}{dims:>13}{r['count']!s:>6}{r['authors_s'] * ms:>12.3f}{r['ours_s'] * ms:>10.3f}"
                     f"{r['matmul_s'] * ms:>11.3f}{r['speedup']:>8.2f}×{r['ours_over_matmul']:>8.2f}×"
                     f"{r['authors_rel_err']:>13.1e}{r['ours_rel_err']:>10.1e}")
    m = res["model"]
    lines += [
        "",
        f"Default model (the shipped LlamaForCausalLM, {m['layers']} layers, hidden {m['hidden']}), "
        f"targets {m['targets']!r}: {m['matrices']} matrices",
        f"  decompose + write cache   {m['decompose_s']:.3f} s",
        f"  load from cache           {m['cache_load_s']:.3f} s",
        f"  factor / weight memory    {m['memory_ratio']:.2f}×",
        f"  apply z (write W')        {m['apply_s'] * ms:.2f} ms",
        f"  restore base              {m['restore_s'] * ms:.2f} ms",
        f"  forward, 64 tokens        {m['forward_s'] * ms:.2f} ms base, {m['adapted_forward_s'] * ms:.2f} ms "
        f"adapted (apply + forward + restore), {m['no_swap_forward_s'] * ms:.2f} ms no-swap (W' composed in forward)",
    ]
    return "\n".join(lines)


def app_startup(port: int, timeout: float = 300.0) -> float:
    """Seconds from launching `python app.py` (a fresh process) until its page answers."""
    from t2demo.app_check import start_app

    start = time.perf_counter()
    proc = start_app(port, timeout)
    try:
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait()


def first_token(repeats: int = 5) -> dict[str, float]:
    """Median seconds from sending a chat message to the first adapted token (first pass included),
    on the default models and experts, through the same turn the app's chat runs."""
    from t2demo.runtime import load_runtime
    from t2demo.session import Session, turn

    rt = load_runtime(vlm=None, log=lambda *_: None)
    alphas = [0.0] * len(rt.text.experts)
    times, first_pass = [], []
    for i in range(repeats + 1):
        start, first_token_s = time.perf_counter(), None
        # each turn runs to its end: a batch left running would delay the next request (and abort the process
        # if still generating at exit)
        for kind, value, _ in turn(rt.text, Session(), f"Tom has {3 + i} apples and buys 4 more. "
                                   "How many apples does he have now?", [], "prompt-based", "hard", alphas):
            if kind == "first":
                seconds = value.seconds
            elif kind == "answer" and value and first_token_s is None:
                first_token_s = time.perf_counter() - start
        if i:  # the first call warms up
            times.append(first_token_s)
            first_pass.append(seconds)
    return {"first_token_s": statistics.median(times), "first_pass_s": statistics.median(first_pass),
            "repeats": repeats, "experts": len(rt.text.experts)}


def app_bench(port: int) -> dict:
    """`bench app`: start-to-ready of `python app.py` and time to the first adapted token."""
    return {"device": "cpu" if not torch.cuda.is_available() else "cuda", "startup_s": app_startup(port),
            **first_token()}


def format_app(res: dict) -> str:
    return (f"python app.py ready in {res['startup_s']:.1f} s (target 20 s); first adapted token "
            f"{res['first_token_s']:.2f} s (target 1 s; first pass {res['first_pass_s']:.2f} s; "
            f"median of {res['repeats']}; {res['experts']} experts)")


# ----------------------------------------------------------------------------- CEM

def _bench_adapter(model_name: str, device: str | None):
    """The model with its trained text experts when present, else seeded random ones (speed is the same)."""
    from t2demo.adapt.adapter import Adapter
    from t2demo.experts import Expert
    from t2demo.runtime import load_adapter

    adapter = load_adapter(model_name, "text", device=device)
    if [e.label for e in adapter.experts] == ["code", "math", "reasoning"]:
        return adapter, "trained"
    g = torch.Generator().manual_seed(0)
    zs = [{n: 1 + 0.1 * torch.randn(r, generator=g) for n, r in adapter.svf.ranks.items()} for _ in range(3)]
    experts = [Expert.from_svf(adapter.svf, z, label) for z, label in zip(zs, ("math", "code", "reasoning"))]
    return Adapter(adapter.lm, experts, None, adapter.svf), "random (no trained experts found)"


def cem_bench(model_name: str = "default", device: str | None = None, naive_generations: int = 2) -> dict:
    """One CEM fit (10 examples, population 32, 20 generations) with each generation's members ×
    examples as rows of one batch (accuracy mode and fast mode), against scoring one member at a
    time (per_member, the earlier way) and the naive per-example loop, both on the same members for
    `naive_generations` generations; the naive rate is what the speedups compare (a full naive fit
    would take hours on a CPU); whether their shared generations pick the same α is reported."""
    from t2demo import tasks
    from t2demo.adapt.cem import cem, fewshot_batch_objective, fewshot_objective, naive_objective

    adapter, source = _bench_adapter(model_name, device)
    task = tasks.TASKS["math-hard"]
    examples = task.examples("validation", 10)
    settings = dict(population=32, elite_frac=0.2, seed=0)
    rows, alphas = {}, {}
    for name, gens, objective in (
        ("batched", 20, fewshot_batch_objective(adapter, examples, task)),
        ("batched_fast", 20, fewshot_batch_objective(adapter, examples, task, fast=True)),
        ("per_member", naive_generations, fewshot_objective(adapter, examples, task)),
        ("naive", naive_generations, naive_objective(adapter, examples, task)),
    ):
        r = cem(objective, (len(adapter.experts),), generations=gens, **settings)
        rows[name] = {"generations": gens, "evaluations": r.evaluations, "wall_s": r.seconds,
                      "evaluations_per_s": r.evaluations / r.seconds, "best_fitness": r.fitness,
                      "alpha": r.alpha.tolist()}
        alphas[name] = [h["alpha"] for h in r.history[:naive_generations]]
    rate = rows["naive"]["evaluations_per_s"]
    return {"model": model_name, "device": str(adapter.lm.device), "experts": source, "task": task.name,
            "examples": len(examples), **settings, "runs": rows,
            "speedup_batched": rows["batched"]["evaluations_per_s"] / rate,
            "speedup_fast": rows["batched_fast"]["evaluations_per_s"] / rate,
            "speedup_per_member": rows["per_member"]["evaluations_per_s"] / rate,
            "same_alpha_as_per_member": alphas["batched"] == alphas["per_member"],
            "same_alpha_as_naive": alphas["batched"] == alphas["naive"],
            "naive_full_fit_estimate_s": rows["batched"]["evaluations"] / rate}


def format_cem(result: dict) -> str:
    lines = [f"CEM on {result['task']}, {result['examples']} examples, population 32, {result['model']} on {result['device']}"]
    for name, row in result["runs"].items():
        lines.append(f"{name:<14}{row['generations']:>4} gen {row['wall_s']:>9.1f} s {row['evaluations_per_s']:>9.2f} eval/s")
    lines.append(f"speedup over the naive loop: batched {result['speedup_batched']:.1f}x, fast {result['speedup_fast']:.1f}x, "
                 f"per member {result['speedup_per_member']:.1f}x (a full naive fit: ~{result['naive_full_fit_estimate_s']:.0f} s)")
    lines.append(f"first {result['runs']['naive']['generations']} generations pick the same alpha as per member: "
                 f"{'yes' if result['same_alpha_as_per_member'] else 'no'}, as naive: "
                 f"{'yes' if result['same_alpha_as_naive'] else 'no'}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- serving

SERVE_USERS = (1, 4, 16)
SERVE_TOKENS = 48
SERVE_TARGETS = {"batched_over_swap": 5.0, "batched_over_base": 0.6}  # at N = 16


def _serve_jobs(adapter, n: int, seed: int = 0) -> list[tuple[dict, dict | None]]:
    """n users' chat messages (math, code and reasoning prompts in turn), each with its own random α
    (a mixture of the experts, Dirichlet(1)), encoded as the app encodes a turn."""
    from t2demo import tasks

    g = torch.Generator().manual_seed(seed)
    names = ("math", "code", "reasoning")
    examples = [tasks.TASKS[name].examples("validation", n) for name in names]
    jobs = []
    for i in range(n):
        alpha = -torch.rand(len(adapter.experts), generator=g).log()
        jobs.append((adapter.encode(examples[i % 3][i].prompt, max_new_tokens=SERVE_TOKENS),
                     adapter.z_from_alpha(alpha / alpha.sum())))
    return jobs


def _at_once(work: Callable[[int], object], n: int) -> tuple[float, list[float]]:
    """work(i) for i < n, one thread each, released together: the wall time and each one's latency."""
    import threading

    barrier = threading.Barrier(n + 1)
    done: list = [None] * n

    def user(i: int) -> None:
        barrier.wait()
        try:
            work(i)
            done[i] = time.perf_counter()
        except Exception as e:  # noqa: BLE001 - raised below, in the caller
            done[i] = e

    threads = [threading.Thread(target=user, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    for d in done:
        if isinstance(d, Exception):
            raise d
    return max(done) - start, [d - start for d in done]


def _serve_paths(adapter, jobs: list[tuple[dict, dict | None]]) -> dict[str, Callable[[], tuple[float, list[float]]]]:
    """The three ways to answer the users: (a) swap: each composes its z' under the lock and generates
    alone (the old path); (b) batched: all through the scheduler, a z' per row; (c) base: the base
    model alone, one dense batch. Every answer is exactly SERVE_TOKENS tokens (min = max)."""
    from t2demo.serving import batch_inputs

    tok, n = adapter.lm.tokenizer, len(jobs)
    kwargs = {"max_new_tokens": SERVE_TOKENS, "min_new_tokens": SERVE_TOKENS, "do_sample": False,
              "pad_token_id": tok.pad_token_id, "eos_token_id": adapter.scheduler.eos}

    def on_device(enc: dict) -> dict:
        return {k: v.to(adapter.lm.device) for k, v in enc.items()}

    def swap(i: int) -> None:
        enc, z = jobs[i]
        with adapter.svf.adapted(z) as model, torch.no_grad():
            model.generate(**on_device(enc), **kwargs)

    def batched(i: int) -> None:
        enc, z = jobs[i]
        for _ in adapter.scheduler.submit(enc, [z], SERVE_TOKENS, SERVE_TOKENS):
            pass

    def base() -> tuple[float, list[float]]:
        enc = on_device(batch_inputs([e for e, _ in jobs], tok.pad_token_id))
        start = time.perf_counter()
        with adapter.svf.adapted(None) as model, torch.no_grad():
            model.generate(**enc, **kwargs)
        wall = time.perf_counter() - start
        return wall, [wall] * n

    return {"swap": lambda: _at_once(swap, n), "batched": lambda: _at_once(batched, n), "base": base}


def _serve_row(runs: list[tuple[float, list[float]]], n: int) -> dict:
    """Throughput (median over repeats) and per-user latency percentiles (all users of all repeats)."""
    latencies = torch.tensor([s for _, users in runs for s in users], dtype=torch.float64)
    return {"tokens_per_s": statistics.median(n * SERVE_TOKENS / wall for wall, _ in runs),
            "p50_s": latencies.quantile(0.5).item(), "p95_s": latencies.quantile(0.95).item(),
            "wall_s": statistics.median(wall for wall, _ in runs)}


def _factorize_s(svf: SVF, device: torch.device, repeats: int = 20) -> float:
    """What a batch pays to factorize the model and put the dense modules back."""
    from t2demo.factored import factorize

    def once() -> None:
        with svf.adapted(None):
            factorize(svf).unfactorize()

    return timed(once, device, repeats)


def serve_bench(model_name: str = "default", device: str | None = None, repeats: int = 5) -> dict:
    """`bench serve`: N = 1, 4, 16 simulated users at once, each one chat message with its own α,
    answered by the swap path, the batched factored path and the base model alone (see _serve_paths);
    the three are timed in turn within every repeat. Plus the factored path's memory."""
    from t2demo.factored import memory_report

    adapter, source = _bench_adapter(model_name, device)
    dev = adapter.lm.device
    users = {}
    for n in SERVE_USERS:
        paths = _serve_paths(adapter, _serve_jobs(adapter, n))
        for fn in paths.values():  # warm-up
            fn()
        runs: dict[str, list] = {name: [] for name in paths}
        batches_before = len(adapter.scheduler.batches)
        for _ in range(repeats):
            for name, fn in paths.items():
                runs[name].append(fn())
        row = {name: _serve_row(r, n) for name, r in runs.items()}
        row["batched"]["batch_rows"] = list(adapter.scheduler.batches)[batches_before:]
        row["batched_over_swap"] = row["batched"]["tokens_per_s"] / row["swap"]["tokens_per_s"]
        row["batched_over_base"] = row["batched"]["tokens_per_s"] / row["base"]["tokens_per_s"]
        users[n] = row
    top = users[max(SERVE_USERS)]
    targets = {k: {"target": v, "value": top[k], "met": top[k] >= v} for k, v in SERVE_TARGETS.items()}
    return {"model": model_name, "device": str(dev), "dtype": str(adapter.model.dtype).removeprefix("torch."),
            "experts": source, "max_new_tokens": SERVE_TOKENS, "repeats": repeats,
            "torch_threads": torch.get_num_threads(), "users": users, "targets_at": max(SERVE_USERS),
            "targets": targets, "memory": memory_report(adapter.svf), "factorize_s": _factorize_s(adapter.svf, dev)}


def format_serve(res: dict) -> str:
    lines = [(f"Serving N users at once, each one chat message with its own α (random mixture of the experts, "
              f"{res['experts']}), {res['max_new_tokens']} new tokens each; {res['model']} on {res['device']} "
              f"({res['dtype']}); tok/s: median of {res['repeats']}, latency: every user of every repeat"),
             f"{'users':>5}  {'path':<8}{'tok/s':>9}{'p50 s':>8}{'p95 s':>8}  notes"]
    for n, row in res["users"].items():
        for path in ("swap", "batched", "base"):
            r = row[path]
            note = {"swap": "compose z' under the lock, one request at a time (the old path)",
                    "batched": f"scheduler, a z' per row; rows per batch {r.get('batch_rows')}",
                    "base": "base model alone, one dense batch"}[path]
            lines.append(f"{n if path == 'swap' else '':>5}  {path:<8}{r['tokens_per_s']:>9.1f}{r['p50_s']:>8.3f}"
                         f"{r['p95_s']:>8.3f}  {note}")
        lines.append(f"{'':>5}  batched / swap {row['batched_over_swap']:.2f}×, "
                     f"batched / base {row['batched_over_base']:.2f}×")
    for k, t in res["targets"].items():
        lines.append(f"target at N = {res['targets_at']}: {k.replace('_over_', ' / ')} ≥ {t['target']}×: "
                     f"{t['value']:.2f}× ({'met' if t['met'] else 'missed'})")
    m = res["memory"]
    lines.append(f"factored path memory: factors {m['factor_bytes'] / 2**20:.1f} MiB for {m['matrices']} matrices "
                 f"whose dense weights are {m['dense_bytes'] / 2**20:.1f} MiB ({m['memory_ratio']:.2f}×); "
                 f"multiply-adds {m['compute_ratio']:.2f}× dense; factorize + unfactorize per batch "
                 f"{res['factorize_s'] * 1e3:.1f} ms")
    return "\n".join(lines)

"""Command line: `python -m t2demo <command>` (or `t2demo <command>` once installed).

Every command is a thin wrapper: parse flags, call package functions, print. Flags that set a
config dataclass (train-expert's ExpertConfig) are generated from its fields, so each default and
help text lives in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

DTYPES = ["float32", "bfloat16", "float16"]


def add_config_flags(parser: argparse.ArgumentParser, config: type) -> None:
    """One --flag per field of a config dataclass, with its default, type, choices and help."""
    for f in dataclasses.fields(config):
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        if f.type in ("bool", bool):  # --flag / --no-flag, so that a field that defaults to True keeps it
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                                help=f"{meta.get('help', '')} (default: {f.default})")
        else:
            kind = {"int": int, "float": float, "str": str}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
            parser.add_argument(flag, type=kind, default=f.default, choices=meta.get("choices"),
                                help=f"{meta.get('help', '')} (default: {f.default})")


def config_from(args: argparse.Namespace, config: type):
    """The config dataclass from parsed flags; its own checks become a one-line exit."""
    try:
        return config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config)})
    except ValueError as e:
        raise SystemExit(f"{args.command}: {e}") from e


def _command_line() -> str:
    return "python -m t2demo " + shlex.join(sys.argv[1:])


# ----------------------------------------------------------------------------- commands

def _bench(args: argparse.Namespace) -> None:
    from t2demo import bench

    if args.what == "cem":
        res, text = bench.cem_bench(args.model, args.device, args.naive_generations), bench.format_cem
    elif args.what == "serve":
        res, text = bench.serve_bench(args.model, args.device), bench.format_serve
    elif args.what == "app":
        res, text = bench.app_bench(args.port), bench.format_app
    else:
        import torch

        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        res, text = bench.run(device), bench.format_table
    print(json.dumps(res, indent=2) if args.json else text(res))


def _train_base(args: argparse.Namespace) -> None:
    from t2demo import pretrain

    base = pretrain.TEXT_TRAIN if args.which == "text" else pretrain.VISION_TRAIN
    changes = {k: v for k, v in (("steps", args.steps), ("lr", args.lr), ("seed", args.seed)) if v is not None}
    cfg = dataclasses.replace(base, **changes)
    if args.which == "text":
        card = pretrain.train_text_model(Path(args.out or pretrain.DEFAULT_TEXT_MODEL), cfg, args.device,
                                         Path(args.init) if args.init else None)
    else:
        card = pretrain.train_vision_model(Path(args.out or pretrain.DEFAULT_VISION_MODEL),
                                           Path(args.text_model or pretrain.DEFAULT_TEXT_MODEL), cfg, args.device,
                                           Path(args.init) if args.init else None)
    print(json.dumps(card, indent=2))


def _mix_of(args: argparse.Namespace) -> dict[str, float]:
    from t2demo.experts import ExpertError, parse_mix

    try:
        return parse_mix(args.mix) if args.mix else {}
    except ExpertError as e:
        raise SystemExit(f"--mix: {e}") from e


def _load_mixed(args: argparse.Namespace, mix: dict[str, float], kind: str):
    """The model, with W'(z') of --mix written into its weights: its own experts and, on the vision
    model, the text model's (transferred), as the app offers them."""
    from t2demo import models
    from t2demo.experts import ExpertError, mixture_from_labels
    from t2demo.runtime import load_adapter

    name = getattr(args, "vlm", None) if kind == "vision" else args.model
    if not mix:
        return models.load_model(name, kind, args.device, args.dtype)
    adapter = load_adapter(name, kind, None, args.device, args.dtype,
                           transfer_from=args.model if kind == "vision" else None)
    try:
        adapter.svf.apply(mixture_from_labels(adapter.svf, adapter.experts, mix))
    except ExpertError as e:
        raise SystemExit(f"{args.command} --mix: {e} for {name}") from e
    return adapter.lm


def _eval(args: argparse.Namespace) -> None:
    from t2demo import evaluate, models, pretrain
    from t2demo.atomic import write_json_atomic
    from t2demo.tasks.benchmarks import Benchmark, BenchmarkDataError

    mix = _mix_of(args)
    if args.card and mix:
        raise SystemExit("eval: --card describes the base model; run it without --mix")

    def load(kind: str) -> models.LoadedModel:
        return _load_mixed(args, mix, kind)

    chosen = _chosen_tasks("eval", args.tasks, args.data)
    try:
        results = evaluate.evaluate(chosen, args.split, args.limit, load, batch_size=args.batch_size, turn=args.turn)
    except BenchmarkDataError as e:
        raise SystemExit(f"eval: {e}") from e
    sources = {t.name: t.source for t in chosen if isinstance(t, Benchmark)}
    mixed = (f" mix={args.mix}" if mix else "") + (f" turn={args.turn}" if args.turn > 1 else "")
    print(evaluate.format_table(results, f"model={args.model} vlm={args.vlm} split={args.split}{mixed}"))
    if args.json:
        write_json_atomic(args.json, {"model": args.model, "vlm": args.vlm, "split": args.split, "mix": mix, "turn": args.turn,
                                      "sources": sources, "results": results})
    if args.card:
        vision = {t.name: t.vision for t in chosen}
        for name, kind in ((args.model, "text"), (args.vlm, "vision")):
            part = {t: r for t, r in results.items() if vision[t] == (kind == "vision")}
            if part:
                pretrain.write_model_card(Path(models.resolve_model(name, kind)), part, _command_line())


def _probe(args: argparse.Namespace) -> None:
    from t2demo import probe, tasks
    from t2demo.atomic import write_json_atomic

    mix = _mix_of(args)
    names = tasks.parse_task_list(args.tasks)
    result = {}
    for kind in ("text", "vision"):  # the vqa tasks run on the vision model
        part = [n for n in names if tasks.TASKS[n].vision == (kind == "vision")]
        if part:
            result |= probe.probe(_load_mixed(args, mix, kind), part, args.limit, args.vote_limit, args.samples,
                                  args.batch_size)
    result = {n: result[n] for n in names}
    print(probe.format_probe(result, f"model={args.model} vlm={args.vlm} test split" + (f" mix={args.mix}" if mix else "")))
    if args.json:
        write_json_atomic(args.json, {"model": args.model, "vlm": args.vlm, "mix": mix, "results": result})


def _train_expert(args: argparse.Namespace) -> None:
    from t2demo import train
    from t2demo.tasks.benchmarks import BenchmarkDataError

    cfg = config_from(args, train.ExpertConfig)
    try:
        summary = train.run(args.task, args.model, cfg, args.out, device=args.device, dtype=args.dtype,
                            command=_command_line(), fresh=args.fresh, data=args.data or ())
    except (train.TrainingDiverged, train.CheckpointMismatch, BenchmarkDataError) as e:
        raise SystemExit(f"train-expert: {e}") from e
    if summary.get("rank", 0) == 0:  # under accelerate launch, the main process's
        print(json.dumps({k: v for k, v in summary.items() if k != "log"}, indent=2))


def _tasks(args: argparse.Namespace) -> None:
    from t2demo.tasks.registry import listing

    rows = listing()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'task':<18}{'kind':<11}{'group':<10}{'category':<11}{'vision':<8}{'splits (with answers)':<24}"
          f"{'metric':<14}source")
    for r in rows:
        print(f"{r['name']:<18}{r['kind']:<11}{r['group']:<10}{r['category']:<11}{'yes' if r['vision'] else 'no':<8}"
              f"{', '.join(r['splits']):<24}{r['metric']:<14}{r['source']}")
    print("\nSynthetic tasks: train-expert --task (training ones), eval / report --tasks (training, unseen). "
          "Benchmarks: eval / report --tasks NAME [--data NAME=PATH] (default: the hub); group = the paper's table; "
          "each is scored with its category's expert, which train-expert --task NAME [--data PATH] trains on a "
          "benchmark with a train split.")


def _chosen_tasks(command: str, spec: str, data) -> list:
    """The tasks of --tasks (synthetic names and groups, benchmarks and "benchmarks") with each benchmark
    reading its --data copy: the one selection `eval` and `report` share (tasks/benchmarks/selection.py)."""
    from t2demo.tasks.benchmarks import BenchmarkDataError
    from t2demo.tasks.benchmarks.selection import choose

    try:
        return choose(spec, data or ())
    except BenchmarkDataError as e:
        raise SystemExit(f"{command}: {e}") from e


def _report(args: argparse.Namespace) -> None:
    from t2demo import experts, report, tasks
    from t2demo.atomic import write_json_atomic
    from t2demo.tasks.benchmarks import BenchmarkDataError
    from t2demo.tasks.registry import BENCHMARKS, PAPER_TABLES

    if args.which == "app":
        from t2demo import app_check

        categories = [c.strip() for c in args.categories.split(",") if c.strip()]
        unknown = [c for c in categories if c not in tasks.CATEGORIES or c == tasks.OTHER]
        if unknown:
            raise SystemExit(f"report app --categories: unknown {unknown}; choose from {list(tasks.CATEGORIES[:-1])}")
        result = app_check.app_counts(args.port, args.limit, tuple(categories))
        print(app_check.format_app_counts(result))
        if args.json:
            write_json_atomic(args.json, result)
        return
    table1 = args.which == "table1"
    spec = ",".join(",".join(PAPER_TABLES[args.which]) if item.strip() == "benchmarks" else item
                    for item in (args.tasks or ("training" if table1 else "unseen")).split(","))
    chosen = _chosen_tasks(f"report {args.which}", spec, args.data)
    allowed = tasks.TRAINING_TASKS if table1 else tasks.UNSEEN_TASKS
    wrong = [t.name for t in chosen if t.name not in allowed and t.name not in BENCHMARKS]
    if wrong:
        raise SystemExit(f"report {args.which}: tasks must be among {list(allowed)} or the benchmarks "
                         f"{list(BENCHMARKS)}, got {wrong}")
    if args.fewshot_draws < 1:
        raise SystemExit(f"report {args.which}: --fewshot-draws must be 1 or more, got {args.fewshot_draws}")
    if (args.control_shuffles or 0) < 0:
        raise SystemExit(f"report {args.which}: --control-shuffles must be 0 or more, got {args.control_shuffles}")
    vision_tasks = [t for t in chosen if t.vision]
    root = args.experts or experts.EXPERTS_DIR
    save = (lambda r: write_json_atomic(args.json, r)) if args.json else None
    try:
        needs_text = not table1 or len(vision_tasks) < len(chosen)
        text = report.side(args.model, False, args.device, args.dtype, root) if needs_text else None
        vision = report.side(args.vlm, True, args.device, args.dtype, root) if vision_tasks else None
        if table1:
            shuffles = report.CONTROL_SHUFFLES if args.control_shuffles is None else args.control_shuffles
            result = report.table1(text, vision, args.limit, args.batch_size, chosen, on_task=save, shuffles=shuffles)
        else:
            result = report.table2(text, vision, args.limit, args.batch_size, chosen, args.cls_limit, args.fewshot_n,
                                   args.population, args.generations, args.seed, args.fast, on_task=save,
                                   matrix_limit=args.matrix_limit, vertices=not args.gaussian_start,
                                   draws=args.fewshot_draws)
    except BenchmarkDataError as e:
        raise SystemExit(f"report {args.which}: {e}") from e
    print(report.format_table1(result) if table1 else report.format_table2(result))


# ----------------------------------------------------------------------------- flags

def _export_lora(args: argparse.Namespace) -> None:
    """`python -m t2demo export-lora SOURCE --rank R --out DIR [--fidelity] [--limit N]`. Every
    input is checked (model, source, ranks, task) before the adapter is written."""
    from t2demo import export, models
    from t2demo.experts import Expert, expert_dir
    from t2demo.svf import SVF

    try:
        lm = models.load_model(args.model, "text", args.device, args.dtype)
        svf = SVF(lm.model)
        z, label = export.z_from_source(svf, args.source, expert_dir(lm.path, args.experts))
        full = max(svf.ranks[n] for n in z)
        rank = export.parse_ranks(args.rank, full)
        if len(rank) != 1 or rank[0] < 1:
            raise export.ExportError(f"--rank takes one positive integer or 'full', got {args.rank!r}")
        fidelity = accuracy = None
        if args.fidelity:
            fidelity = export.parse_ranks(args.fidelity_ranks, full), export.kl_batch(lm, args.task, args.kl_n)
        if args.limit:
            accuracy = export.parse_ranks(args.accuracy_ranks, full), export.task_scorer(lm, args.task, args.limit, args.batch_size)
        out = export.export_lora(svf, Expert.from_svf(svf, z, label), rank[0], args.out, lm.path)
    except (ValueError, KeyError) as e:  # export.ExportError, ExpertError; UnknownTask is a KeyError
        raise SystemExit(f"export-lora: {e}") from e
    print(f"wrote {out} (rank {min(rank[0], full)}, {label}, base {lm.path})")
    rows = []
    if fidelity:
        ranks, batch = fidelity
        rows += export.lora_fidelity(svf, z, ranks, batch["input_ids"], batch["attention_mask"])
    if accuracy:
        rows += export.lora_accuracy(svf, z, *accuracy)
    if rows:
        scored = f"; greedy accuracy on {args.task} test, n={args.limit}" if args.limit else ""
        print(export.format_fidelity(rows, f"{label} on {args.model}: base + rank-r LoRA against the SVF path; "
                                    f"KL on {args.kl_n} {args.task} validation texts{scored}"))


def _import_authors(args: argparse.Namespace) -> None:
    """`python -m t2demo import-authors FILE --model M --out EXPERT`: the authors' policy_params.pt or
    learnable_params.pt as a t2demo expert of model M that composes their W' exactly."""
    from t2demo import models
    from t2demo.experts import ExpertError, import_authors_expert, save_expert
    from t2demo.svf import SVF

    out = Path(args.out)
    try:
        lm = models.load_model(args.model, args.kind, args.device, args.dtype)
        expert = import_authors_expert(args.file, SVF(lm.model), args.label or out.stem, args.max_mult)
    except ExpertError as e:
        raise SystemExit(f"import-authors: {e}") from e
    save_expert(expert, out)
    c = list(expert.notes["authors_rescale"].values())
    print(f"wrote {out} ({expert.label}, {len(expert.z)} matrices of {lm.path}, from {expert.notes['source_format']}; "
          f"their Σσ rescale folded in: c from {min(c):.4f} to {max(c):.4f})")


# ----------------------------------------------------------------------------- flags

def _benchmark_names(trainable: bool = False) -> str:
    """The benchmarks, for help texts (trainable: those with a train split)."""
    from t2demo.tasks.registry import BENCHMARKS

    return ", ".join(name for name, b in BENCHMARKS.items() if not trainable or "train" in b.splits)


def _add_data_flag(p: argparse.ArgumentParser) -> None:
    """--data, as eval and report read it (tasks/benchmarks/selection.data_paths)."""
    p.add_argument("--data", action="append", metavar="[BENCHMARK=]PATH",
                   help="a benchmark's local copy in its published format (jsonl/json/parquet): a file, or a folder "
                   "of per-split files such as test.jsonl or test-00000-of-00001.parquet; name the benchmark when "
                   "several are chosen; repeatable (default: the Hugging Face hub)")


def _add_export_lora(sub) -> None:
    from t2demo.export import ACCURACY_RANKS, FIDELITY_RANKS

    p = sub.add_parser("export-lora", help="write an expert or a mixture as a PEFT LoRA adapter (vLLM multi-LoRA)")
    p.add_argument("source", help="an expert file, a label of the model's experts (math, cls) or a mixture "
                   "math=0.5,code=0.5")
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--experts", default=None, help="root of the expert folders (default: the repository's experts/)")
    p.add_argument("--rank", default="16", help="LoRA rank or 'full' (exact); vLLM's --max-lora-rank must be at "
                   "least this (default there: 16)")
    p.add_argument("--out", required=True, help="adapter folder to create (must not exist)")
    p.add_argument("--fidelity", action="store_true", help="print the relative ‖ΔW‖ error and next-token KL "
                   "against rank")
    p.add_argument("--fidelity-ranks", default=FIDELITY_RANKS, help="ranks of the table (0 = base model)")
    p.add_argument("--task", default="math", help="task whose validation texts the KL is measured on and "
                   "whose test split --limit scores")
    p.add_argument("--kl-n", type=int, default=32, help="validation texts for the KL")
    p.add_argument("--limit", type=int, default=0, help="also greedy accuracy on this many test examples, "
                   "at --accuracy-ranks and on the SVF path")
    p.add_argument("--accuracy-ranks", default=ACCURACY_RANKS)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.set_defaults(func=_export_lora)


def _add_import_authors(sub) -> None:
    p = sub.add_parser("import-authors", help="convert an expert of the paper's code (policy_params.pt or "
                       "learnable_params.pt) into a t2demo expert")
    p.add_argument("file", help="the authors' policy_params.pt or learnable_params.pt (read with weights_only)")
    p.add_argument("--model", required=True, help="the base model it was trained on: a folder or a hub id "
                   "(a LLaVA-Next with --kind vision: the language model's MLP)")
    p.add_argument("--out", required=True, help="expert file to write, e.g. experts/<model folder>/math.safetensors")
    p.add_argument("--label", default=None, help="the expert's label (default: the --out file name)")
    p.add_argument("--kind", default="text", choices=["text", "vision"])
    p.add_argument("--max-mult", type=float, default=1.0, help="the policy's max_mult in their config (default 1)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.set_defaults(func=_import_authors)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory benchmarks")
    p.add_argument("what", choices=["compose", "cem", "app", "serve"], help="which benchmark")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--device", default=None, help="cpu or cuda (default: fastest present)")
    p.add_argument("--model", default="default", help="cem, serve: text model, 'default', a folder or a hub id")
    p.add_argument("--port", type=int, default=7861, help="app: port for the started app")
    p.add_argument("--naive-generations", type=int, default=2,
                   help="cem: generations of the naive per-example loop (its rate sets the speedup)")
    p.set_defaults(func=_bench)


def _add_train_base(sub) -> None:
    p = sub.add_parser("train-base", help="retrain a shipped default model from seeds")
    p.add_argument("which", choices=["text", "vision"])
    p.add_argument("--out", default=None, help="output folder (default: the shipped asset folder)")
    p.add_argument("--text-model", default=None, help="vision only: the text model to start from")
    p.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    p.add_argument("--lr", type=float, default=None, help="override the peak learning rate")
    p.add_argument("--seed", type=int, default=None, help="override the seed (data order, reply draws)")
    p.add_argument("--init", default=None, help="continue training this model folder (weights and tokenizer or "
                   "processor; for vision, the joint stage) with a fresh optimiser and schedule")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_train_base)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="task accuracy with batched greedy generation")
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--vlm", default="default", help="vision model for the vqa tasks")
    p.add_argument("--tasks", default="all", help="'all', 'training', 'unseen', 'benchmarks' or a comma list; "
                   f"the paper's benchmarks: {_benchmark_names()} (`python -m t2demo tasks` lists every task)")
    _add_data_flag(p)
    p.add_argument("--split", default="test", choices=["train", "validation", "test"],
                   help="benchmarks: only their official splits (gsm8k: train, test)")
    p.add_argument("--limit", type=int, default=500, help="examples per task")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--turn", type=int, default=1, help="ask each prompt as this turn of a chat, after turns the model "
                   "answered itself (2, 3: how well later chat turns are answered)")
    p.add_argument("--card", action="store_true", help="write the results into the models' cards (README.md)")
    p.add_argument("--mix", default=None, help="evaluate the model adapted with its experts mixed, e.g. math=0.5,code=0.25 "
                   "(z' = Σ αₖ zₖ + (1 − Σα)·1; experts from experts/<model folder>/, and the text model's on the vision model)")
    p.set_defaults(func=_eval)


def _add_train_expert(sub) -> None:
    from t2demo import tasks
    from t2demo.train import ExpertConfig

    p = sub.add_parser("train-expert", help="train an SVF expert (or a LoRA baseline) on a task; data-parallel on "
                       "several GPUs with `accelerate launch --num_processes N -m t2demo train-expert ...` (batch-size: "
                       "the prompts of a step over all of them)")
    p.add_argument("--task", required=True, metavar="TASK",
                   help=f"a training task ({', '.join(tasks.TRAINING_TASKS)}; vqa trains on the vision model), cls "
                   "(the first-pass classifier), or a benchmark with a train split "
                   f"({_benchmark_names(trainable=True)}; from the hub or --data), validated on its validation split "
                   "or else a held-out slice of train, never its test split; its expert is its category's (gsm8k: math)")
    _add_data_flag(p)
    p.add_argument("--model", default="default", help="'default', a folder or a hub id (vqa, textvqa, okvqa: a LLaVA-Next model)")
    p.add_argument("--out", default=None, help="expert file (svf) or adapter folder (lora); "
                   "default experts/<model folder>/<task or benchmark's category>[-<objective>][-<targets>].safetensors, "
                   "a suffix only where "
                   "the run differs from the shipped expert (ntp, cls: rl; mlp), as report reads them (lora: a -lora folder); "
                   "the checkpoint goes to <out>.ckpt/")
    add_config_flags(p, ExpertConfig)
    p.add_argument("--fresh", action="store_true", help="ignore and delete an existing checkpoint")
    p.add_argument("--device", default=None, help="under accelerate launch: ignored, each process takes its own")
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.set_defaults(func=_train_expert)


def _add_probe(sub) -> None:
    p = sub.add_parser("probe", help="the world's premise: per-step accuracy in the reliable mode, greedy vs "
                       "majority vote of samples")
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--vlm", default="default", help="vision model for the vqa tasks")
    p.add_argument("--tasks", default="math,math-hard,world-math,code,code-hard,reasoning,reasoning-hard,vqa,vqa-knowledge",
                   help="comma list of tasks")
    p.add_argument("--limit", type=int, default=200, help="test examples per task for the step accuracy")
    p.add_argument("--vote-limit", type=int, default=100, help="test examples per task for greedy vs samples")
    p.add_argument("--samples", type=int, default=16, help="samples per example (k of maj@k, pass@k)")
    p.add_argument("--mix", default=None, help="probe the model adapted with its experts mixed, e.g. math=1")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(func=_probe)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="the paper's Table 1 (base / LoRA / SVF), Table 2 (dispatch, few-shot, "
                       "expert × task), or the app's fix/break counts")
    p.add_argument("which", choices=["table1", "table2", "app"],
                   help="table1, table2, or app: test prompts through a running app's /chat and /vqa, adapted vs base")
    p.add_argument("--port", type=int, default=7862, help="app: port of the app it starts")
    p.add_argument("--categories", default="math,code,reasoning,vqa", help="app: the categories whose test prompts "
                   "are sent (vqa's through /vqa, with their images)")
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--vlm", default="default", help="vision model for the vqa tasks")
    p.add_argument("--tasks", default=None, help="comma list (default: every training task for table1, every "
                   f"unseen task for table2), or benchmarks: {_benchmark_names()}; 'benchmarks': the paper's for "
                   "that table (table1: gsm8k, mbpp, arc-easy, textvqa; table2: competition-math, humaneval, "
                   "arc-challenge, okvqa); a benchmark is scored with its category's expert (gsm8k: math)")
    _add_data_flag(p)
    p.add_argument("--limit", type=int, default=500, help="test examples per task")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--experts", default=None, help="root of the expert folders (default: the repository's experts/)")
    p.add_argument("--control-shuffles", type=int, default=None, help="table1: shuffles of each SVF expert's z "
                   "that its control row averages over (default: report.CONTROL_SHUFFLES, 5; 0: no control row)")
    p.add_argument("--cls-limit", type=int, default=500, help="table2: classification test examples for the "
                   "dispatch confusion matrices")
    p.add_argument("--matrix-limit", type=int, default=500, help="table2: test examples per task for the expert × "
                   "task matrix (each expert alone on every task of the chosen tasks' model; 0: skip it)")
    p.add_argument("--fewshot-n", type=int, default=10, help="table2: validation examples CEM fits α on")
    p.add_argument("--population", type=int, default=32, help="table2: CEM population (the paper's released setting)")
    p.add_argument("--generations", type=int, default=50, help="table2: CEM generations (the paper's released setting)")
    p.add_argument("--seed", type=int, default=0, help="table2: seed of the few-shot examples and of CEM")
    p.add_argument("--fewshot-draws", type=int, default=1, help="table2: draws of the few-shot examples; the "
                   "few-shot row is the first (seed --seed, the paper fits once), and each further draw (seed + 1, "
                   "…) fits and scores again, so the report gives every draw and their mean with a t interval")
    p.add_argument("--gaussian-start", action="store_true", help="table2: CEM's first generation all sampled "
                   "around 1/K (the paper's start) instead of starting with the box's vertices")
    p.add_argument("--fast", action="store_true", help="table2: CEM fitness = log-likelihood of the references "
                   "(no generation) instead of accuracy, ties broken by confidence in the correct replies (the paper's)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file (rewritten after each task)")
    p.set_defaults(func=_report)


def _add_tasks(sub) -> None:
    p = sub.add_parser("tasks", help="list every task: the synthetic ones and the paper's benchmarks")
    p.add_argument("--json", action="store_true", help="print the list as JSON (tasks.registry.listing())")
    p.set_defaults(func=_tasks)


def build_parser() -> argparse.ArgumentParser:
    """Every command and its flags."""
    parser = argparse.ArgumentParser(prog="t2demo",
                                     description="Transformer² self-adaptation: train, evaluate, report, benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_tasks, _add_bench, _add_train_base, _add_eval, _add_probe, _add_train_expert, _add_report,
                _add_export_lora, _add_import_authors):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except RuntimeError as e:
        # A model that cannot be loaded is bad input, not a bug: one line, no traceback, for every command.
        # Looked up in sys.modules so that commands that load no model never import torch.
        models = sys.modules.get("t2demo.models")
        if models is None or not isinstance(e, models.ModelLoadError):
            raise
        name = " ".join([args.command] + [v for v in (getattr(args, "what", None), getattr(args, "which", None)) if v])
        raise SystemExit(f"{name}: {e}") from e

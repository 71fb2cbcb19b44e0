"""Command line: `python -m t2demo <command>`. Each command is a thin wrapper over package functions."""

from __future__ import annotations

import argparse
import json
import sys


def _bench(args: argparse.Namespace) -> None:
    if args.what == "cem":
        from t2demo import cem

        cem.bench_main(args)
        return
    from t2demo import bench

    bench.app_main(args) if args.what == "app" else bench.main(args)


def _train_base(args: argparse.Namespace) -> None:
    from pathlib import Path

    from t2demo import pretrain

    if args.which == "text":
        cfg = pretrain.TEXT_TRAIN if args.steps is None else pretrain.TrainConfig(**{**vars(pretrain.TEXT_TRAIN), "steps": args.steps})
        card = pretrain.train_text_model(Path(args.out or pretrain.DEFAULT_TEXT_MODEL), cfg, args.device)
    else:
        cfg = pretrain.VISION_TRAIN if args.steps is None else pretrain.TrainConfig(**{**vars(pretrain.VISION_TRAIN), "steps": args.steps})
        card = pretrain.train_vision_model(
            Path(args.out or pretrain.DEFAULT_VISION_MODEL), Path(args.text_model or pretrain.DEFAULT_TEXT_MODEL), cfg, args.device
        )
    print(json.dumps(card, indent=2))


def parse_mix(spec: str | None) -> dict[str, float]:
    """"math=0.5,code=0.25" -> {"math": 0.5, "code": 0.25}; a malformed item is a one-line exit."""
    mix = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        label, _, value = item.partition("=")
        try:
            mix[label.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"--mix: expected LABEL=ALPHA items such as math=0.5, got {item!r}") from None
    return mix


def _eval(args: argparse.Namespace) -> None:
    from t2demo import evaluate, models
    from t2demo.experts import ExpertError, expert_dir, load_model_experts, mixture_from_labels
    from t2demo.svf import SVF

    mix = parse_mix(args.mix)
    if args.card and mix:
        raise SystemExit("eval: --card describes the base model; run it without --mix")

    def load(name: str, vision: bool):
        """The model, with W'(z') of --mix written into its weights: its own experts and, on the vision
        model, the text model's (transferred), as the app offers them."""
        model, tok_or_proc = (models.load_vision_model if vision else models.load_text_model)(name, args.device, args.dtype)
        if mix:
            svf = SVF(model)
            folder = expert_dir(models.resolve_model(name, vision))
            try:
                experts, _ = load_model_experts(folder, svf, expert_dir(models.resolve_model(args.model)) if vision else None)
                svf.apply(mixture_from_labels(svf, experts, mix))
            except ExpertError as e:
                raise SystemExit(f"eval --mix: {e} for {name} (experts from {folder})") from e
        return model, tok_or_proc

    names = evaluate.parse_task_list(args.tasks)
    results = evaluate.evaluate(names, args.split, args.limit, load_text=lambda: load(args.model, False),
                                load_vision=lambda: load(args.vlm, True), batch_size=args.batch_size)
    mixed = f" mix={args.mix}" if mix else ""
    print(evaluate.format_table(results, f"model={args.model} vlm={args.vlm} split={args.split}{mixed}"))
    if args.json:
        evaluate.write_json_atomic(args.json, {"model": args.model, "vlm": args.vlm, "split": args.split,
                                               "mix": mix, "results": results})
    if args.card:
        from pathlib import Path

        from t2demo import pretrain, tasks

        command = "python -m t2demo " + " ".join(sys.argv[1:])
        for name, vision in ((args.model, False), (args.vlm, True)):
            part = {t: r for t, r in results.items() if tasks.TASKS[t].vision == vision}
            if part:
                pretrain.write_model_card(Path(models.resolve_model(name, vision)), part, command)


def _train_expert(args: argparse.Namespace) -> None:
    from t2demo import train

    train.main(args)


def _report(args: argparse.Namespace) -> None:
    from t2demo import evaluate, experts, models, report, tasks

    table1 = args.which == "table1"
    names = evaluate.parse_task_list(args.tasks or ("training" if table1 else "unseen"))
    allowed = tasks.TRAINING_TASKS if table1 else tasks.UNSEEN_TASKS
    if not set(names) <= set(allowed):
        raise SystemExit(f"report {args.which}: tasks must be among {list(allowed)}, got {names}")
    vision_tasks = [n for n in names if tasks.TASKS[n].vision]
    root = args.experts or experts.EXPERTS_DIR
    save = (lambda r: evaluate.write_json_atomic(args.json, r)) if args.json else None
    try:
        needs_text = not table1 or len(vision_tasks) < len(names)
        text = report.side(args.model, False, args.device, args.dtype, root) if needs_text else None
        vision = report.side(args.vlm, True, args.device, args.dtype, root) if vision_tasks else None
        if table1:
            result = report.table1(text, vision, args.limit, args.batch_size, names, on_task=save)
        else:
            result = report.table2(text, vision, args.limit, args.batch_size, names, args.cls_limit, args.fewshot_n,
                                   args.population, args.generations, args.seed, args.fast, on_task=save)
    except models.ModelLoadError as e:
        raise SystemExit(f"report: {e}") from e
    print(report.format_table1(result) if table1 else report.format_table2(result))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m t2demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="speed and memory benchmarks")
    p.add_argument("what", choices=["compose", "cem", "app"], help="which benchmark")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--device", default=None, help="cpu or cuda (default: fastest present)")
    p.add_argument("--model", default="default", help="cem: text model, 'default', a folder or a hub id")
    p.add_argument("--port", type=int, default=7861, help="app: port for the started app")
    p.add_argument("--naive-generations", type=int, default=2,
                   help="cem: generations of the naive per-example loop (its rate sets the speedup)")
    p.set_defaults(func=_bench)

    p = sub.add_parser("train-base", help="retrain a shipped default model from seeds")
    p.add_argument("which", choices=["text", "vision"])
    p.add_argument("--out", default=None, help="output folder (default: the shipped asset folder)")
    p.add_argument("--text-model", default=None, help="vision only: the text model to start from")
    p.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_train_base)

    p = sub.add_parser("eval", help="task accuracy with batched greedy generation")
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--vlm", default="default", help="vision model for the vqa tasks")
    p.add_argument("--tasks", default="all", help="'all', 'training', 'unseen' or a comma list")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--limit", type=int, default=500, help="examples per task")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--card", action="store_true", help="write the results into the models' cards (README.md)")
    p.add_argument("--mix", default=None, help="evaluate the model adapted with its experts mixed, e.g. math=0.5,code=0.25 "
                   "(z' = Σ αₖ zₖ + (1 − Σα)·1; experts from experts/<model folder>/, and the text model's on the vision model)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("train-expert", help="train an SVF expert (or a LoRA baseline) on a task")
    p.add_argument("--task", required=True, choices=["math", "code", "reasoning", "vqa", "cls"],
                   help="training task; vqa trains on the vision model, cls is the first-pass classifier")
    p.add_argument("--model", default="default", help="'default', a folder or a hub id (vqa: a LLaVA-Next model)")
    p.add_argument("--out", default=None, help="expert file (svf) or adapter folder (lora); "
                   "default experts/<model folder>/<task>[-<objective>][-<targets>].safetensors, a suffix only where "
                   "the run differs from the shipped expert (ntp, cls: rl; mlp), as report reads them (lora: a -lora folder); "
                   "the checkpoint goes to <out>.ckpt/")
    p.add_argument("--objective", default="rl", choices=["rl", "ntp"], help="REINFORCE, or next-token prediction on the references")
    p.add_argument("--method", default="svf", choices=["svf", "lora"])
    p.add_argument("--targets", default="mlp", choices=["mlp", "attn", "all"], help="which matrices are adapted")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--grad-clip", type=float, default=1e-3, help="gradient-norm clip (<= 0: off)")
    p.add_argument("--kl-coef", type=float, default=0.0, help="per-token KL penalty to the base model (rl)")
    p.add_argument("--normalize-rewards", action="store_true", help="subtract the batch mean, divide by the std (rl)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (rl)")
    p.add_argument("--rollouts", type=int, default=1, help="answers sampled per prompt, each scored against "
                   "the mean of the others (rl)")
    p.add_argument("--eval-every", type=int, default=10, help="steps between validations and checkpoints")
    p.add_argument("--val-n", type=int, default=64, help="validation examples")
    p.add_argument("--eval-batch-size", type=int, default=32)
    p.add_argument("--train-n", type=int, default=2048, help="training examples drawn (the data budget)")
    p.add_argument("--lora-rank", type=int, default=4)
    p.add_argument("--lora-alpha", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="ignore and delete an existing checkpoint")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.set_defaults(func=_train_expert)

    p = sub.add_parser("report", help="the paper's Table 1 (base / LoRA / SVF) or Table 2 (dispatch, few-shot)")
    p.add_argument("which", choices=["table1", "table2"])
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--vlm", default="default", help="vision model for the vqa tasks")
    p.add_argument("--tasks", default=None, help="comma list (default: every training task for table1, "
                   "every unseen task for table2)")
    p.add_argument("--limit", type=int, default=500, help="test examples per task")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--experts", default=None, help="root of the expert folders (default: the repository's experts/)")
    p.add_argument("--cls-limit", type=int, default=500, help="table2: classification test examples for the "
                   "dispatch confusion matrices")
    p.add_argument("--fewshot-n", type=int, default=10, help="table2: validation examples CEM fits α on")
    p.add_argument("--population", type=int, default=16, help="table2: CEM population")
    p.add_argument("--generations", type=int, default=10, help="table2: CEM generations")
    p.add_argument("--seed", type=int, default=0, help="table2: seed of the few-shot examples and of CEM")
    p.add_argument("--fast", action="store_true", help="table2: CEM fitness = log-likelihood of the references "
                   "(no generation) instead of accuracy with log-likelihood ties (the paper's)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file (rewritten after each task)")
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())

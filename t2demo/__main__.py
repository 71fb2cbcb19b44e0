"""Command line: `python -m t2demo <command>`. Each command is a thin wrapper over package functions."""

from __future__ import annotations

import argparse
import json
import sys


def _bench(args: argparse.Namespace) -> None:
    from t2demo import bench

    bench.main(args)


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


def _eval(args: argparse.Namespace) -> None:
    from t2demo import evaluate, models

    names = evaluate.parse_task_list(args.tasks)
    results = evaluate.evaluate(
        names, args.split, args.limit,
        load_text=lambda: models.load_text_model(args.model, args.device, args.dtype),
        load_vision=lambda: models.load_vision_model(args.vlm, args.device, args.dtype),
        batch_size=args.batch_size,
    )
    print(evaluate.format_table(results, f"model={args.model} vlm={args.vlm} split={args.split}"))
    if args.json:
        evaluate.write_json_atomic(args.json, {"model": args.model, "vlm": args.vlm, "split": args.split, "results": results})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m t2demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="speed and memory benchmarks")
    p.add_argument("what", choices=["compose"], help="which benchmark")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--device", default=None, help="cpu or cuda (default: fastest present)")
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
    p.set_defaults(func=_eval)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())

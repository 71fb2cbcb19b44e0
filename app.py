"""t2demo's browser app: Transformer² self-adaptation made visible.

    python app.py [--host 127.0.0.1] [--port 7860] [--model default] [--vlm default|none] [--share]

The entry point only: t2demo.runtime loads the models and experts once, t2demo.ui builds the page
(one module per tab) over plain functions in t2demo.session, and this file launches it.
"""

from __future__ import annotations

import argparse
import time

from t2demo import models
from t2demo.experts import ExpertError
from t2demo.runtime import load_runtime
from t2demo.ui.page import build_app
from t2demo.ui.texts import CSS


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="t2demo: see Transformer² adapt a language model, in the browser")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--vlm", default="default", help="vision model (LLaVA-Next): 'default', a folder, a hub id or 'none'")
    p.add_argument("--experts", default=None, help="experts root folder (default: experts/; one subfolder per model)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the GPU when there is one)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.add_argument("--targets", default="mlp", help="adapted matrices: mlp, attn or all (must match the experts)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        rt = load_runtime(args.model, None if args.vlm == "none" else args.vlm, args.experts, args.device,
                          args.dtype, args.targets)
    except (models.ModelLoadError, ExpertError, ValueError) as e:
        raise SystemExit(f"t2demo: {e}") from None
    demo = build_app(rt)
    demo.queue(default_concurrency_limit=32)  # concurrent turns fill the scheduler's batches (t2demo.serving)
    print(f"ready in {time.perf_counter() - start:.1f} s on {rt.device}; open http://{args.host}:{args.port}")
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=CSS, show_error=True,
                max_file_size="64mb")  # uploads above it are refused before they are stored


if __name__ == "__main__":
    main()

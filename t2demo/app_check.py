"""The app used as a visitor uses it: test prompts sent to a running `python app.py` through /chat,
and image questions through /vqa (prompt-based dispatch, hard), the adapted answer scored against
the base answer beside it.

`python -m t2demo report app` prints, per category, how often the adapted answer differs from the
base answer, fixes it (base wrong, adapted right) and breaks it (base right, adapted wrong). The
prompts are each category's training and unseen tasks' test examples, alternating.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from itertools import chain, zip_longest
from pathlib import Path

from tqdm import tqdm

from t2demo import tasks
from t2demo.paths import APP


def start_app(port: int, timeout: float = 300.0, *flags: str) -> subprocess.Popen:
    """`python app.py --port port [flags]` in a fresh process, returned once its page answers."""
    proc = subprocess.Popen([sys.executable, str(APP), "--port", str(port), *flags], cwd=APP.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"app.py was not ready after {timeout:.0f} s")


def category_examples(category: str, n: int) -> list[tasks.Example]:
    """n test examples of the category's tasks, taken in turn from each (vqa's carry images)."""
    names = [name for name in tasks.REGISTRY.parse("all") if tasks.TASKS[name].category == category]
    per_task = [tasks.TASKS[name].examples("test", n) for name in names]
    return [ex for ex in chain(*zip_longest(*per_task)) if ex is not None][:n]


def _ask(client, ex: tasks.Example, folder: Path) -> dict:
    """One test example through the app: /vqa with its image saved as a PNG, else /chat."""
    if ex.image is None:
        return client.predict(ex.prompt, [], "prompt-based", "hard", None, "", api_name="/chat")
    from gradio_client import handle_file

    path = folder / "question.png"
    ex.image.save(path)
    return client.predict(handle_file(str(path)), ex.prompt, "prompt-based", "hard", None, api_name="/vqa")


def app_counts(port: int = 7862, limit: int = 100, categories=("math", "code", "reasoning", "vqa")) -> dict:
    """Per category: n, and how many adapted answers differ from, fix and break the base answer."""
    from gradio_client import Client

    proc = start_app(port, 300.0, *(() if "vqa" in categories else ("--vlm", "none")))
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = {}
        for category in categories:
            counts = {"n": 0, "differs": 0, "fixes": 0, "breaks": 0, "adapted_right": 0, "base_right": 0,
                      "chosen": {}}
            with tempfile.TemporaryDirectory() as folder:
                for ex in tqdm(category_examples(category, limit), desc=f"app {category}"):
                    out = _ask(client, ex, Path(folder))
                    task = tasks.TASKS[ex.task]
                    adapted, base = task.check(ex, out["answer"]), task.check(ex, out["base_answer"])
                    chosen = out["first_pass"]["category"] or "none"
                    counts["chosen"][chosen] = counts["chosen"].get(chosen, 0) + 1
                    counts["n"] += 1
                    counts["differs"] += out["answer"].strip() != out["base_answer"].strip()
                    counts["fixes"] += adapted and not base
                    counts["breaks"] += base and not adapted
                    counts["adapted_right"] += adapted
                    counts["base_right"] += base
            result[category] = counts
        return {"port": port, "strategy": "prompt-based", "mode": "hard", "categories": result}
    finally:
        proc.terminate()
        proc.wait()


def format_app_counts(report: dict) -> str:
    lines = ["Through the app (/chat, and /vqa for vqa; prompt-based, hard), test prompts per category:",
             f"  {'category':<12}{'n':>5}{'differs':>9}{'fixes':>7}{'breaks':>8}{'base right':>12}{'adapted right':>15}"
             "  dispatched to"]
    for category, c in report["categories"].items():
        lines.append(f"  {category:<12}{c['n']:>5}{c['differs']:>9}{c['fixes']:>7}{c['breaks']:>8}{c['base_right']:>12}"
                     f"{c['adapted_right']:>15}  {c['chosen']}")
    return "\n".join(lines)

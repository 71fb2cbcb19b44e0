"""Why svf.mix gives the rest of α to the base model: the math expert at α = 0.5 on reasoning validation,
mixed as the paper writes it (0.5 · z, which halves every singular value where z ≈ 1) and with the base
share (1 + 0.5 · (z − 1)). README's "The SVF engine" quotes what this prints."""

from t2demo import tasks
from t2demo.evaluate import score_task
from t2demo.runtime import load_adapter

adapter = load_adapter("default")
z = {e.label: e.z for e in adapter.experts}["math"]
task = tasks.TASKS["reasoning"]
examples = task.examples("validation", 300)
for name, mixed in {"base": None, "0.5 * z (no base share)": {k: 0.5 * v for k, v in z.items()},
                    "svf.mix([z], [0.5])": adapter.svf.mix([z], [0.5])}.items():
    with adapter.svf.adapted(mixed):
        right = score_task(adapter.lm, task, examples, progress=False)
    print(f"{name:26} {100 * sum(right) / len(right):5.1f} % (n = {len(right)})")

"""A worked code trace that copies each line as written (VERBATIM=1 in continue.py and measure.py)."""
from t2demo.tasks import programs
from t2demo.tasks.modes import WORK


def verbatim(start, chain):
    """programs.worked with each line copied as written instead of its label (same lists, steps and output)."""
    text, steps, xs = f"{WORK} x = {programs.show(start)};", [(len(WORK) + 5, programs.show(start))], start
    for i, op in enumerate(chain):
        xs = op.fn(xs)
        steps.append((len(text) + 1, op.python))
        text += f" {op.python} -> "
        steps.append((len(text), programs.show(xs)))
        text += programs.show(xs) + ("." if i == len(chain) - 1 else ";")
    text += " The output is "
    steps.append((len(text), programs.show(xs)))
    return text + programs.show(xs) + ".", xs, steps

"""A worked code trace that copies each line as written (VERBATIM=1 in continue.py and measure.py)."""
import dataclasses

from t2demo.tasks import programs

_labelled = programs.worked  # kept before continue.py / measure.py put `verbatim` in its place


def verbatim(start, chain):
    """programs.worked with each line's Python written where its label was (same lists, steps and output)."""
    return _labelled(start, [dataclasses.replace(op, label=op.python) for op in chain])

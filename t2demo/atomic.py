"""Atomic writes: every file and folder t2demo writes appears whole or not at all.

A crash, a full disk or a bad input mid-write never leaves half a file where a reader (the app,
a resumed training run, a report) would trust it: everything is written beside its target,
flushed, and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors.torch import save_file
from torch import Tensor


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """`with atomic_file(p) as tmp: write(tmp)`: tmp is fsynced and renamed to p on success,
    removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """A text file (UTF-8), whole or not at all."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: dict) -> None:
    """Indented JSON, whole or not at all."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def save_safetensors_atomic(tensors: dict[str, Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """safetensors save (contiguous CPU copies), whole or not at all."""
    with atomic_file(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


@contextmanager
def atomic_folder(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """`with atomic_folder(out) as tmp: save_pretrained(tmp)`: a fresh folder beside `out` that
    becomes `out` on success (replacing an existing one only with replace=True; otherwise an
    existing `out` is a FileExistsError before anything is written) and is removed on failure."""
    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f"{path.name} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    old = path.with_name(f".{path.name}.old")
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)

"""Where a benchmark's rows come from: the Hugging Face hub by default, or a local copy (`--data PATH`).

A local copy is in the data set's own published format, read by `datasets` ("json" or "parquet"):
one file (taken as the split asked for), or a folder of per-split files named as the data sets name
them (test.jsonl, test-00000-of-00001.parquet, ARC-Easy-Test.jsonl, TextVQA_0.5.1_val.json). A folder
with one subfolder per config (gsm8k/main, ai2_arc/ARC-Easy, hendrycks_math/algebra) is read through
those subfolders. `datasets` is imported only when rows are first needed, so listing tasks stays fast.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from datasets import Dataset

SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "val", "valid", "dev"), "test": ("test",)}
FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


class BenchmarkDataError(ValueError):
    """Rows that cannot be loaded or used as asked; the message says what to pass instead."""


def split_named(path: Path) -> str | None:
    """The split a file's name announces (test-00000-of-00001.parquet, TextVQA_0.5.1_val.json), if any."""
    words = set(re.split(r"[-_.\s]+", path.name.lower()))
    return next((split for split, names in SPLIT_NAMES.items() if words & set(names)), None)


def split_files(root: Path, configs: Sequence[str | None], split: str) -> list[Path]:
    """The data files of `split` under `root`: through the config subfolders when there are any."""
    if root.is_file():
        named = split_named(root)
        if named not in (None, split):
            raise BenchmarkDataError(f"--data {root} is named as the {named} split, not {split}; pass the {split} file")
        return [root]
    folders = [root / c for c in configs if c and (root / c).is_dir()] or [root]
    files = sorted(f for folder in folders for f in folder.rglob("*")
                   if f.suffix in FORMATS and f.is_file() and split_named(f) == split)
    if not files:
        raise BenchmarkDataError(f"no {split} file under {root} (looked for names such as {split}.jsonl or "
                                 f"{split}-00000-of-00001.parquet, in {', '.join(str(f) for f in folders)})")
    return files


def load_local(root: Path, configs: Sequence[str | None], split: str) -> Dataset:
    """The rows of `split` from a local copy."""
    import datasets

    if not root.exists():
        raise BenchmarkDataError(f"--data {root}: no such file or folder")
    files = split_files(root, configs, split)
    kinds = {FORMATS[f.suffix] for f in files}
    if len(kinds) > 1:
        raise BenchmarkDataError(f"the {split} files under {root} mix formats ({sorted(kinds)}); keep one")
    kind, names = kinds.pop(), [str(f) for f in files]
    try:
        rows = datasets.load_dataset(kind, data_files=names, split="train")
        if kind == "json" and len(rows) == len(files) and "data" in rows.column_names:  # one object per file,
            rows = datasets.load_dataset(kind, data_files=names, field="data", split="train")  # rows under "data"
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as e:
        raise BenchmarkDataError(f"cannot read the {split} files {names} as {kind} ({e}); a split's files must be one "
                                 "table in one schema") from e
    return rows


def load_hub(name: str, hub: str, configs: Sequence[str | None], split: str) -> Dataset:
    """The rows of `split` from the hub (the configs concatenated), or an error that says how to go offline."""
    import datasets

    try:
        parts = [datasets.load_dataset(hub, config, split=split) for config in configs]
    except (OSError, ValueError) as e:  # offline (ConnectionError), not found, no such split
        raise BenchmarkDataError(
            f"{name}: cannot load {hub} ({', '.join(c or 'default' for c in configs)}) split {split!r} from the "
            f"Hugging Face hub: {e}\nWithout the hub, download the data set in its published format and pass "
            f"--data PATH (a file, or a folder of per-split files such as test.jsonl or test-00000-of-00001.parquet)"
        ) from e
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def image_index(root: Path | None) -> dict[str, Path]:
    """Image files under a local copy by name and by stem, for rows that name their image (image_id)."""
    if root is None:
        return {}
    folder = root if root.is_dir() else root.parent
    index: dict[str, Path] = {}
    for path in folder.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            index.setdefault(path.name, path)
            index.setdefault(path.stem, path)
    return index


def image_of(row: Mapping, images: Mapping[str, Path]) -> Image.Image:
    """A row's image as RGB: decoded by `datasets`, bytes, a file path, or its image_id in the local copy."""
    value = row.get("image")
    if isinstance(value, dict):
        value = io.BytesIO(value["bytes"]) if value.get("bytes") else value.get("path")
    if isinstance(value, str):
        value = images.get(Path(value).name) or Path(value)
    if value is None and row.get("image_id") is not None:
        value = images.get(str(row["image_id"]))
    if value is None:
        raise KeyError("image (or image_id with the image files under --data)")
    image = value if isinstance(value, Image.Image) else Image.open(value)
    return image.convert("RGB")

"""Where the shipped models, experts and example images are found, in one place.

They live beside the package in its checkout (`pip install -e .` keeps it there), or under
$T2DEMO_HOME for an install that points elsewhere; the current folder never matters.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("T2DEMO_HOME") or Path(__file__).resolve().parent.parent).expanduser()
ASSETS = ROOT / "assets"  # the default models (and example images)
EXPERTS = ROOT / "experts"  # experts/<model folder>/<label>.safetensors
EXAMPLE_IMAGES = ASSETS / "examples"
APP = ROOT / "app.py"

"""What a first-pass strategy is: given a request, decide α (and so z') for the second pass.

Each strategy is one small class in its own file (prompt.py, cls.py, fewshot.py, manual.py) and
one line in adapt.registry; the app's strategy menu, the API and the report's Table 2 rows are
read from that registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from torch import Tensor

from t2demo.adapt.dispatch import Dispatch

if TYPE_CHECKING:
    from t2demo.adapt.adapter import Adapter
    from t2demo.experts import Expert


@dataclass
class Request:
    """One message for the first pass: the prompt (and image), and what the strategy may use."""

    prompt: str
    image: object = None
    mode: str = "hard"  # hard: the argmax category's expert; soft: α = probabilities
    alpha: object = None  # manual: α per expert (K,) or per expert and layer (K, L)
    mixture: Expert | None = None  # few-shot: the fitted (or uploaded) z' to answer with


class Strategy(Protocol):
    """A first pass, and the facts the app and the report read from it."""

    name: str  # what the API, the CLI and the report call it, e.g. "prompt"
    title: str  # what the app shows, e.g. "prompt-based"
    classifies: bool  # reads the prompt and reports a category (Table 2: choices, dispatch accuracy)
    in_table2: bool  # the report scores it on the unseen tasks
    fits: bool  # answers with a mixture fitted on examples first (Request.mixture)
    needs_classifier: bool  # needs the model's classification expert

    def first_pass(self, adapter: Adapter, request: Request) -> tuple[Dispatch, Mapping[str, Tensor] | None]:
        """The Dispatch and the z' it implies (None: the base weights)."""
        ...

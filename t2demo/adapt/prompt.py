"""Prompt-based first pass (the paper's): the base model classifies the prompt."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from t2demo.adapt.strategy import Request

if TYPE_CHECKING:
    from t2demo.adapt.adapter import Adapter

from t2demo.adapt.dispatch import Dispatch, alpha_from_probabilities, category_probabilities, servable


class PromptBased:
    """The base weights read the classification instruction; hard or soft α from its probabilities over the
    categories the request can be served in (dispatch.servable); the Dispatch keeps the whole reading."""

    name, title = "prompt", "prompt-based"
    classifies, in_table2, fits, needs_classifier = True, True, False, False

    def first_pass(self, adapter: Adapter, request: Request) -> tuple[Dispatch, dict | None]:
        start = time.perf_counter()
        probs = category_probabilities(adapter.lm, request.prompt, request.image, adapter.svf,
                                       self.classifier_z(adapter), adapter.instruction_cache)
        acted = servable(probs, request.image)
        alpha = alpha_from_probabilities(acted, adapter.labels, request.mode)
        d = Dispatch(probs, max(acted, key=acted.get), alpha, time.perf_counter() - start, self.name,
                     list(adapter.labels))
        return d, adapter.z_from_alpha(alpha)

    def classifier_z(self, adapter: Adapter) -> dict | None:
        """z of the weights that classify (None: the base model)."""
        return None

"""Few-shot first pass: the mixture that CEM fitted on a handful of examples answers every prompt."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from t2demo.adapt.strategy import Request

if TYPE_CHECKING:
    from t2demo.adapt.adapter import Adapter

from t2demo.adapt.dispatch import Dispatch, PipelineError


class FewShot:
    """No reading of the prompt: the request's mixture (adapt.cem.fit_alpha, saved as an expert)."""

    name, title = "fewshot", "few-shot"
    classifies, in_table2, fits, needs_classifier = False, True, True, False

    def first_pass(self, adapter: Adapter, request: Request) -> tuple[Dispatch, dict | None]:
        start = time.perf_counter()
        mixture = request.mixture
        if mixture is None:
            raise PipelineError("few-shot needs a mixture: fit one with CEM (or upload an expert) and pick it")
        d = Dispatch({}, None, mixture.notes.get("alpha", []), time.perf_counter() - start, self.name,
                     mixture.notes.get("experts", []), mixture=mixture.label)
        return d, mixture.z

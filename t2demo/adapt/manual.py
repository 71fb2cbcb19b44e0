"""Manual first pass: α is given (the app's sliders, the API's alpha)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from t2demo.adapt.strategy import Request

if TYPE_CHECKING:
    from t2demo.adapt.adapter import Adapter

from t2demo.adapt.dispatch import Dispatch, PipelineError, check_alpha


class Manual:
    """α as given, checked for shape, finiteness and bounds."""

    name, title = "manual", "manual"
    classifies, in_table2, fits, needs_classifier = False, False, False, False

    def first_pass(self, adapter: Adapter, request: Request) -> tuple[Dispatch, dict | None]:
        start = time.perf_counter()
        if request.alpha is None:
            raise PipelineError("the manual strategy needs alpha")
        a = check_alpha(request.alpha, len(adapter.labels), adapter.svf.num_layers, adapter.alpha_bounds)
        d = Dispatch({}, None, a.tolist(), time.perf_counter() - start, self.name, list(adapter.labels))
        return d, adapter.z_from_alpha(a)

"""Classification-expert first pass: the same reading as prompt-based, under the cls expert's z."""

from __future__ import annotations

from typing import TYPE_CHECKING

from t2demo.adapt.dispatch import PipelineError
from t2demo.adapt.prompt import PromptBased

if TYPE_CHECKING:
    from t2demo.adapt.adapter import Adapter


class ClassificationExpert(PromptBased):
    """The model adapted with the classification expert classifies the prompt."""

    name, title = "cls", "classification expert"
    needs_classifier = True

    def classifier_z(self, adapter: Adapter) -> dict:
        if adapter.cls_expert is None:
            raise PipelineError("the classification-expert strategy needs a classification expert for this model "
                                "(train one with `python -m t2demo train-expert --task cls`)")
        return adapter.cls_expert.z

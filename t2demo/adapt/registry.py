"""The first-pass strategies, by name: a new strategy is its own file plus one line here."""

from __future__ import annotations

from t2demo.adapt.cls import ClassificationExpert
from t2demo.adapt.dispatch import PipelineError
from t2demo.adapt.fewshot import FewShot
from t2demo.adapt.manual import Manual
from t2demo.adapt.prompt import PromptBased
from t2demo.adapt.strategy import Strategy

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    PromptBased(),
    ClassificationExpert(),
    FewShot(),
    Manual(),
)}


def get_strategy(name: str) -> Strategy:
    """A strategy by its name ("prompt") or its title ("prompt-based"); a PipelineError lists them."""
    for s in STRATEGIES.values():
        if name in (s.name, s.title):
            return s
    raise PipelineError(f"unknown strategy {name!r}; choose from {[s.title for s in STRATEGIES.values()]}")

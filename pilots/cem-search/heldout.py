"""What the cem-search pilots share: the vision model with its vqa expert and the transferred text experts,
vqa-knowledge's few-shot draws (report.fewshot_examples, as Table 2 draws them from validation) and greedy
accuracy on validation prompts 100-399 that are none of the draws' shots (scripts/two_skill_mixtures.py
reads 0-99). Validation only: nothing here reads the test split."""
from collections.abc import Iterable

import torch

from t2demo import tasks
from t2demo.evaluate import score_task
from t2demo.report import fewshot_examples
from t2demo.runtime import load_adapter

task = tasks.TASKS["vqa-knowledge"]
adapter = load_adapter("default", "vision", transfer_from="default")


def shots_of(draws: Iterable[tuple[int, int]]) -> dict[tuple[int, int], list[tasks.Example]]:
    """Each (shots, seed) draw's few-shot examples."""
    return {(n, seed): fewshot_examples(task, "test", 10, n, seed)[1] for n, seed in draws}


def held_out(shot_sets: Iterable[list[tasks.Example]]) -> list[tasks.Example]:
    """Validation prompts 100-399 that are no shot of any set."""
    shot_prompts = {s.prompt for shots in shot_sets for s in shots}
    return [e for e in task.examples("validation", 400)[100:] if e.prompt not in shot_prompts]


DRAWS = [(10, 0), (20, 0), (10, 1), (10, 2), (20, 1)]  # (shots, seed): landscape, start and tiebreak's; (10, 0) is Table 2's


def shared_draws() -> tuple[dict[tuple[int, int], list[tasks.Example]], list[tasks.Example]]:
    """The shots of DRAWS and the validation prompts 100-399 that are none of them (154)."""
    shots = shots_of(DRAWS)
    return shots, held_out(shots.values())


def alpha_of(**weights: float) -> torch.Tensor:
    """α over the adapter's experts, 0 for each expert not named."""
    return torch.tensor([weights.get(label, 0.0) for label in adapter.labels])


def accuracy(alpha: torch.Tensor, examples: list[tasks.Example]) -> float:
    """Greedy accuracy in % under z' = mix(experts, α)."""
    with adapter.svf.adapted(adapter.z_from_alpha(alpha)):
        right = score_task(adapter.lm, task, examples, 32, False)
    return 100 * sum(right) / len(right)

"""Few-shot adaptation: the Cross-Entropy Method searches the expert weights α on a handful of examples.

z' = svf.mix(experts, α) = Σₖ αₖ zₖ + (1 − Σα)·1 (per expert, or per expert and decoder layer), each
α in [lo, hi], not normalised, as the paper's released setting; every point of the box is a usable
model (α = 0 is the base). Each generation samples α ~ N(μ, σ²) clipped to the bounds, scores every
member, and refits μ, σ to the elite fraction. Start: μ = 1/K clipped to the bounds (the experts'
average), σ = (hi − lo)/4 (the box is within two σ of μ); σ is floored at 1 % of the box so the
search never freezes. The first generation also holds the box's vertices (each subset of the experts
at full weight, fewest first, as many as the population takes): the Gaussian around 1/K rarely samples a
corner where two experts are at 1 and the rest at 0, and its σ shrinks onto the broad middle within ten
generations, so on vqa-knowledge the search missed the vqa + reasoning mixture that the shots rank first
(pilots/cem-search/). vertices=False is the paper's start.
The best member so far joins every generation's population and is re-evaluated (the paper).

Fitness = accuracy on the examples (greedy answers, the task's checker) + 1e-3·sigmoid(confidence),
where confidence is the model's mean log p per token of its own correct replies, averaged over them
(the authors' `use_loglikelihood_for_ties`; read off the greedy steps, no second pass). The second
term lies in (0, 5e-4], below one example's worth of accuracy for up to 2,000 examples, so it only
breaks ties, as in the paper. Breaking ties by the reference responses' log-likelihood instead let
the vqa + reasoning corner go on vqa-knowledge: a mixture half-way to it ties on the shots and fits
the references' wording better, and scores 10 points less held out (pilots/cem-search/tiebreak.py).
A member that gets no example right has no correct reply to weigh: its confidence is the references'
mean log p instead (one teacher-forced pass, for those members only), so where few or no members get
anything right the search still ranks them, toward α that make the right answers likely, instead of
keeping whichever came first (on math-hard, a draw of shots that no α gets right kept the base:
pilots/cem-search/zero_right.py).
fast=True scores the reference responses' mean log-likelihood (teacher-forced) alone: no generation.

Scoring (`fewshot_batch_objective`, what fit_alpha uses): a generation's members × examples are the
rows of one batch, each row adapted by its member's z' through the factored forward (factored.py),
so one greedy generate() scores many members at once, under svf's lock for each call only.
`fewshot_objective` scores one member at a time with z' composed into the weights (the reference the
batched path is tested against).

`python -m t2demo bench cem` times a fit against the authors' way of scoring (one member, one
example, one full generation at a time; `naive_objective`).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from t2demo import tasks
from t2demo.adapt.dispatch import PipelineError
from t2demo.factored import FactoredModel, RowZ, factorized, generate_rows
from t2demo.generation import encode_prompts, generate_replies, greedy, images_of
from t2demo.models import LoadedModel
from t2demo.rollouts import Rollout, answer_token_logp, mean_loglik, reference_rollout

if TYPE_CHECKING:
    from t2demo.adapt.adapter import Adapter

Objective = Callable[[Tensor], float]
Callback = Callable[[dict], "bool | None"]


@dataclass(frozen=True)
class BatchObjective:
    """Scores a stack of members (n, *shape) at once, one fitness per member. `cem` hands it at most
    `members` at a time and checks its cancel event between calls: a cancel waits for one call."""

    score: Callable[[Tensor], list[float]]
    members: int


@dataclass
class CEMResult:
    alpha: Tensor  # best α found, shape (K,) or (K, L)
    fitness: float  # its fitness
    history: list[dict] = field(default_factory=list)  # one entry per finished generation
    evaluations: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    base_fitness: float | None = None  # fit_alpha: the base model's (α = 0) fitness, the bar to beat


def _score(objective: Objective | BatchObjective, members: Tensor,
           cancel: threading.Event | None) -> tuple[list[float], bool]:
    """The members' fitness (per member, or in near-equal chunks for a BatchObjective) and whether
    `cancel` stopped the scoring before the end (then the list is partial)."""
    if isinstance(objective, BatchObjective):
        parts, score = members.tensor_split(math.ceil(len(members) / objective.members)), objective.score
    else:
        parts, score = members.split(1), lambda part: [objective(part[0])]
    scores: list[float] = []
    for part in parts:
        if cancel is not None and cancel.is_set():
            return scores, True
        scores.extend(score(part))
    return scores, False


def cem(objective: Objective | BatchObjective, shape: Sequence[int], *, bounds: tuple[float, float] = (0.0, 1.0),
        population: int = 32, elite_frac: float = 0.2, generations: int = 50, seed: int = 0,
        vertices: bool = True, callback: Callback | None = None,
        cancel: threading.Event | None = None) -> CEMResult:
    """Maximise objective(α) over the box [lo, hi]^shape; deterministic for a seed and objective.
    A BatchObjective scores a generation's members in a few calls; a plain one, one by one.

    vertices: the first generation starts with the box's vertices (box_vertices), the rest sampled.

    After each generation callback({generation, best, mean, alpha, evaluations, seconds}) is called;
    returning False stops the search, as does setting `cancel` (checked between calls of the
    objective). The result holds the best α so far either way.
    """
    lo, hi = map(float, bounds)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise PipelineError(f"bounds must be finite with lo < hi, got {bounds}")
    if population < 2 or not 0 < elite_frac <= 1 or generations < 1:
        raise PipelineError(f"need population >= 2, 0 < elite_frac <= 1 and generations >= 1, "
                            f"got {population}, {elite_frac}, {generations}")
    shape = tuple(shape)
    n_elite = max(1, round(elite_frac * population))
    rng = torch.Generator().manual_seed(seed)
    mu = torch.full(shape, min(max(1.0 / shape[0], lo), hi))
    sigma = torch.full(shape, (hi - lo) / 4)
    best_alpha, best = mu.clone(), -math.inf
    history: list[dict] = []
    evaluations, start, cancelled = 0, time.perf_counter(), False
    for generation in range(1, generations + 1):
        noise = torch.randn((population, *shape), generator=rng)
        members = (mu + sigma * noise).clamp(lo, hi)
        if generation > 1:
            members[0] = best_alpha  # the best so far competes again and is re-scored
        elif vertices:
            corners = box_vertices(shape, lo, hi, population)
            members[:len(corners)] = corners
        scores, cancelled = _score(objective, members, cancel)
        evaluations += len(scores)
        if cancelled:
            break
        fitness = torch.tensor(scores, dtype=torch.float64)
        order = fitness.argsort(descending=True, stable=True)
        if fitness[order[0]] >= best:
            best, best_alpha = float(fitness[order[0]]), members[order[0]].clone()
        elites = members[order[:n_elite]]
        mu = elites.mean(0)
        sigma = elites.std(0, unbiased=False).clamp_min(0.01 * (hi - lo))
        entry = {"generation": generation, "best": best, "mean": float(fitness.mean()),
                 "alpha": best_alpha.tolist(), "evaluations": evaluations, "seconds": time.perf_counter() - start}
        history.append(entry)
        if callback is not None and callback(entry) is False:
            cancelled = generation < generations
            break
    return CEMResult(best_alpha, best, history, evaluations, time.perf_counter() - start, cancelled)


def box_vertices(shape: Sequence[int], lo: float, hi: float, limit: int) -> Tensor:
    """The first `limit` of the box's 2^K vertices over the first axis (each subset of the K experts at hi,
    the rest at lo; fewest experts first), constant along any later axis (layers)."""
    k = shape[0]
    subsets = itertools.islice((s for size in range(k + 1) for s in itertools.combinations(range(k), size)), limit)
    rows = [[hi if i in subset else lo for i in range(k)] for subset in subsets]
    return torch.tensor(rows, dtype=torch.float32).view(-1, k, *(1,) * (len(shape) - 1)).expand(-1, *shape).clone()


# ----------------------------------------------------------------------------- the few-shot objective

def check_examples(examples: Sequence[tasks.Example]) -> None:
    if len(examples) < 2:
        raise PipelineError(f"few-shot adaptation needs at least 2 examples, got {len(examples)}")
    empty = [i for i, ex in enumerate(examples) if not ex.response.strip() or not ex.reference.strip()]
    if empty:
        raise PipelineError(f"few-shot examples {empty} have an empty reference or response; "
                            "each example needs the correct answer")


def fitness(accuracy: float, confidence: float) -> float:
    """Accuracy first; the tie-break term is below one example's worth (see the module doc)."""
    return accuracy + 1e-3 * 0.5 * (1 + math.tanh(confidence / 2))  # sigmoid, without exp overflow


def examples_right(fitness_value: float, n: int) -> int:
    """How many of n examples an accuracy-mode fitness got right (its tie-break adds under one)."""
    return math.floor(fitness_value * n + 1e-6)


def reply_fitness(right: Tensor, reply_logp: Tensor, reference_loglik: Callable[[], float]) -> float:
    """The fitness of greedy replies: their accuracy, ties broken by the model's confidence in its own
    correct replies (the mean over them of each one's mean log p per token); with none correct, by
    reference_loglik() (the references' mean log p per token, asked for only then)."""
    confidence = float(reply_logp[right].mean()) if right.any() else reference_loglik()
    return fitness(int(right.sum()) / len(right), confidence)


def fewshot_objective(adapter: Adapter, examples: Sequence[tasks.Example], task, *, fast: bool = False,
                      batch_size: int = 16, max_new_tokens: int | None = None) -> Objective:
    """α -> fitness of the model adapted with z' = svf.mix(experts, α), composed into the weights under
    svf's lock: one greedy generation batched over the examples (fast: one teacher-forced forward of
    the references instead). One member at a time; `fewshot_batch_objective` batches the members too."""
    svf, lm, zs = adapter.svf, adapter.lm, [e.z for e in adapter.experts]
    chunks = [list(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]
    rollouts = [reference_rollout(lm, chunk) for chunk in chunks]
    budget = max_new_tokens or task.max_new_tokens

    @torch.no_grad()
    def objective(alpha: Tensor) -> float:
        with svf.adapted(svf.mix(zs, alpha)) as m:
            def references() -> float:
                return sum(mean_loglik(m, r) * len(c) for r, c in zip(rollouts, chunks)) / len(examples)
            if fast:
                return references()
            correct, reply_logp = [], []
            for chunk in chunks:
                answers, logp = generate_replies(lm, [ex.prompt for ex in chunk], images_of(chunk), budget, scored=True)
                correct += task.check_many(chunk, answers)
                reply_logp.append(logp)
            return reply_fitness(torch.tensor(correct, dtype=torch.bool), torch.cat(reply_logp), references)

    return objective


def fewshot_batch_objective(adapter: Adapter, examples: Sequence[tasks.Example], task, *, fast: bool = False,
                            batch_size: int = 16, max_new_tokens: int | None = None,
                            max_rows: int = 256) -> BatchObjective:
    """The fitness of `fewshot_objective` for many members at once: members × examples are the rows of
    one factored pass (row b: its member's z'), at most about `max_rows` rows per call (memory).
    Examples are grouped by `batch_size` as there, so every row is padded as in the per-member
    path; the model is factorized under svf's lock for each call only."""
    lm, zs = adapter.lm, [e.z for e in adapter.experts]
    chunks = [list(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]
    references = [reference_rollout(lm, c) for c in chunks]
    prompts = [] if fast else [encode_prompts(lm, [ex.prompt for ex in c], images_of(c)) for c in chunks]
    budget = max_new_tokens or task.max_new_tokens

    def references_loglik(handle: FactoredModel, mixes: list[RowZ]) -> Tensor:
        """Each member's mean log p of the reference responses (fewshot_objective's fast fitness)."""
        n, total = len(mixes), torch.zeros(len(mixes), dtype=torch.float64)
        for chunk, rollout in zip(chunks, references):
            rows = [z for z in mixes for _ in chunk]  # member-major, one dict object per member
            total += _rows_loglik(handle, _tile_rollout(rollout, n), rows).view(n, -1).sum(1)
        return total / len(examples)

    @torch.no_grad()
    def score(members: Tensor) -> list[float]:
        n = len(members)
        mixes = [adapter.svf.mix(zs, alpha) for alpha in members]
        right, reply_logp = [], []
        with factorized(adapter.svf) as handle:
            if fast:
                return references_loglik(handle, mixes).tolist()
            for chunk, batch in zip(chunks, prompts):
                rows = [z for z in mixes for _ in chunk]
                answers, logp = greedy(lm, lambda enc, **kw: generate_rows(handle, enc, rows, **kw),
                                       {k: _tile(v, n) for k, v in batch.items()}, budget, scored=True)
                right.append(torch.tensor(task.check_many(chunk * n, answers), dtype=torch.bool).view(n, -1))
                reply_logp.append(logp.view(n, -1))
            right_all, logp_all = torch.cat(right, 1), torch.cat(reply_logp, 1)
            none_right = [i for i in range(n) if not right_all[i].any()]
            fallback = (dict(zip(none_right, references_loglik(handle, [mixes[i] for i in none_right]).tolist()))
                        if none_right else {})
        return [reply_fitness(r, lp, lambda i=i: fallback[i]) for i, (r, lp) in enumerate(zip(right_all, logp_all))]

    return BatchObjective(score, max(1, max_rows // len(chunks[0])))


def _tile(t, n: int):
    """A batch tensor's rows repeated n times, whole batch after whole batch (member-major rows)."""
    return t.repeat(n, *(1,) * (t.ndim - 1)) if isinstance(t, Tensor) else t


def _tile_rollout(rollout: Rollout, n: int) -> Rollout:
    """The rollout's rows repeated n times, as _tile."""
    return Rollout(_tile(rollout.input_ids, n), _tile(rollout.attention_mask, n), _tile(rollout.answer_mask, n),
                   {k: _tile(v, n) for k, v in rollout.extra.items()}, rollout.texts * n)


def _rows_loglik(handle: FactoredModel, rollout: Rollout, zs: Sequence[RowZ]) -> Tensor:
    """Per-row mean log p of the reference responses (mean_loglik's terms; float64, CPU), row b adapted
    by zs[b]. Positions count from the first real token, as generate()."""
    ids, mask = rollout.input_ids, rollout.attention_mask
    width = rollout.answer_mask.shape[1]
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with handle.rows(zs, {"input_ids": ids, **rollout.extra}) as model:
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=width + 1,
                       **rollout.extra).logits
    answer = rollout.answer_mask.float()
    token = answer_token_logp(logits[:, :-1].float().log_softmax(-1), rollout) * answer
    return (token.sum(1) / answer.sum(1).clamp_min(1)).double().cpu()


def naive_objective(adapter: Adapter, examples: Sequence[tasks.Example], task,
                    max_new_tokens: int | None = None) -> Objective:
    """The same fitness scored the authors' way: one example, one generation at a time (bench only)."""
    svf, lm, zs = adapter.svf, adapter.lm, [e.z for e in adapter.experts]
    rollouts = [reference_rollout(lm, [ex]) for ex in examples]  # one per example, built once
    budget = max_new_tokens or task.max_new_tokens

    @torch.no_grad()
    def objective(alpha: Tensor) -> float:
        correct, reply_logp = [], []
        with svf.adapted(svf.mix(zs, alpha)) as m:
            for ex in examples:
                answers, logp = generate_replies(lm, [ex.prompt], images_of([ex]), budget, scored=True)
                correct += task.check_many([ex], answers)
                reply_logp.append(logp)
            return reply_fitness(torch.tensor(correct, dtype=torch.bool), torch.cat(reply_logp),
                                 lambda: sum(mean_loglik(m, r) for r in rollouts) / len(rollouts))

    return objective


def fit_alpha(adapter: Adapter, examples: Sequence[tasks.Example], task, *,
              per_layer: bool = False, bounds: tuple[float, float] = (0.0, 1.0), population: int = 32,
              elite_frac: float = 0.2, generations: int = 50, seed: int = 0, fast: bool = False,
              batch_size: int = 16, max_new_tokens: int | None = None, batched: bool = True,
              max_rows: int = 256, vertices: bool = True, callback: Callback | None = None,
              cancel: threading.Event | None = None) -> CEMResult:
    """CEM over α for the adapter's experts on the few-shot `examples` of `task` (anything with
    check_many and max_new_tokens, e.g. tasks.TASKS[name]), with the base model's fitness (α = 0)
    scored first and reported beside every generation ("base") and in the result. Keep the result
    with adapter.mixture(result.alpha) to reuse it for the task's later prompts.
    batched: members × examples as rows of one batch (fewshot_batch_objective, up to max_rows rows
    per call); False: one member at a time (fewshot_objective), same fitness up to float rounding."""
    check_examples(examples)
    if not adapter.experts:
        raise PipelineError("few-shot adaptation needs at least one expert")
    shape = (len(adapter.experts), adapter.svf.num_layers) if per_layer else (len(adapter.experts),)
    kwargs = dict(fast=fast, batch_size=batch_size, max_new_tokens=max_new_tokens)
    objective = (fewshot_batch_objective(adapter, examples, task, max_rows=max_rows, **kwargs) if batched
                 else fewshot_objective(adapter, examples, task, **kwargs))
    base = _score(objective, torch.zeros(1, *shape), None)[0][0]  # first: every report can show the bar to beat

    def report(entry: dict) -> bool | None:  # the entry cem keeps in its history: annotated once, seen by both
        entry["base"] = base
        return None if callback is None else callback(entry)

    result = cem(objective, shape, bounds=bounds, population=population, elite_frac=elite_frac,
                 generations=generations, seed=seed, vertices=vertices, callback=report, cancel=cancel)
    result.base_fitness = base
    return result

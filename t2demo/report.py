"""The paper's two result tables, measured on this project's models and experts.

`python -m t2demo report table1 --json t1.json` (Table 1: base / LoRA / SVF on the training tasks)
`python -m t2demo report table2 --json t2.json` (Table 2: base / prompt / cls / few-shot on unseen tasks)
`python -m t2demo report table1 --tasks gsm8k,textvqa --data gsm8k=PATH --data textvqa=PATH` (the paper's
benchmarks, from the hub or from local copies, chosen as `eval` chooses them: tasks/benchmarks/selection.py)

The paper's benchmarks (tasks.registry.BENCHMARKS) take the same rows. In Table 1 a benchmark is scored
with its category's expert, i.e. its synthetic twin's (gsm8k and competition-math: math; mbpp and
humaneval: code; arc-*: reasoning; textvqa and okvqa: vqa). A benchmark is scored on its test split, or
on its validation split where the test answers are withheld or absent (TextVQA, OK-VQA: as the paper);
few-shot α is fitted on its validation split, else its train split, else (HumanEval, one split only) on
examples held out of the scored ones. Each task's entry records "split" (and "fewshot_split"), and a
benchmark's also its "metric" and data "source".

Every accuracy is a percentage on the test split with its 95 % Wilson interval (evaluate.summarise).
"Δ vs base" is paired: both methods answer the same examples, so it is the mean of the per-example
differences (correct = 1, wrong = 0; each difference is −1, 0 or +1; VQA's soft scores are fractions) with a normal-approximation
95 % interval, mean ± 1.96·sd/√n (sd with n − 1), clipped to [−100, 100]. It is narrower than
comparing two independent intervals because it removes the between-example variance both share.
Like any normal approximation it is rough with few discordant examples, and it collapses to a
point when every difference is the same (e.g. both methods agree on every example).

Where the files are looked up, per base model (experts.expert_dir: experts/<model folder>/):
  <task>.safetensors           the shipped SVF expert (MLP; its notes say which objective): `train-expert --task
                               <task> --out <that path>`
  <task>-rl.safetensors        the REINFORCE run, when the shipped expert is next-token (experts/README.md)
  <task>-ntp.safetensors       the next-token run, when the shipped expert is REINFORCE
  <task>-lora/                 the LoRA baseline: `train-expert --method lora --out <that path>`
  cls.safetensors              the classification expert (text model; transferred to the vision model)
Beside each SVF expert, Table 1 reports its control: the same z shuffled within each matrix
(experts.shuffled_z), a change of the same size with no learnt direction. One shuffle is one random
draw, and draws differ by several points (README, Table 1), so the row scores CONTROL_SHUFFLES of them
(seeds 0, 1, ...): each example's outcome is its mean over the shuffles, and the row keeps each
shuffle's accuracy beside it.
The vision model uses its own vqa expert plus the text model's experts, transferred
(experts.load_expert(..., allow_transfer=True)). Dash-named files are never mixed by
experts.load_expert_dir, so ablations and LoRA folders can sit beside the experts. A missing or
unusable file gives a row {"missing": "... (train with: <exact command>)"} instead of an error.

Table 2's second pass is batched: test prompts are grouped by the z' their first pass chose (hard
dispatch gives at most one group per expert, plus the base) and each group is generated in
batches under svf.adapted(z'); greedy decoding makes that the answers of per-prompt adaptation.
Few-shot α is fitted once per task by CEM on examples of the validation split, never the scored ones.

The time table compares like with like: the first pass runs one prompt at a time, so the second
pass is also timed one prompt at a time (its z' applied, then the whole greedy answer) on the
first LATENCY_N test prompts; that is what a user of the app waits for. The batched second pass's
seconds per prompt are reported beside it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from tqdm import tqdm

from t2demo import tasks
from t2demo.tasks import handwritten
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import Dispatch
from t2demo.adapt.registry import STRATEGIES
from t2demo.adapt.strategy import Strategy
from t2demo.evaluate import mean_interval, score_task, summarise
from t2demo.experts import (EXPERTS_DIR, Expert, ExpertError, expert_dir, load_expert, load_model_experts, lora_notes,
                            shuffled_z)
from t2demo.generation import generate, images_of
from t2demo.models import LoadedModel
from t2demo.svf import SVF
from t2demo.tasks.benchmarks import BenchmarkDataError
from t2demo.tasks.registry import BENCHMARKS

TEXT_EXPERTS = ("math", "code", "reasoning")
CONTROL_SHUFFLES = 5  # shuffles of z Table 1's control row averages over
# Table 1 ablations: row -> (file suffix after the task name, train-expert flags)
ABLATIONS = {name: (("svf-rl", "-rl", ("--objective", "rl")), ("svf-ntp", "-ntp", ("--objective", "ntp")))
             for name in tasks.TRAINING_TASKS}
NOTE_KEYS = ("objective", "targets", "steps_done", "best_val_accuracy")  # training notes shown per row
PAIRED = "paired difference, normal approximation on per-example differences (mean ± 1.96·sd/√n)"
NAMING = ("experts/<model folder>/: <task>.safetensors (SVF, mlp; its notes name the objective), <task>-lora/ "
          "(LoRA), <task>-rl / <task>-ntp.safetensors (the other objective), cls.safetensors (classifier)")
OnTask = Callable[[dict], None]
LATENCY_N = 20  # test prompts answered one at a time for the time table
TABLE2_STRATEGIES = [s for s in STRATEGIES.values() if s.in_table2]


@dataclass
class Side:
    """One base model of a report: its name on the command line, a loader (called once, when a
    task first needs it), and the folder of its experts."""

    name: str
    vision: bool
    experts: Path
    load: Callable[[], LoadedModel]
    _engines: dict = field(default_factory=dict, repr=False)

    @cached_property
    def loaded(self) -> LoadedModel:
        return self.load()

    def engine(self, targets: str | list[str] = "mlp") -> SVF:
        """The model's SVF engine for a target preset, built once (the SVD is cached on disk anyway)."""
        key = json.dumps(targets)
        if key not in self._engines:
            self._engines[key] = SVF(self.loaded.model, targets)
        return self._engines[key]

    def command(self, task: str, out: Path, *flags: str) -> str:
        """The exact train-expert command that writes `out` (always named: the folder may not be the default).
        `task` is the scored task itself, so a benchmark's expert trains on that benchmark (gsm8k -> math)."""
        model = [] if self.name == "default" else ["--model", self.name]
        return "python -m t2demo " + shlex.join(["train-expert", "--task", task, *model, *flags, "--out", str(out)])


def side(name: str, vision: bool, device: str | None = None, dtype: str | None = None,
         root: str | Path = EXPERTS_DIR) -> Side:
    """A Side for a model given as on the command line ('default', a folder or a hub id)."""
    from t2demo import models

    kind = "vision" if vision else "text"
    folder = expert_dir(models.resolve_model(name, kind), root)
    return Side(name, vision, folder, lambda: models.load_model(name, kind, device, dtype))


def data_flags(task: tasks.Task) -> list[str]:
    """`--data NAME=PATH` for a benchmark read from local files, so the training command reads them too."""
    source = getattr(task, "source", None)
    return ["--data", f"{task.name}={source}"] if is_benchmark(task) and Path(source).exists() else []


def train_note(command: str, why: str = "missing") -> str:
    return f"{why} (train with: {command})"


def paired_difference(a: Sequence[bool | float], b: Sequence[bool | float], z: float = 1.96) -> dict:
    """Accuracy of a minus accuracy of b on the same examples, in points, with a 95 % interval
    from the normal approximation on the per-example differences (see the module docstring).
    Scores may be fractions (VQA's soft accuracy): each difference is then in [−1, 1]."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need the same examples, got {len(a)} and {len(b)}")
    n = len(a)
    d = [float(x) - float(y) for x, y in zip(a, b)]  # VQA's soft scores are fractions
    mean = sum(d) / n if n else 0.0
    if n < 2:
        return {"difference": round(100 * mean, 2), "ci95": [-100.0, 100.0], "n": n}
    half = z * (sum((x - mean) ** 2 for x in d) / (n - 1) / n) ** 0.5
    return {"difference": round(100 * mean, 2), "ci95": [round(100 * max(-1.0, mean - half), 2),
                                                         round(100 * min(1.0, mean + half), 2)], "n": n}


def _row(outcomes: list[bool], base: list[bool], **extra) -> dict:
    return summarise(outcomes) | {"vs_base": paired_difference(outcomes, base)} | extra


def _trained(notes: dict) -> dict:
    return {k: notes.get(k) for k in NOTE_KEYS}


# ----------------------------------------------------------------------------- tasks and benchmarks

def resolve(task: str | tasks.Task) -> tasks.Task:
    """A task object from a name: a synthetic task, or a benchmark read from the hub. Task objects pass
    through, so a benchmark reading a local copy (selection.choose(..., --data)) is given as itself."""
    if not isinstance(task, str):
        return task
    return BENCHMARKS[task] if task in BENCHMARKS else tasks.TASKS[task]


def is_benchmark(task: tasks.Task) -> bool:
    return task.name in BENCHMARKS


def expert_label(task: tasks.Task) -> str:
    """The expert a task is scored with in Table 1: its own (math, vqa...), and for a benchmark, its
    category's, i.e. its synthetic twin's (gsm8k: math, mbpp: code, arc-easy: reasoning, textvqa: vqa)."""
    return task.category if is_benchmark(task) else task.name


def scored_split(task: tasks.Task, split: str = "test") -> str:
    """The split a report scores: `split`, except for a benchmark without usable answers there, which is
    scored on its validation split, as the paper's VQA numbers are (TextVQA withholds its test answers,
    OK-VQA has no test split). A benchmark with neither is refused."""
    if not is_benchmark(task):
        return split
    usable = [s for s in task.splits if s not in task.hidden]
    for candidate in (split, "validation"):
        if candidate in usable:
            return candidate
    raise BenchmarkDataError(f"{task.name} has no {split} or validation split with answers (its splits: "
                             f"{', '.join(usable)})")


def fewshot_split(task: tasks.Task, scored: str) -> str | None:
    """Where few-shot α is fitted: the validation split, or for a benchmark without one its train split;
    None when the data set has no split but the scored one (HumanEval): the shots are then held out of it."""
    if not is_benchmark(task):
        return "validation"
    usable = [s for s in task.splits if s not in task.hidden and s != scored]
    return next((s for s in ("validation", "train") if s in usable), None)


def _task_entry(task: tasks.Task, split: str, n: int) -> dict:
    """A task's entry in a report: n and the split scored, and for a benchmark its metric and data source."""
    entry = {"n": n, "split": split}
    if is_benchmark(task):
        entry |= {"metric": task.metric, "source": task.source}
    return entry


# ----------------------------------------------------------------------------- Table 1

def _svf_rows(owner: Side, task: tasks.Task, path: Path, command: str, examples: list[tasks.Example],
              base: list[bool], batch_size: int, progress: bool, shuffles: int = 0) -> dict:
    """The expert's row, and with `shuffles` > 0 also its shuffled-z control's ("-shuffled"): each
    example's outcome averaged over that many shuffles (seeds 0, 1, ...), each shuffle's accuracy kept."""
    if not path.exists():
        return {"": {"missing": train_note(command)}}
    try:
        svf = owner.engine(load_expert(path).targets)
        expert = load_expert(path, svf)
    except ExpertError as e:
        return {"": {"missing": train_note(command, f"unusable: {e}")}}

    def scored(z) -> list[bool]:
        with svf.adapted(z):
            return score_task(owner.loaded, task, examples, batch_size, progress)

    about = dict(trainable=sum(v.numel() for v in expert.z.values()), source=str(path), trained=_trained(expert.notes))
    rows = {"": _row(scored(expert.z), base, **about)}
    if shuffles > 0:
        draws = [scored(shuffled_z(expert.z, seed)) for seed in range(shuffles)]
        mean = [sum(outcomes) / shuffles for outcomes in zip(*draws)]
        rows["-shuffled"] = _row(mean, base, shuffles=shuffles,
                                 per_shuffle=[summarise(d)["accuracy"] for d in draws], **about)
    return rows


def _lora_row(owner: Side, task: tasks.Task, label: str, examples: list[tasks.Example], base: list[bool],
              batch_size: int, progress: bool) -> dict:
    """The LoRA adapter trained on `label` (<label>-lora/) injected into the model for this row only:
    unload() puts the original modules (and so the SVF engines' parameters) back."""
    path = owner.experts / f"{label}-lora"
    if not (path / "adapter_config.json").exists():
        return {"missing": train_note(owner.command(task.name, path, *data_flags(task), "--method", "lora"))}
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(owner.loaded.model, path).eval()
    try:
        outcomes = score_task(replace(owner.loaded, model=peft_model), task, examples, batch_size, progress)
        trainable = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    finally:
        peft_model.unload()
    return _row(outcomes, base, trainable=trainable, source=str(path), trained=_trained(lora_notes(path)))


def table1(text: Side | None, vision: Side | None, limit: int = 500, batch_size: int = 32,
           task_names: Sequence[str | tasks.Task] = tasks.TRAINING_TASKS, progress: bool = True,
           on_task: OnTask | None = None, shuffles: int = CONTROL_SHUFFLES) -> dict:
    """Base, LoRA and SVF accuracy per training task, the SVF expert's shuffled-z control (over
    `shuffles` shuffles; 0: no control row) and the run
    with the other objective (-rl or -ntp). A benchmark (a name, or a task reading a local copy) is
    scored with its category's expert and LoRA (gsm8k: math.safetensors, math-lora/), on its test split
    (scored_split: validation where the test answers are withheld).
    Every task's examples are read before any model loads, so a data error stops the run at once;
    on_task(report) runs after each task, so a long run keeps what it has."""
    report = {"table": "table1", "split": "test", "limit": limit, "paired": PAIRED, "naming": NAMING,
              "models": {"text": text and text.name, "vision": vision and vision.name}, "control_shuffles": shuffles,
              "tasks": {}}
    chosen = [resolve(t) for t in task_names]
    splits = {task.name: scored_split(task) for task in chosen}
    examples_of = {task.name: task.examples(splits[task.name], limit) for task in chosen}
    for task in chosen:
        name, label = task.name, expert_label(task)
        owner = vision if task.vision else text
        examples = examples_of[name]
        base = score_task(owner.loaded, task, examples, batch_size, progress)
        rows = {"base": summarise(base), "lora": _lora_row(owner, task, label, examples, base, batch_size, progress)}
        for row, suffix, flags in (("svf", "", ()), *ABLATIONS.get(label, ())):
            if flags and flags[-1] == rows["svf"].get("trained", {}).get("objective"):
                continue  # the shipped expert is this ablation's objective: its row is "svf"
            path = owner.experts / f"{label}{suffix}.safetensors"
            found = _svf_rows(owner, task, path, owner.command(task.name, path, *data_flags(task), *flags), examples, base, batch_size,
                              progress, shuffles=shuffles if row == "svf" else 0)
            rows |= {row + extra: r for extra, r in found.items()}
        report["tasks"][name] = _task_entry(task, splits[name], len(examples)) | {"rows": rows}
        if on_task:
            on_task(report)
    return report


# ----------------------------------------------------------------------------- Table 2

def score_grouped(adapter: Adapter, task: tasks.Task, examples: Sequence[tasks.Example],
                  passes: Sequence[tuple[Dispatch, dict | None]], batch_size: int = 32,
                  progress: bool = False) -> list[bool]:
    """The second pass, batched: examples whose first pass gave the same α (hence the same z')
    are scored together under svf.adapted(z'); outcomes come back in the examples' order."""
    groups: dict[str, tuple[dict | None, list[int]]] = {}
    for i, (d, z) in enumerate(passes):
        groups.setdefault(json.dumps([d.alpha, d.labels]), (z, []))[1].append(i)
    outcomes = [False] * len(examples)
    for z, index in groups.values():
        with adapter.svf.adapted(z):
            scored = score_task(adapter.lm, task, [examples[i] for i in index], batch_size, progress)
        for i, ok in zip(index, scored):
            outcomes[i] = ok
    return outcomes


def second_pass_alone(adapter: Adapter, task: tasks.Task, examples: Sequence[tasks.Example],
                      zs: Sequence[dict | None]) -> float:
    """Mean seconds to answer one prompt on its own: apply its z' (None: the base weights), generate
    the whole greedy answer (a batch of one), restore. The first LATENCY_N examples."""
    seconds = []
    for ex, z in zip(examples[:LATENCY_N], zs):
        start = time.perf_counter()
        with adapter.svf.adapted(z):
            generate(adapter.lm, [ex.prompt], images_of([ex]), task.max_new_tokens)
        seconds.append(time.perf_counter() - start)
    return sum(seconds) / len(seconds)


def build_adapter(target: Side, text: Side) -> tuple[Adapter, list[str], str | None]:
    """(adapter, notes on missing task experts, note on a missing cls expert). The experts come from
    experts.load_model_experts, as in the app: target's own, plus the text model's transferred onto a
    vision model; a vision model without its own cls expert gets the text model's, transferred. The
    adapter holds them only if all are there: rows built from a partial set would not be Table 2."""
    svf = target.engine()
    try:
        experts, cls = load_model_experts(target.experts, svf, text.experts if target is not text else None)
    except ExpertError as e:
        experts, cls, unusable = [], None, f"unusable: {e}"
    else:
        unusable = None
    cls_path, cls_unusable = text.experts / "cls.safetensors", None
    if cls is None and unusable is None and target is not text and cls_path.exists():
        try:
            with warnings.catch_warnings():  # intended, as in load_model_experts
                warnings.simplefilter("ignore", UserWarning)
                cls = load_expert(cls_path, svf, allow_transfer=True)
        except ExpertError as e:
            cls_unusable = f"unusable: {e}"
    owners = ([(target, "vqa")] if target.vision else []) + [(text, label) for label in TEXT_EXPERTS]
    have = {e.label for e in experts}

    def note(owner: Side, label: str, why: str | None = None) -> str:
        command = owner.command(label, owner.experts / f"{label}.safetensors")
        return f"{label}: {train_note(command, why or unusable or 'missing')}"

    notes = [note(owner, label) for owner, label in owners if label not in have]
    cls_note = None if cls is not None else note(text, "cls", cls_unusable)
    return Adapter(target.loaded, [] if notes else experts, cls, svf), notes, cls_note


def fewshot_draws(adapter: Adapter, task: tasks.Task, examples: list[tasks.Example], base: list[bool],
                  strategy: Strategy, first: dict, shots_split: str, fewshot_n: int, draws: int, batch_size: int,
                  progress: bool, cem_kwargs: dict, alone: AloneScores) -> dict:
    """The few-shot row over `draws` draws of its shots: the row itself is draw 0 (`first`, seed s), and
    draw i fits again on the shots of seed s + i with CEM seeded s + i and scores the same examples. The
    paper fits once; this says how much one fit owes to which examples were drawn, with the mean over
    draws and its t interval (the draws are the sample)."""
    per_draw = [first]
    for i in range(1, draws):
        seed = cem_kwargs["seed"] + i
        shots = _shots(task, shots_split, fewshot_n, seed)
        per_draw.append(_strategy_row(adapter, task, examples, base, strategy, batch_size, progress, shots,
                                      cem_kwargs | {"seed": seed}, alone))
    keep = ("accuracy", "ci95", "alpha", "fitness", "vs_best_expert")
    return {"per_draw": [{"seed": cem_kwargs["seed"] + i} | {k: row[k] for k in keep}
                         for i, row in enumerate(per_draw)],
            "accuracy": mean_interval([row["accuracy"] for row in per_draw]),
            "vs_best_expert": mean_interval([row["vs_best_expert"]["difference"] for row in per_draw])}


def _strategy_row(adapter: Adapter, task: tasks.Task, examples: list[tasks.Example], base: list[bool],
                  strategy: Strategy, batch_size: int, progress: bool, shots: list[tasks.Example],
                  cem_kwargs: dict, alone: AloneScores) -> dict:
    extra: dict = {"seconds": {}}
    mixture = None
    if strategy.fits:  # few-shot: α fitted by CEM on `shots`, never on the scored examples
        fit = adapter.fit(shots, task, batch_size=batch_size, **cem_kwargs)
        mixture = adapter.mixture(fit.alpha)
        extra |= {"alpha": fit.alpha.tolist(), "fitness": fit.fitness, "base_fitness": fit.base_fitness}
        extra["seconds"]["cem"] = fit.seconds
    passes = [adapter.first_pass(ex.prompt, ex.image, strategy.name, mixture=mixture)
              for ex in tqdm(examples, desc=f"{task.name} {strategy.name} first pass", disable=not progress)]
    if strategy.classifies:
        extra["chosen"] = dict(Counter(d.category for d, _ in passes))
        extra["seconds"]["first_pass_per_prompt"] = sum(d.seconds for d, _ in passes) / len(passes)
    start = time.perf_counter()
    outcomes = score_grouped(adapter, task, examples, passes, batch_size, progress)
    extra["seconds"]["second_pass_per_prompt"] = (time.perf_counter() - start) / len(examples)
    extra["seconds"]["second_pass_alone"] = second_pass_alone(adapter, task, examples, [z for _, z in passes])
    if strategy.fits:  # the two-skill target: does the mixture beat simply choosing the best expert?
        experts = {e.label: alone(adapter, e, task, examples) for e in adapter.experts}
        label = max(experts, key=lambda k: sum(experts[k]))
        extra["vs_best_expert"] = {"expert": label, "accuracy": summarise(experts[label])["accuracy"],
                                   **paired_difference(outcomes, experts[label])}
    return _row(outcomes, base, **extra)


class AloneScores:
    """Per-example outcomes of the base model (expert None) or of one expert applied alone (α = 1, hard) on
    a task's examples, each scored once per report: Table 2's base row, its few-shot comparison and its
    expert × task matrix ask for the same ones when their limits agree."""

    def __init__(self, batch_size: int, progress: bool):
        self.batch_size, self.progress = batch_size, progress
        # keyed by the adapter itself, not id(adapter): an id can be reused once its object is gone
        self._scored: dict[tuple[Adapter, str | None, str], tuple[list[tasks.Example], list[bool]]] = {}

    def __call__(self, adapter: Adapter, expert: Expert | None, task: tasks.Task,
                 examples: list[tasks.Example]) -> list[bool]:
        key = (adapter, None if expert is None else expert.label, task.name)
        if key in self._scored and self._scored[key][0] == examples:
            return self._scored[key][1]
        with adapter.svf.adapted(expert.z) if expert is not None else contextlib.nullcontext():
            outcomes = score_task(adapter.lm, task, examples, self.batch_size, self.progress)
        self._scored[key] = (examples, outcomes)
        return outcomes


def dispatch_confusion(adapter: Adapter, examples: Sequence[tasks.Example], strategy: str,
                       progress: bool = False) -> dict:
    """Dispatch accuracy (with its interval) and confusion[true][predicted] counts on
    tasks.classification_examples, whose prompts are unwrapped from the classification
    instruction first (the first pass wraps them itself). Scored on the first pass's reading over every
    category: the sets' vqa prompts are questions about an image, given without one."""
    head, tail = tasks.CLASSIFICATION_INSTRUCTION.split("{prompt}")
    confusion = {c: dict.fromkeys(tasks.CATEGORIES, 0) for c in tasks.CATEGORIES}
    hits = []
    for ex in tqdm(examples, desc=f"dispatch {strategy}", disable=not progress):
        predicted = adapter.first_pass(ex.prompt.removeprefix(head).removesuffix(tail), strategy=strategy)[0].reading
        confusion[ex.reference][predicted] += 1
        hits.append(predicted == ex.reference)
    return summarise(hits) | {"confusion": confusion}


def expert_matrix(adapter: Adapter, task_names: Sequence[str], limit: int, batch_size: int = 32,
                  progress: bool = False, alone: AloneScores | None = None) -> dict:
    """Each expert applied alone (α = 1, hard) to each task: task -> {"base": row, expert: row with its
    paired Δ}. A wrong expert losing points is what makes dispatch matter. `alone`: outcomes already
    scored (Table 2's), reused where the examples are the same."""
    alone = alone or AloneScores(batch_size, progress)
    matrix = {}
    for name in task_names:
        task = tasks.TASKS[name]
        examples = task.examples("test", limit)
        base = alone(adapter, None, task, examples)
        matrix[name] = {"base": summarise(base)}
        for expert in adapter.experts:
            matrix[name][expert.label] = _row(alone(adapter, expert, task, examples), base)
    return matrix


def fewshot_examples(task: tasks.Task, split: str, limit: int, fewshot_n: int,
                     seed: int) -> tuple[list[tasks.Example], list[tasks.Example] | str, str]:
    """(scored examples, few-shot examples, where the shots come from). The shots come from another split
    (fewshot_split); a data set with only the scored split (HumanEval) gives its first fewshot_n examples
    in the seed's order as the shots and scores the next `limit`, so no shot is ever scored."""
    other = fewshot_split(task, split)
    if other is not None:
        return task.examples(split, limit), _shots(task, other, fewshot_n, seed), other
    ordered = task.examples(split, fewshot_n + limit, seed)
    if len(ordered) <= fewshot_n:
        raise BenchmarkDataError(f"{task.name}: its {split} split, its only one, has {len(ordered)} examples: none "
                                 f"left to score after the {fewshot_n} few-shot examples (--fewshot-n)")
    return ordered[fewshot_n:], ordered[:fewshot_n], f"{split} (held out of the scored examples)"


def _shots(task: tasks.Task, split: str, n: int, seed: int) -> list[tasks.Example] | str:
    """The few-shot examples, or why there are none (a local copy without that split): the few-shot row
    then says so, and the other rows are still measured."""
    try:
        return task.examples(split, n, seed)
    except BenchmarkDataError as e:
        return f"no few-shot examples: {e}"


def table2(text: Side, vision: Side | None, limit: int = 500, batch_size: int = 32,
           task_names: Sequence[str | tasks.Task] = tasks.UNSEEN_TASKS, cls_limit: int = 500, fewshot_n: int = 10,
           population: int = 32, generations: int = 50, seed: int = 0, fast: bool = False, progress: bool = True,
           on_task: OnTask | None = None, matrix_limit: int = 0, vertices: bool = True, draws: int = 1) -> dict:
    """Base, prompt dispatch, cls-expert dispatch and few-shot accuracy per unseen task, with
    timings; the text model's dispatch confusion matrices on the classification test split and on
    the hand-written prompts; with matrix_limit, the expert × task matrix over the text tasks (when a
    text task is chosen) and over the vision tasks with the vision model's experts (when a vision one is).
    A benchmark (a name, or a task reading a local copy) is scored on its test split (scored_split) and
    fits few-shot α on another split (fewshot_examples); each task's entry names both. The few-shot row
    also holds vs_best_expert: its paired Δ against the best expert alone on the same prompts (the
    two-skill target), and with draws > 1 the same over that many draws of its shots (fewshot_draws).
    Every task's examples are read before any model loads."""
    cem = {"population": population, "generations": generations, "seed": seed, "fast": fast, "vertices": vertices}
    report = {"table": "table2", "split": "test", "limit": limit, "paired": PAIRED, "naming": NAMING,
              "models": {"text": text.name, "vision": vision and vision.name},
              "fewshot": {"n": fewshot_n, "split": "validation", "draws": draws} | cem, "tasks": {}, "dispatch": {}}
    chosen = [resolve(t) for t in task_names]
    splits = {task.name: scored_split(task) for task in chosen}
    data = {task.name: fewshot_examples(task, splits[task.name], limit, fewshot_n, seed) for task in chosen}
    adapters: dict[bool, tuple[Adapter, list[str], str | None]] = {}
    alone = AloneScores(batch_size, progress)
    for task in chosen:
        name = task.name
        target = vision if task.vision else text
        if task.vision not in adapters:
            adapters[task.vision] = build_adapter(target, text)
        adapter, notes, cls_note = adapters[task.vision]
        examples, shots, shots_from = data[name]
        start = time.perf_counter()
        base = alone(adapter, None, task, examples)
        seconds = {"second_pass_per_prompt": (time.perf_counter() - start) / len(examples),
                   "second_pass_alone": second_pass_alone(adapter, task, examples, [None] * len(examples))}
        rows = {"base": summarise(base) | {"seconds": seconds}}
        for strategy in TABLE2_STRATEGIES:
            if notes or (strategy.needs_classifier and cls_note):
                rows[strategy.name] = {"missing": "; ".join(notes or [cls_note])}
            elif strategy.fits and isinstance(shots, str):
                rows[strategy.name] = {"missing": shots}
            else:
                rows[strategy.name] = _strategy_row(adapter, task, examples, base, strategy, batch_size, progress,
                                                     shots, cem, alone)
                # a one-split data set holds its shots out of the scored examples, so it has one draw only
                if strategy.fits and draws > 1 and (other := fewshot_split(task, splits[name])) is not None:
                    rows[strategy.name]["draws"] = fewshot_draws(
                        adapter, task, examples, base, strategy, rows[strategy.name], other, fewshot_n, draws,
                        batch_size, progress, cem, alone)
        report["tasks"][name] = _task_entry(task, splits[name], len(examples)) | {
            "fewshot_split": shots_from, "experts": adapter.labels, "rows": rows}
        if on_task:
            on_task(report)
    adapter, notes, cls_note = adapters.get(False) or build_adapter(text, text)
    sets = {"dispatch": tasks.classification_examples("test", cls_limit)} | {
        key: handwritten.dispatch_prompts(key) for key in handwritten.SETS}
    for key, examples in sets.items():
        report[key] = {"n": len(examples)} | {
            s.name: {"missing": cls_note} if s.needs_classifier and cls_note else dispatch_confusion(adapter, examples, s.name, progress)
            for s in STRATEGIES.values() if s.classifies}
        if on_task:
            on_task(report)
    for vision_side, key in ((False, "matrix"), (True, "matrix_vision")):  # over the chosen tasks' model
        if matrix_limit and vision_side in adapters and not adapters[vision_side][1]:
            names = [n for n in tasks.REGISTRY.parse("all") if tasks.TASKS[n].vision == vision_side]
            report[key] = {"n": matrix_limit, "tasks": expert_matrix(adapters[vision_side][0], names, matrix_limit,
                                                                     batch_size, progress, alone)}
            if on_task:
                on_task(report)
    return report


# ----------------------------------------------------------------------------- printing

def _interval(ci: Sequence[float]) -> str:
    return "[{:.1f}, {:.1f}]".format(*ci)


def _result_lines(report: dict, trainable: bool) -> list[str]:
    head = f"{'task':<16}{'method':<14}{'accuracy':>9}{'95% CI':>15}{'n':>6}{'Δ vs base':>11}{'95% CI':>16}"
    lines = [head + (f"{'trainable':>11}" if trainable else "")]
    for name, entry in report["tasks"].items():
        for method, r in entry["rows"].items():
            label = f"{name:<16}{method:<14}"
            if "missing" in r:
                lines.append(label + r["missing"])
                continue
            line = label + f"{r['accuracy']:>8.1f}%{_interval(r['ci95']):>15}{r['n']:>6}"
            if "vs_base" in r:
                line += f"{r['vs_base']['difference']:>+11.1f}{_interval(r['vs_base']['ci95']):>16}"
            if trainable and "trainable" in r:
                line += f"{r['trainable']:>11,}"
            lines.append(line)
    return lines


def _title(report: dict, what: str) -> str:
    models = report["models"]
    return f"{what}, {report['split']} split (limit {report['limit']}; text={models['text']}, vision={models['vision']})"


def _footer(report: dict) -> list[str]:
    lines = [f"Δ vs base: {report['paired']}.", f"Files: {report['naming']}."]
    for name, entry in report["tasks"].items():
        if "source" in entry or entry.get("split", report["split"]) != report["split"]:
            shots = f"; few-shot α fitted on {entry['fewshot_split']}" if "fewshot_split" in entry else ""
            lines.append(f"{name}: {entry.get('metric', 'accuracy')} on the {entry['split']} split of "
                         f"{entry.get('source', 'the synthetic task')}{shots}.")
    return lines


def format_table1(report: dict) -> str:
    lines = [_title(report, "Table 1: base / LoRA / SVF on the training tasks"), *_result_lines(report, True)]
    for name, entry in report["tasks"].items():
        control = entry["rows"].get("svf-shuffled", {})
        if "per_shuffle" in control:
            lines.append(f"{name} svf-shuffled: each example's outcome averaged over {control['shuffles']} shuffles "
                         "of z (seeds 0, 1, ...); per shuffle " + ", ".join(f"{a:.1f}%" for a in control["per_shuffle"]))
    return "\n".join(lines + _footer(report))


def format_table2(report: dict) -> str:
    lines = [_title(report, "Table 2: base / " + " / ".join(s.title for s in TABLE2_STRATEGIES) + " on the unseen tasks"), *_result_lines(report, False)]
    best = {name: r["vs_best_expert"] for name, entry in report["tasks"].items() for r in entry["rows"].values()
            if "vs_best_expert" in r}
    if best:
        lines += ["", "Few-shot against the best single expert on the same prompts (each expert alone, α = 1): paired Δ"]
        for name, b in best.items():
            lines.append(f"  {name:<16}{b['expert']:<10}{b['accuracy']:>8.1f}%{b['difference']:>+11.1f}"
                         f"{_interval(b['ci95']):>16}")
            lines += _draw_lines(report["tasks"][name])
    fs = report["fewshot"]
    lines += ["", f"Seconds per prompt, one prompt at a time (second pass: the first {LATENCY_N} test prompts), "
              "first pass as % of second, and the batched second pass; CEM "
              f"{'once' if fs.get('draws', 1) == 1 else 'on each draw'} per task "
              f"({fs['n']} {fs['split']} examples, population {fs['population']}, {fs['generations']} generations"
              f"{', starting at the box vertices' if fs.get('vertices') else ''}"
              f"{', fitness: log-likelihood' if fs.get('fast') else ''}):",
              f"  {'task':<16}{'method':<14}{'first':>8}{'second':>8}{'ratio':>8}{'batched':>9}"]
    for name, entry in report["tasks"].items():
        for method, r in entry["rows"].items():
            s = r.get("seconds")
            if not s:
                continue
            first = s.get("first_pass_per_prompt")
            line = f"  {name:<16}{method:<10}" + (f"{first:>8.3f}" if first is not None else f"{'-':>8}")
            line += f"{s['second_pass_alone']:>8.3f}"
            line += f"{100 * first / s['second_pass_alone']:>7.1f}%" if first is not None else f"{'-':>8}"
            line += f"{s['second_pass_per_prompt']:>9.3f}" + (f"   CEM {s['cem']:.1f} s" if "cem" in s else "")
            lines.append(line)
    sets = {"dispatch": "the classification test split"} | {key: label for key, (_, label) in handwritten.SETS.items()}
    for key, where in sets.items():
        lines += _dispatch_lines(report.get(key, {}), where)
    lines += _matrix_lines(report.get("matrix"), "text")
    lines += _matrix_lines(report.get("matrix_vision"), "vision")
    return "\n".join(lines + [""] + _footer(report))


def _draw_lines(entry: dict) -> list[str]:
    """The few-shot row's draws (fewshot_draws), one line each, and their mean with its t interval."""
    draws = next((r["draws"] for r in entry["rows"].values() if "draws" in r), None)
    if not draws:
        return []
    lines = [f"    draw seed {d['seed']:<3}{d['accuracy']:>8.1f}%{_interval(d['ci95']):>15}"
             f"{d['vs_best_expert']['difference']:>+9.1f}{_interval(d['vs_best_expert']['ci95']):>16}   α "
             + " ".join(f"{label} {a:.2f}" for label, a in zip(entry["experts"], d["alpha"]))
             for d in draws["per_draw"]]
    acc, best = draws["accuracy"], draws["vs_best_expert"]
    lines.append(f"    mean over {acc['n']} draws: {acc['mean']:.1f}% {_interval(acc['ci95'])}, against the best "
                 f"single expert {best['mean']:+.1f} {_interval(best['ci95'])} (t intervals over the draws)")
    return lines


def _dispatch_lines(dispatch: dict, where: str) -> list[str]:
    lines = []
    for strategy in (s.name for s in STRATEGIES.values() if s.classifies):
        r = dispatch.get(strategy)
        if not r:
            continue
        lines.append("")
        if "missing" in r:
            lines.append(f"Dispatch {strategy}: {r['missing']}")
            continue
        lines.append(f"Dispatch {strategy} on {where}: {r['accuracy']:.1f}% "
                     f"{_interval(r['ci95'])}, n={r['n']} (rows: true category, columns: read)")
        lines.append(f"  {'':<10}" + "".join(f"{c:>10}" for c in tasks.CATEGORIES))
        lines += [f"  {true:<10}" + "".join(f"{row[c]:>10}" for c in tasks.CATEGORIES) for true, row in r["confusion"].items()]
    return lines


def _matrix_lines(matrix: dict | None, model: str) -> list[str]:
    """Expert × task on one model: accuracy with each expert alone, and its paired Δ vs base."""
    if not matrix:
        return []
    experts = [k for k in next(iter(matrix["tasks"].values())) if k != "base"]
    lines = ["", f"Expert × task on the {model} model (each expert alone, α = 1; test split, n={matrix['n']} per task): "
             "accuracy % (Δ vs base)",
             f"  {'task':<16}{'base':>8}" + "".join(f"{e:>18}" for e in experts)]
    for name, rows in matrix["tasks"].items():
        cells = "".join(f"{rows[e]['accuracy']:>9.1f} ({rows[e]['vs_base']['difference']:+5.1f})" for e in experts)
        lines.append(f"  {name:<16}{rows['base']['accuracy']:>8.1f}{cells}")
    return lines

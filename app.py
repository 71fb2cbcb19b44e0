"""t2demo's browser app: Transformer² self-adaptation made visible.

    python app.py [--host 127.0.0.1] [--port 7860] [--model default] [--vlm default|none] [--share]

A thin layer: every callback below turns widget values into calls on t2demo.pipeline.Adapter
(first pass, z' composition, streamed second pass, CEM) and turns the results into figures. No
adaptation logic lives here. The models are loaded once and shared; everything a user changes
(α, fitted or uploaded mixtures) is per-session state, and each request composes its own weights
under the engine's lock, so concurrent sessions never see each other's weights.
"""

from __future__ import annotations

import argparse
import queue
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
import torch
from PIL import Image, UnidentifiedImageError
from plotly.subplots import make_subplots

from t2demo import cem, models, tasks
from t2demo.dispatch import Dispatch, PipelineError
from t2demo.experts import Expert, ExpertError, expert_dir, load_expert, load_model_experts, mixture_expert, save_expert
from t2demo.pipeline import Adapter
from t2demo.svf import SVF
from t2demo.tasks import world

MAX_MESSAGE_CHARS = 4000
MAX_IMAGE_PIXELS = 16_000_000
MAX_NEW_TOKENS = 160
STRATEGY_NAMES = {"prompt-based": "prompt", "classification expert": "cls", "few-shot": "fewshot", "manual": "manual"}
EXAMPLE_IMAGES = Path(__file__).resolve().parent / "assets" / "examples"
EXPORTS = Path("exports")

EXPLAIN_SVD = """**SVD and z-vectors.** Every adapted weight matrix is factored once as W = U Σ Vᵀ. An expert is a
vector z with one number per singular value; the adapted matrix is W' = U (Σ ⊙ z) Vᵀ. z = 1 is the base
model; z > 1 amplifies a direction the model already has, z < 1 damps it. An expert for a whole model
is a few thousand numbers — far fewer than a LoRA adapter — and experts can be mixed: z' = Σ αₖ zₖ + (1 − Σα)·1
(α = 0 is the base model, one α at 1 is that expert, in between is part of the way)."""
EXPLAIN_PASSES = """**Two passes.** Transformer² answers in two passes. The *first pass* works out what the message
needs: the base model (prompt-based) or the model with the classification expert reads a
classification instruction and we read the probabilities of the category labels. That gives α — which
experts to use and how much. The *second pass* answers with the weights W'(z'), z' = Σ αₖ zₖ + (1 − Σα)·1. The base
answer beside it shows what adaptation changed."""
EXPLAIN_HEATMAP = """**The heatmap** shows z' for the current α: one row per decoder layer, one column per adapted
matrix, colour = mean log|z'| over that matrix's singular values (0 = unchanged, red = amplified, blue =
damped). Pick a matrix below it to see z' along the singular-value index and the spectrum before and
after."""
EXPLAIN_CEM = """**Few-shot CEM.** Given a handful of solved examples, the Cross-Entropy Method searches α: each
generation samples a population of α, scores each (accuracy on the examples, ties broken by the
log-likelihood of the right answers), and refits its sampling distribution to the best fifth. The
result is a mixture you can save and then pick as the few-shot strategy for later messages."""


# ----------------------------------------------------------------------------- loading

@dataclass
class Runtime:
    """The loaded models and experts, shared by all sessions (read-only outside the SVF lock)."""

    text: Adapter
    vision: Adapter | None
    device: str
    notes: list[str] = field(default_factory=list)  # what could not be loaded, shown in the UI


def _adapter(model, tok_or_proc, folder: Path, targets: str, notes: list[str], transfer_from: Path | None = None) -> Adapter:
    svf = SVF(model, targets)
    experts, cls = load_model_experts(folder, svf, transfer_from)  # text experts onto the LLaVA language model
    if not experts:
        notes.append(f"no experts in {folder}: train them with `python -m t2demo train-expert` (answers use the base model)")
    return Adapter(model, tok_or_proc, experts, cls, svf)


def load_runtime(model: str = "default", vlm: str | None = "default", experts: str | Path | None = None,
                 device: str | None = None, dtype: str | None = None, targets: str = "mlp",
                 log=print) -> Runtime:
    """Load the text model (and the vision model unless vlm is None) with their experts."""
    notes: list[str] = []
    root = Path(experts) if experts else None  # None: the project's experts/ folder
    start = time.perf_counter()
    log(f"[1/2] loading text model {model!r} ...")
    text_model, tokenizer = models.load_text_model(model, device, dtype)
    text_dir = expert_dir(models.resolve_model(model), root)
    text = _adapter(text_model, tokenizer, text_dir, targets, notes)
    log(f"      {len(text.experts)} experts {text.labels}, classifier: {'yes' if text.cls_expert else 'no'} "
        f"({time.perf_counter() - start:.1f} s)")
    vision = None
    if vlm == "default" and not (models.DEFAULT_VISION_MODEL / "config.json").exists():
        notes.append(f"the default vision model is missing at {models.DEFAULT_VISION_MODEL} (no VQA tab); "
                     "train it with `python -m t2demo train-base vision`")
        vlm = None
    if vlm:
        log(f"[2/2] loading vision model {vlm!r} ...")
        vision_model, processor = models.load_vision_model(vlm, device, dtype)
        vision_dir = expert_dir(models.resolve_model(vlm, vision=True), root)
        vision = _adapter(vision_model, processor, vision_dir, targets, notes, transfer_from=text_dir)
        log(f"      {len(vision.experts)} experts {vision.labels} ({time.perf_counter() - start:.1f} s)")
    return Runtime(text, vision, str(text_model.device), notes)


def example_question(word: str) -> str:
    """For a shipped example image: a reading question, or a knowledge one if it names a creature."""
    if word in world.NAMES:
        return "The sign names a creature. Where does it live?"
    return "What word is written on the sign?"


def new_session() -> dict:
    """Per-browser-session state: mixtures fitted by CEM or uploaded, by model ("text" / "vision")
    and name (a text model's mixture does not fit the vision model's matrices)."""
    return {"mixtures": {"text": {}, "vision": {}}}


def mixtures_of(session: dict, adapter: Adapter) -> dict[str, Expert]:
    return session["mixtures"]["vision" if adapter.vision else "text"]


# ----------------------------------------------------------------------------- figures

def probabilities_figure(d: Dispatch | None) -> go.Figure:
    fig = go.Figure()
    if d is not None and d.probabilities:
        cats = list(d.probabilities)
        fig.add_bar(x=cats, y=[d.probabilities[c] for c in cats],
                    marker_color=["#d62728" if c == d.category else "#1f77b4" for c in cats],
                    hovertemplate="%{x}: %{y:.3f}<extra></extra>")
        title = f"first pass ({d.strategy}): {d.category}"
    else:
        title = "first pass: no classification (manual or few-shot α)" if d is not None else "first pass"
        fig.update_xaxes(visible=False)  # no bars: an empty numeric axis would only puzzle
    fig.update_layout(title=title, yaxis=dict(range=[0, 1], title="probability"), height=260,
                      margin=dict(l=50, r=10, t=40, b=40))
    return fig


def heatmap_figure(svf: SVF, z: dict | None, title: str) -> go.Figure:
    kinds, grid = svf.scaling_grid(z)
    limit = max(float(grid.nan_to_num(0).abs().max()), 1e-3)
    fig = go.Figure(go.Heatmap(
        z=grid.tolist(), x=kinds, y=list(range(svf.num_layers)), colorscale="RdBu_r", zmin=-limit, zmax=limit,
        colorbar=dict(title="mean log|z'|"),
        hovertemplate="layer %{y}<br>%{x}<br>mean log|z'| = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="adapted matrix", yaxis_title="decoder layer", height=340,
                      margin=dict(l=50, r=10, t=40, b=60))
    return fig


def detail_figure(svf: SVF, z: dict | None, name: str | None) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("z' per singular value", "σ before / after (log)"),
                        horizontal_spacing=0.14)
    if name in svf.ranks:
        sigma = svf.spectrum(name)
        zv = z[name].float() if z is not None and name in z else torch.ones_like(sigma)
        index = list(range(len(sigma)))
        fig.add_scatter(x=index, y=zv.tolist(), name="z'", row=1, col=1)
        fig.add_scatter(x=index, y=sigma.tolist(), name="σ (base)", row=1, col=2)
        fig.add_scatter(x=index, y=(sigma * zv).tolist(), name="σ·z' (adapted)", row=1, col=2)
        fig.update_yaxes(type="log", row=1, col=2)
    fig.update_annotations(font_size=12)  # the subplot titles: the default size overlaps in a narrow column
    fig.update_xaxes(title=dict(text="singular-value index", font_size=11))
    fig.update_layout(title=dict(text=name or "pick a matrix", font_size=13), height=320,
                      legend=dict(orientation="h", x=0, y=-0.3), margin=dict(l=50, r=10, t=60, b=70))
    return fig


def layer_alpha_figure(alpha, labels: list[str]) -> go.Figure:
    """α per expert and layer, for mixtures fitted per layer (a flat α shows as equal columns)."""
    a = torch.as_tensor(alpha, dtype=torch.float32)
    a = a[:, None] if a.ndim == 1 else a
    fig = go.Figure(go.Heatmap(z=a.T.tolist(), x=labels, colorscale="Viridis", colorbar=dict(title="α"),
                               hovertemplate="layer %{y}<br>%{x}: α = %{z:.3f}<extra></extra>"))
    yaxis = (dict(title="layer", dtick=max(1, -(-a.shape[1] // 12))) if a.shape[1] > 1
             else dict(tickvals=[0], ticktext=["all layers"]))  # a flat α: one row, not "layer -0.5 … 0.5"
    fig.update_layout(title="α per expert and layer", yaxis=yaxis, height=260, margin=dict(l=70, r=10, t=40, b=40))
    return fig


def cem_figure(history: list[dict]) -> go.Figure:
    fig = go.Figure()
    gens = [h["generation"] for h in history]
    fig.add_scatter(x=gens, y=[h["best"] for h in history], name="best", mode="lines+markers")
    fig.add_scatter(x=gens, y=[h["mean"] for h in history], name="mean", mode="lines+markers")
    if history and "base" in history[-1]:  # the bar a mixture has to beat
        fig.add_scatter(x=gens, y=[h["base"] for h in history], name="base model (α = 0)", mode="lines",
                        line=dict(dash="dash", color="grey"))
    fig.update_layout(title="CEM fitness per generation", yaxis_title="fitness", height=280,
                      xaxis=dict(title="generation", dtick=max(1, -(-len(gens) // 10))),  # whole generations
                      margin=dict(l=50, r=10, t=40, b=40))
    return fig


def similarity_figure(experts: list[Expert]) -> go.Figure:
    """Cosine similarity of the experts' changes z − 1 (z itself is ≈ 1 everywhere, so its cosine is ≈ 1)."""
    labels = [e.label for e in experts]
    vecs = [torch.cat([v.float() - 1 for _, v in sorted(e.z.items())]) for e in experts]
    sims = [[float(torch.nn.functional.cosine_similarity(a, b, dim=0)) if a.shape == b.shape else float("nan")
             for b in vecs] for a in vecs]
    fig = go.Figure(go.Heatmap(z=sims, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu_r",
                               colorbar=dict(title="cosine"),
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title="similarity of experts: cosine of (z − 1)", height=320, margin=dict(l=60, r=10, t=40, b=40))
    return fig


def norms_figure(svf: SVF, expert: Expert | None) -> go.Figure:
    """‖z − 1‖ per matrix of one expert (layers × matrices)."""
    kinds, grid = svf.layer_grid({n: float((v.float() - 1).norm()) for n, v in (expert.z if expert else {}).items()})
    fig = go.Figure(go.Heatmap(z=grid.tolist(), x=kinds, colorscale="Viridis", colorbar=dict(title="‖z − 1‖"),
                               hovertemplate="layer %{y}<br>%{x}: ‖z − 1‖ = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=f"per-matrix norms: {expert.label if expert else '-'}", yaxis_title="layer", height=320,
                      margin=dict(l=50, r=10, t=40, b=60))
    return fig


# ----------------------------------------------------------------------------- callbacks (plain functions)

def _user_error(e: Exception) -> gr.Error:
    return gr.Error(str(e), print_exception=False)


def check_message(message: str) -> str:
    message = (message or "").strip()
    if not message:
        raise gr.Error("Type a message first.", print_exception=False)
    if len(message) > MAX_MESSAGE_CHARS:
        raise gr.Error(f"The message has {len(message)} characters; the limit is {MAX_MESSAGE_CHARS}.",
                       print_exception=False)
    return message


def open_image(path: str | None) -> Image.Image:
    """A user's image as RGB, refusing non-images and images too large to process."""
    if not path:
        raise gr.Error("Add an image first (upload, paste or pick an example).", print_exception=False)
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise gr.Error(f"The image is {img.width}×{img.height}; the limit is {MAX_IMAGE_PIXELS // 1_000_000} "
                               "megapixels. Resize it and try again.", print_exception=False)
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise gr.Error(f"That file is not an image this app can read ({e}).", print_exception=False) from e


def history_pairs(history: list[dict]) -> list[tuple[str, str]]:
    """Chatbot messages as (user, assistant) turns for the chat template."""
    def text(content) -> str:
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)

    pairs, user = [], None
    for m in history or []:
        if m["role"] == "user":
            user = text(m["content"])
        elif user is not None:
            pairs.append((user, text(m["content"])))
            user = None
    return pairs


def alpha_of(adapter: Adapter, values) -> list[float]:
    return [float(v) for v in values][: len(adapter.experts)]


def first_pass_summary(d: Dispatch) -> str:
    per_expert = d.expert_alpha
    if d.labels:
        layered = " (mean over layers)" if torch.as_tensor(d.alpha).ndim == 2 else ""
        shown = ", ".join(f"{lab} {a:.2f}" for lab, a in zip(d.labels, per_expert)) + layered
        chosen = ", ".join(lab for lab, a in zip(d.labels, per_expert) if a > 0) or "none (base weights)"
    else:
        shown = "none"
        chosen = f"the z' of {d.category}" if d.strategy == "fewshot" else "none (base weights)"
    base = f"; base share {d.base_share:.2f}" if abs(d.base_share) > 5e-3 else ""
    return (f"**First pass** ({d.strategy}, {d.seconds * 1000:.0f} ms): category **{d.category}** → "
            f"experts {chosen}; α = {shown}{base}")


def run_dispatch(adapter: Adapter, session: dict, message: str, strategy: str, mode: str, alphas,
                 mixture_name: str | None = None, image=None) -> tuple[Dispatch, dict | None]:
    """The first pass for a message under the chosen strategy (manual: the sliders' α)."""
    code = STRATEGY_NAMES.get(strategy, strategy)
    mixture = None
    if code == "fewshot":
        if not mixture_name or mixture_name not in mixtures_of(session, adapter):
            raise gr.Error("Few-shot needs a mixture: fit one in the CEM panel (or upload an expert) and pick it.",
                           print_exception=False)
        mixture = mixtures_of(session, adapter)[mixture_name]
    try:
        return adapter.first_pass(message, image, code, mode, alpha_of(adapter, alphas) if code == "manual" else None,
                                  mixture_name, mixture)
    except PipelineError as e:
        raise _user_error(e) from e


def slider_values(adapter: Adapter, d: Dispatch) -> list[float]:
    """Per-expert slider positions for a first-pass α; zeros when its weights are not a mix of the
    loaded experts."""
    return d.expert_alpha if d.labels == adapter.labels else [0.0] * len(adapter.experts)


def turn(adapter: Adapter, session: dict, message: str, pairs: list[tuple[str, str]], strategy: str, mode: str,
         alphas, mixture_name: str | None = None, image=None):
    """One turn as events: ("first", Dispatch, z'), then ("answer", text so far) while the adapted
    answer streams, then ("base", text so far) for the base model's answer to the same turn."""
    message = check_message(message)
    try:
        enc = adapter.encode(message, image, pairs, MAX_NEW_TOKENS)
    except PipelineError as e:
        raise _user_error(e) from e
    d, z = run_dispatch(adapter, session, message, strategy, mode, alphas, mixture_name, image)
    yield "first", d, z
    for kind, weights in (("answer", z), ("base", None)):
        text = ""
        for piece in adapter.stream(enc, weights, MAX_NEW_TOKENS):
            text += piece
            yield kind, text, None


def respond(adapter: Adapter, session: dict, message: str, history: list[dict], strategy: str, mode: str, alphas,
            mixture_name: str | None = None, image=None, matrix: str | None = None):
    """The chat (and VQA) callback: yields (history, base answer, probabilities figure, first-pass
    text, slider values, heatmap, detail figure) as the answers grow; the message box is cleared."""
    history = list(history or [])
    base, panel = "", ()
    for kind, value, z in turn(adapter, session, message, history_pairs(history), strategy, mode, alphas,
                               mixture_name, image):
        if kind == "first":
            history += [{"role": "user", "content": message.strip()}, {"role": "assistant", "content": ""}]
            panel = (probabilities_figure(value), first_pass_summary(value), slider_values(adapter, value),
                     heatmap_figure(adapter.svf, z, "z' of this answer"), detail_figure(adapter.svf, z, matrix))
        elif kind == "answer":
            history[-1] = {"role": "assistant", "content": value}
        else:
            base = value
        yield history, base, *panel


def scaling_view(adapter: Adapter, alphas, matrix: str | None) -> tuple[go.Figure, go.Figure]:
    """Heatmap and detail plot for the sliders' α (no generation): what moving a slider does."""
    z = adapter.z_from_alpha(alpha_of(adapter, alphas))
    return heatmap_figure(adapter.svf, z, "z' of the sliders' α"), detail_figure(adapter.svf, z, matrix)


def cem_examples(task_name: str, table, n: int) -> tuple[list[tasks.Example], object]:
    """Few-shot examples and their task: n validation examples of a built-in task, or the user's table."""
    if task_name == "custom":
        rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
        examples = tasks.custom_examples([(str(r[0] or ""), str(r[1] or "")) for r in rows if len(r) >= 2])
        return examples, tasks.CUSTOM
    task = tasks.TASKS[task_name]
    return task.examples("validation", int(n)), task


def run_cem(adapter: Adapter, task_name: str, table, n: int, population: int, generations: int, per_layer: bool,
            fast: bool, cancel: threading.Event | None = None):
    """Fit α by CEM in a worker thread; yields (history, α or None, status) after each generation
    and once more with the final α. Closing the generator (the Cancel button) stops the search."""
    examples, task = cem_examples(task_name, table, n)
    cancel = cancel or threading.Event()
    events: queue.Queue = queue.Queue()
    result: list = []

    def work() -> None:
        try:
            result.append(cem.fit_alpha(adapter.svf, adapter.model, adapter.tok_or_proc, adapter.experts, examples,
                                        task, per_layer=per_layer, population=int(population),
                                        generations=int(generations), fast=fast, cancel=cancel,
                                        callback=lambda entry: events.put(entry)))
        except Exception as e:  # handed to the reader (e.g. fit_alpha's PipelineError: too few examples)
            result.append(e)
        events.put(None)

    worker = threading.Thread(target=work, name="t2demo-cem", daemon=True)
    worker.start()
    history: list[dict] = []
    try:
        while (entry := events.get()) is not None:
            history.append(entry)
            yield history, None, (f"generation {entry['generation']}/{int(generations)}: best {entry['best']:.4f}, "
                                  f"mean {entry['mean']:.4f} (base model {entry['base']:.4f})")
    finally:  # also reached when the reader closes the generator: stop the search, free the lock
        cancel.set()
        worker.join()
    outcome = result[0]
    if isinstance(outcome, Exception):
        raise _user_error(outcome) from outcome
    status = (f"{'cancelled' if outcome.cancelled else 'done'}: best fitness {outcome.fitness:.4f} (base model "
              f"{outcome.base_fitness:.4f}) after {outcome.evaluations} evaluations in {outcome.seconds:.1f} s on "
              f"{len(examples)} examples")
    yield history, outcome.alpha, status


def clean_name(name: str | None, what: str) -> str:
    """A user's name for a mixture or folder, reduced to letters, digits, '.', '_' and '-' (no path
    parts, not '.' or '..')."""
    name = re.sub(r"[^\w.-]+", "-", (name or "").strip()).strip("-.")
    if not name:
        raise gr.Error(f"Give the {what} a name.", print_exception=False)
    return name


def save_mixture(adapter: Adapter, session: dict, name: str, alpha) -> tuple[list[str], str]:
    """Keep a fitted α as a named few-shot mixture of this session."""
    name = clean_name(name, "mixture")
    if alpha is None:
        raise gr.Error("Run CEM first: there is no fitted α to save.", print_exception=False)
    mixtures_of(session, adapter)[name] = mixture_expert(adapter.svf, adapter.experts, alpha)
    return sorted(mixtures_of(session, adapter)), f"saved mixture {name!r}: pick it with the few-shot strategy"


def upload_expert(adapter: Adapter, session: dict, path: str | None) -> tuple[list[str], str]:
    """Validate a user's expert file against the model; a valid one becomes a few-shot mixture."""
    if not path:
        raise gr.Error("Choose an expert file (.safetensors) to upload.", print_exception=False)
    try:
        expert = load_expert(path, adapter.svf)
    except ExpertError as e:
        raise _user_error(e) from e
    name = f"uploaded:{expert.label}"
    mixtures_of(session, adapter)[name] = expert
    return sorted(mixtures_of(session, adapter)), f"loaded {expert.label!r} ({len(expert.z)} matrices) as mixture {name!r}"


def mixture_file(adapter: Adapter, alphas) -> str:
    """The sliders' α as an expert file to download."""
    alpha = alpha_of(adapter, alphas)
    if not adapter.experts:
        raise gr.Error("There are no experts to mix.", print_exception=False)
    path = Path(tempfile.mkdtemp(prefix="t2demo-mixture-")) / "mixture.safetensors"
    save_expert(mixture_expert(adapter.svf, adapter.experts, alpha), path)
    return str(path)


def export_model(adapter: Adapter, alphas, name: str, root: Path = EXPORTS) -> str:
    """Save the model with W'(z') for the sliders' α as a Hugging Face folder (from_pretrained loads it).
    Written to a temporary folder and renamed into place, so a failure leaves nothing half-written."""
    name = clean_name(name, "export folder")
    target = (root / name).resolve()
    if target.exists():
        raise gr.Error(f"{target} already exists; choose another name.", print_exception=False)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    z = adapter.z_from_alpha(alpha_of(adapter, alphas))
    with adapter.svf.adapted(z) as model:
        model.save_pretrained(tmp)
    adapter.tok_or_proc.save_pretrained(tmp)
    tmp.rename(target)
    return str(target)


def experts_table(adapter: Adapter, session: dict) -> list[list]:
    rows = []
    for source, experts in (("loaded", adapter.experts + ([adapter.cls_expert] if adapter.cls_expert else [])),
                            ("session", list(mixtures_of(session, adapter).values()))):
        for e in experts:
            notes = e.notes
            change = torch.cat([v.float() - 1 for v in e.z.values()])
            rows.append([e.label, source, notes.get("task", ""), notes.get("objective", ""),
                         e.targets if isinstance(e.targets, str) else ",".join(e.targets), notes.get("steps", ""),
                         notes.get("best_val_accuracy", ""), sum(v.numel() for v in e.z.values()),
                         round(float(change.abs().mean()), 5)])
    return rows


EXPERT_COLUMNS = ["label", "source", "task", "objective", "targets", "steps", "best val acc %", "parameters", "mean |z−1|"]


# ----------------------------------------------------------------------------- API (for gradio_client)

def dispatch_json(d: Dispatch) -> dict:
    return {"strategy": d.strategy, "category": d.category, "probabilities": d.probabilities,
            "experts": d.labels, "alpha": d.alpha, "base_share": d.base_share, "seconds": d.seconds}


def api_answer(adapter: Adapter, session: dict, message: str, history: list | None, strategy: str, mode: str,
               alpha: list | None, mixture_name: str | None = None, image=None) -> dict:
    """One turn without the UI: the first pass, the adapted answer and the base answer as JSON."""
    alphas = alpha if alpha is not None else [0.0] * len(adapter.experts)
    out = {"answer": "", "base_answer": ""}
    for kind, value, _ in turn(adapter, session, message, [tuple(t) for t in history or []], strategy, mode, alphas,
                               mixture_name, image):
        if kind == "first":
            out["first_pass"] = dispatch_json(value)
        else:
            out["answer" if kind == "answer" else "base_answer"] = value
    return out


def cem_api(adapter: Adapter, session: dict, task_name: str, examples: list | None, n: int, population: int,
            generations: int, per_layer: bool, fast: bool, save_as: str | None) -> dict:
    """Fit α by CEM and (optionally) keep it as a named mixture of this client's session."""
    table = [list(r) for r in examples or []]
    *_, (history, alpha, status) = run_cem(adapter, task_name, table, n, population, generations, per_layer, fast)
    if save_as:
        save_mixture(adapter, session, save_as, alpha)
    return {"alpha": alpha.tolist(), "labels": adapter.labels, "history": history, "status": status,
            "saved_as": save_as or None}


# ----------------------------------------------------------------------------- the page

CSS = """
.t2-note {font-size: 0.9em; color: #555;}
footer {display: none !important;}
"""


def _panel(adapter: Adapter, label: str):
    """Strategy controls, first-pass chart and α sliders for one model (shared by Chat and VQA)."""
    strategy = gr.Radio(list(STRATEGY_NAMES), value="prompt-based", label="First-pass strategy")
    mode = gr.Radio(["hard", "soft"], value="hard", label="Dispatch mode (hard: argmax expert; soft: α = probabilities)")
    mixture = gr.Dropdown(choices=[], value=None, label="Few-shot mixture (fit one with CEM, or upload an expert)")
    first = gr.Markdown("*The first pass appears here after a message.*")
    probs = gr.Plot(value=probabilities_figure(None), label="category probabilities")
    gr.Markdown(f"**α per expert** ({label}) — filled by the first pass; moving one switches to manual. "
                "0 = the base model, 1 = the whole expert; what the α leave over goes to the base.")
    sliders = [gr.Slider(0, 1, value=0, step=0.01, label=lab) for lab in adapter.labels]
    if not sliders:
        gr.Markdown("*No experts loaded: answers use the base model.*")
    reset = gr.Button("Reset to base")
    with gr.Accordion("What is the first pass?", open=False):
        gr.Markdown(EXPLAIN_PASSES)
    return strategy, mode, mixture, first, probs, sliders, reset


def _scaling_plots(adapter: Adapter):
    names = [n for n in adapter.svf.names if "layers." in n]
    with gr.Row():
        with gr.Column(scale=3):
            heat = gr.Plot(value=heatmap_figure(adapter.svf, None, "z' (base model: all 0)"), label="z' heatmap")
        with gr.Column(scale=2):
            matrix = gr.Dropdown(names, value=names[0] if names else None, label="matrix for the detail plot")
            detail = gr.Plot(value=detail_figure(adapter.svf, None, names[0] if names else None), label="z' detail")
    with gr.Accordion("What are SVD, z-vectors and this heatmap?", open=False):
        gr.Markdown(EXPLAIN_SVD + "\n\n" + EXPLAIN_HEATMAP)
    return heat, matrix, detail


def _wire_panel(adapter: Adapter, strategy, sliders, reset, heat, matrix, detail) -> None:
    """Sliders redraw the heatmap and switch to manual; reset returns to the base weights."""
    def moved(m, *alphas):
        return ("manual", *scaling_view(adapter, alphas, m))

    for s in sliders:
        s.release(moved, [matrix, *sliders], [strategy, heat, detail], api_visibility="private")
    matrix.change(lambda m, *a: scaling_view(adapter, a, m)[1], [matrix, *sliders], detail, api_visibility="private")

    def to_base(m):
        return (*([0.0] * len(sliders)), "manual", *scaling_view(adapter, [0.0] * len(sliders), m))

    reset.click(to_base, matrix, [*sliders, strategy, heat, detail], api_visibility="private")


def build_app(rt: Runtime) -> gr.Blocks:
    text, vision = rt.text, rt.vision
    with gr.Blocks(title="t2demo · Transformer²") as demo:
        session = gr.State(new_session)
        gr.Markdown(
            "# t2demo · Transformer² self-adaptation\n"
            f"Text model: `{text.svf.base_model_name}` · vision model: "
            f"`{vision.svf.base_model_name if vision else 'not loaded'}` · device: `{rt.device}` · "
            f"experts: {', '.join(text.labels) or 'none'}"
            + (f" · classifier: {text.cls_expert.label}" if text.cls_expert else "")
            + "".join(f"\n\n> {note}" for note in rt.notes))

        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Adapted answer (second pass)", height=360)
                    message = gr.Textbox(label="Message", placeholder="Ask a math, code or reasoning question, or just say hi",
                                         lines=2, max_length=MAX_MESSAGE_CHARS)
                    with gr.Row():
                        send = gr.Button("Send", variant="primary")
                        clear = gr.Button("Clear chat")
                    base = gr.Textbox(label="Base model's answer to the same message", lines=4, max_lines=8, interactive=False)
                with gr.Column(scale=2):
                    strategy, mode, mixture, first, probs, sliders, reset = _panel(text, "text model")
            heat, matrix, detail = _scaling_plots(text)
            _wire_panel(text, strategy, sliders, reset, heat, matrix, detail)

            with gr.Accordion("Few-shot adaptation: fit α by CEM", open=False):
                gr.Markdown(EXPLAIN_CEM)
                with gr.Row():
                    with gr.Column():
                        cem_task = gr.Dropdown(["custom"] + [t for t, task in tasks.TASKS.items()
                                                              if not task.vision and t != "smalltalk"],
                                               value="math-hard", label="Examples from a built-in task (validation split) or custom")
                        cem_n = gr.Slider(2, 50, value=10, step=1, label="built-in: number of examples")
                        cem_table = gr.Dataframe(headers=["prompt", "answer"], column_count=(2, "fixed"),
                                                 value=[["What is 12 + 30?", "42"], ["What is 7 times 6?", "42"]],
                                                 label="custom examples (prompt, answer)", interactive=True, wrap=True)
                    with gr.Column():
                        cem_pop = gr.Slider(4, 64, value=16, step=1, label="population")
                        cem_gens = gr.Slider(1, 50, value=8, step=1, label="generations")
                        cem_layer = gr.Checkbox(label="α per expert and layer (else per expert)")
                        cem_fast = gr.Checkbox(label="fast: log-likelihood of the answers only (no generation)")
                        with gr.Row():
                            cem_run = gr.Button("Run CEM", variant="primary")
                            cem_cancel = gr.Button("Cancel")
                        cem_status = gr.Markdown()
                with gr.Row():
                    cem_plot = gr.Plot(value=cem_figure([]), label="fitness")
                    cem_alpha_plot = gr.Plot(value=layer_alpha_figure([0.0] * len(text.labels), text.labels),
                                             label="fitted α")
                with gr.Row():
                    mix_name = gr.Textbox(label="mixture name", value="my-mixture")
                    mix_save = gr.Button("Save as few-shot mixture")

        if vision is not None:
            with gr.Tab("VQA"):
                with gr.Row():
                    with gr.Column(scale=3):
                        image = gr.Image(type="filepath", sources=["upload", "clipboard"], label="Image", height=260)
                        question = gr.Textbox(label="Question", value="What word is written on the sign?",
                                              max_length=MAX_MESSAGE_CHARS)
                        examples = sorted(EXAMPLE_IMAGES.glob("*.png"))
                        if examples:
                            gr.Examples([[str(p), example_question(p.stem)] for p in examples],
                                        [image, question], label="example images")
                        ask = gr.Button("Ask", variant="primary")
                        v_answer = gr.Textbox(label="Adapted answer (second pass)", max_lines=6, interactive=False)
                        v_base = gr.Textbox(label="Base model's answer", max_lines=6, interactive=False)
                    with gr.Column(scale=2):
                        v_strategy, v_mode, v_mixture, v_first, v_probs, v_sliders, v_reset = _panel(vision, "vision model")
                v_heat, v_matrix, v_detail = _scaling_plots(vision)
                _wire_panel(vision, v_strategy, v_sliders, v_reset, v_heat, v_matrix, v_detail)

        with gr.Tab("Experts"):
            adapters = {"text model": text} | ({"vision model": vision} if vision else {})
            which = gr.Radio(list(adapters), value="text model", label="model")
            table = gr.Dataframe(headers=EXPERT_COLUMNS, value=experts_table(text, new_session()), interactive=False,
                                 label="experts (loaded with the app, and this session's mixtures)")
            with gr.Row():
                pick = gr.Dropdown([e.label for e in text.experts], value=text.labels[0] if text.labels else None,
                                   label="expert for the per-matrix norms")
            with gr.Row():
                norms = gr.Plot(value=norms_figure(text.svf, text.experts[0] if text.experts else None))
                similarity = gr.Plot(value=similarity_figure(text.experts))
            with gr.Row():
                with gr.Column():
                    upload = gr.File(label="Upload an expert (.safetensors); it is validated against the model",
                                     file_types=[".safetensors"], type="filepath")
                    upload_status = gr.Markdown()
                with gr.Column():
                    download = gr.DownloadButton("Download the chat sliders' mixture as an expert file")
                    export_name = gr.Textbox(label="export folder name (under exports/)", value="t2demo-adapted")
                    export = gr.Button("Export the adapted text model (sliders' α) as a Hugging Face folder")
                    export_status = gr.Markdown()

        # --- chat
        def chat_fn(sess, msg, history, strat, md, mix, mat, *alphas):
            for h, b, p, f, vals, hm, dt in respond(text, sess, msg, history, strat, md, alphas, mix, None, mat):
                yield h, b, p, f, *vals, hm, dt, ""

        chat_outputs = [chatbot, base, probs, first, *sliders, heat, detail, message]
        chat_inputs = [session, message, chatbot, strategy, mode, mixture, matrix, *sliders]
        send.click(chat_fn, chat_inputs, chat_outputs, api_visibility="private")
        message.submit(chat_fn, chat_inputs, chat_outputs, api_visibility="private")
        clear.click(lambda: ([], ""), None, [chatbot, base], api_visibility="private")

        # --- CEM
        def cem_fn(sess, task_name, tbl, n, pop, gens, per_layer, fast, mat, progress=gr.Progress()):
            sess["cancel"] = threading.Event()
            for history, alpha, status in run_cem(text, task_name, tbl, n, pop, gens, per_layer, fast, sess["cancel"]):
                progress(len(history) / max(int(gens), 1), desc="CEM")
                if alpha is None:
                    yield cem_figure(history), status, *([gr.update()] * (len(sliders) + 3))
                else:
                    sess["fitted"] = alpha
                    flat = (alpha.mean(1) if alpha.ndim == 2 else alpha).tolist()
                    # the sliders now hold the fitted α: redraw the heatmap for it, as moving a slider does
                    yield (cem_figure(history), status, *flat, layer_alpha_figure(alpha, text.labels),
                           *scaling_view(text, flat, mat))

        cem_run.click(cem_fn, [session, cem_task, cem_table, cem_n, cem_pop, cem_gens, cem_layer, cem_fast, matrix],
                      [cem_plot, cem_status, *sliders, cem_alpha_plot, heat, detail], api_visibility="private")
        cem_cancel.click(lambda sess: sess.get("cancel", threading.Event()).set(), session, None,
                         api_visibility="private")

        def save_fn(sess, name):
            names, status = save_mixture(text, sess, name, sess.get("fitted"))
            return gr.update(choices=names, value=names[-1] if name not in names else name), status, "few-shot"

        mix_save.click(save_fn, [session, mix_name], [mixture, cem_status, strategy], api_visibility="private")

        # --- VQA
        if vision is not None:
            def vqa_fn(sess, path, q, strat, md, mix, mat, *alphas):
                img = open_image(path)
                for h, b, p, f, vals, hm, dt in respond(vision, sess, q, [], strat, md, alphas, mix, img, mat):
                    yield h[-1]["content"], b, p, f, *vals, hm, dt

            ask.click(vqa_fn, [session, image, question, v_strategy, v_mode, v_mixture, v_matrix, *v_sliders],
                      [v_answer, v_base, v_probs, v_first, *v_sliders, v_heat, v_detail], api_visibility="private")

        # --- experts
        def show_experts(sess, model_name):
            a = adapters[model_name]
            return (experts_table(a, sess), gr.update(choices=[e.label for e in a.experts], value=a.labels[0] if a.labels else None),
                    norms_figure(a.svf, a.experts[0] if a.experts else None), similarity_figure(a.experts))

        which.change(show_experts, [session, which], [table, pick, norms, similarity], api_visibility="private")
        pick.change(lambda m, lab: norms_figure(adapters[m].svf, next((e for e in adapters[m].experts if e.label == lab), None)),
                    [which, pick], norms, api_visibility="private")

        mixture_menus = {text: mixture} | ({vision: v_mixture} if vision else {})

        def upload_fn(sess, model_name, path):
            a = adapters[model_name]
            names, status = upload_expert(a, sess, path)
            return status, experts_table(a, sess), *(gr.update(choices=names) if m is a else gr.update()
                                                     for m in mixture_menus)

        upload.upload(upload_fn, [session, which, upload], [upload_status, table, *mixture_menus.values()],
                      api_visibility="private")
        download.click(lambda *alphas: mixture_file(text, alphas), sliders, download, api_visibility="private")
        export.click(lambda name, *alphas: f"saved to `{export_model(text, alphas, name)}`",
                     [export_name, *sliders], export_status, api_visibility="private")

        _api_endpoints(rt, session)
    return demo


def _api_endpoints(rt: Runtime, session) -> None:
    """Named endpoints for scripts (gradio_client): dispatch, chat, vqa, cem; each returns JSON."""
    with gr.Row(visible=False):
        message, strategy, mode = gr.Textbox(), gr.Textbox(value="prompt-based"), gr.Textbox(value="hard")
        history, alpha, examples, out = gr.JSON(), gr.JSON(), gr.JSON(), gr.JSON()
        image, task_name, save_as = gr.Image(type="filepath"), gr.Textbox(value="math-hard"), gr.Textbox()
        mixture = gr.Textbox(value="")  # the name of a mixture this client saved with /cem
        n, population, generations = gr.Number(value=10), gr.Number(value=16), gr.Number(value=8)
        per_layer, fast = gr.Checkbox(), gr.Checkbox()
        trigger = gr.Button()

    def dispatch_api(sess, msg, strat, md):
        d, _ = run_dispatch(rt.text, sess, check_message(msg), strat, md, [0.0] * len(rt.text.experts))
        return dispatch_json(d)

    def vqa_api(sess, path, q, strat, md, a):
        if rt.vision is None:
            raise gr.Error("The app was started without a vision model (--vlm none).", print_exception=False)
        return api_answer(rt.vision, sess, q, None, strat, md, a, None, open_image(path))

    trigger.click(dispatch_api, [session, message, strategy, mode], out, api_name="dispatch")
    trigger.click(lambda sess, msg, h, strat, md, a, mix: api_answer(rt.text, sess, msg, h, strat, md, a, mix or None),
                  [session, message, history, strategy, mode, alpha, mixture], out, api_name="chat")
    trigger.click(vqa_api, [session, image, message, strategy, mode, alpha], out, api_name="vqa")
    trigger.click(lambda sess, t, ex, k, p, g, pl, f, s: cem_api(rt.text, sess, t, ex, int(k), int(p), int(g), pl, f, s),
                  [session, task_name, examples, n, population, generations, per_layer, fast, save_as], out,
                  api_name="cem")


# ----------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="t2demo: see Transformer² adapt a language model, in the browser")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    p.add_argument("--model", default="default", help="text model: 'default', a folder or a hub id")
    p.add_argument("--vlm", default="default", help="vision model (LLaVA-Next): 'default', a folder, a hub id or 'none'")
    p.add_argument("--experts", default=None, help="experts root folder (default: experts/; one subfolder per model)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the GPU when there is one)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.add_argument("--targets", default="mlp", help="adapted matrices: mlp, attn or all (must match the experts)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        rt = load_runtime(args.model, None if args.vlm == "none" else args.vlm, args.experts, args.device,
                          args.dtype, args.targets)
    except (models.ModelLoadError, ExpertError, ValueError) as e:
        raise SystemExit(f"t2demo: {e}") from None
    demo = build_app(rt)
    demo.queue(default_concurrency_limit=4)
    print(f"ready in {time.perf_counter() - start:.1f} s on {rt.device}; open http://{args.host}:{args.port}")
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=CSS, show_error=True)


if __name__ == "__main__":
    main()

"""The adaptation panel shared by the Chat and VQA tabs, and the callbacks behind it.

Strategy and mode, the first pass's chart and summary, one α slider per expert, the z' heatmap
and the per-matrix detail plot. The callbacks are plain functions (testable without a browser)
that call t2demo.session and turn its results into figures.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import gradio as gr
import plotly.graph_objects as go

from t2demo import session as sessions
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import Dispatch, PipelineError
from t2demo.adapt.registry import STRATEGIES
from t2demo.experts import ExpertError
from t2demo.transcript import first_pass_record
from t2demo.ui import texts
from t2demo.ui.figures import (
    detail_figure,
    heat_limit,
    heatmap_figure,
    probabilities_figure,
)

USER_ERRORS = (PipelineError, ExpertError, FileExistsError)


def user_errors(fn):
    """Turn the core's refusals (PipelineError, ExpertError, ...) into Gradio messages, for plain
    and generator callbacks alike; anything else stays a bug with its traceback."""
    def as_message(e: Exception) -> gr.Error:
        return gr.Error(str(e), print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except USER_ERRORS as e:
                raise as_message(e) from e
        return gen

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            raise as_message(e) from e
    return plain


def alpha_of(adapter: Adapter, values) -> list[float]:
    return [float(v) for v in values][: len(adapter.experts)]


def first_pass_summary(d: Dispatch) -> str:
    """The panel's line on the latest first pass (the same record every turn of the chat keeps)."""
    return f"**First pass** · {first_pass_record(d)}"


def slider_values(adapter: Adapter, d: Dispatch) -> list[float]:
    """Per-expert slider positions for a first-pass α, rounded to 3 decimals (0.9999901 reads
    as 1.0); zeros when its weights are not a mix of the loaded experts."""
    values = d.expert_alpha if d.labels == adapter.labels else [0.0] * len(adapter.experts)
    return [round(v, 3) for v in values]


@functools.cache
def heat_limit_of(adapter: Adapter) -> float:
    """The model's fixed heatmap range, from its experts (figures.heat_limit), computed once."""
    return heat_limit(adapter.svf, [e.z for e in adapter.experts])


def alpha_title(labels: list[str], alphas: list[float]) -> str:
    """The nonzero α of a title, rounded ("α: math 1.00, code 0.20"; all zero: the base weights)."""
    shown = [f"{lab} {a:.2f}" for lab, a in zip(labels, alphas) if abs(a) > 5e-3]
    return "α: " + ", ".join(shown) if shown else "α = 0: the base weights"


def answer_title(d: Dispatch) -> str:
    """Which strategy and α produced a heatmap."""
    what = alpha_title(d.labels, d.expert_alpha) if d.labels else f"z' of {d.mixture or 'the base weights'}"
    return f"z' of this answer ({d.strategy}) · {what}"


def scaling_view(adapter: Adapter, alphas, matrix: str | None) -> tuple[go.Figure, go.Figure]:
    """Heatmap and detail plot for the sliders' α (no generation): what moving a slider does."""
    alpha = alpha_of(adapter, alphas)
    z = adapter.z_from_alpha(alpha)
    title = f"z' of the sliders' α (manual) · {alpha_title(adapter.labels, alpha)}"
    return heatmap_figure(adapter.svf, z, title, heat_limit_of(adapter)), detail_figure(adapter.svf, z, matrix)


def sliders_note(adapter: Adapter, alphas) -> str:
    """The panel's line once the sliders were moved: the next message uses them (manual), not the
    last message's first pass."""
    return (f"**Sliders moved** · the next message uses manual {alpha_title(adapter.labels, alpha_of(adapter, alphas))}"
            " (each turn's own first pass stays in its record in the chat)")


def matrix_kinds(adapter: Adapter) -> list[str]:
    """The kinds of adapted matrix in the decoder layers (the detail plot's second picker)."""
    return list(dict.fromkeys(adapter.svf.matrix_kind(n) for n in _layer_names(adapter)))


def matrix_name(adapter: Adapter, layer, kind: str | None) -> str | None:
    """The target matrix at (layer, kind), or None where that layer has no such target."""
    return next((n for n in _layer_names(adapter)
                 if adapter.svf.layer_of(n) == int(layer or 0) and adapter.svf.matrix_kind(n) == kind), None)


def _layer_names(adapter: Adapter) -> list[str]:
    return [n for n in adapter.svf.names if adapter.svf.layer_of(n) is not None]


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


@user_errors
def respond(adapter: Adapter, session: sessions.Session, message: str, history: list[dict], strategy: str, mode: str,
            alphas, mixture_name: str | None = None, image=None, matrix: str | None = None):
    """The chat (and VQA) callback: yields (history, base answer, probabilities figure, first-pass
    text, slider values, heatmap, detail figure) as the answers grow."""
    history = list(history or [])
    base, panel = "", ()
    for kind, value, z in sessions.turn(adapter, session, message, history_pairs(history), strategy, mode,
                                        alpha_of(adapter, alphas), mixture_name, image):
        if kind == "first":
            history += [{"role": "user", "content": message.strip()}, {"role": "assistant", "content": ""}]
            panel = (probabilities_figure(value), first_pass_summary(value), slider_values(adapter, value),
                     heatmap_figure(adapter.svf, z, answer_title(value), heat_limit_of(adapter)),
                     detail_figure(adapter.svf, z, matrix))
        elif kind == "answer":
            history[-1] = {"role": "assistant", "content": value}
        else:
            base = value
        yield history, base, *panel


@dataclass
class Panel:
    """One model's adaptation widgets (the tabs and the API wire them)."""

    adapter: Adapter
    strategy: gr.Radio
    mode: gr.Radio
    mixture: gr.Dropdown
    first: gr.Markdown
    probs: gr.Plot
    sliders: list
    reset: gr.Button
    heat: gr.Plot | None = None
    matrix: gr.Textbox | None = None  # the detail plot's matrix name (set by the layer and kind pickers)
    detail: gr.Plot | None = None

    @property
    def outputs(self) -> list:
        """What respond() fills after the answers: chart, summary, sliders, heatmap, detail."""
        return [self.probs, self.first, *self.sliders, self.heat, self.detail]


def strategy_choices(adapter: Adapter) -> tuple[list[str], str]:
    """The strategies this model can run, and why any is left out (a vision model without a
    classification expert is not offered that strategy, rather than failing when picked)."""
    offered = [s.title for s in STRATEGIES.values() if not (s.needs_classifier and adapter.cls_expert is None)]
    left_out = [s.title for s in STRATEGIES.values() if s.title not in offered]
    why = f"Not offered: {', '.join(left_out)} (this model has no classification expert)." if left_out else ""
    return offered, why


def build_readout() -> tuple[gr.Markdown, gr.Plot]:
    """The latest first pass: its line and its category chart (a tab may place them apart from the
    controls, next to the answers)."""
    first = gr.Markdown("*The first pass appears here after a message.*")
    return first, gr.Plot(value=probabilities_figure(None), label="category probabilities")


def build_controls(adapter: Adapter, label: str, readout: tuple[gr.Markdown, gr.Plot] | None = None) -> Panel:
    """Strategy controls, first-pass chart (unless built elsewhere: readout) and α sliders for one model."""
    offered, missing = strategy_choices(adapter)
    strategy = gr.Radio(offered, value=STRATEGIES["prompt"].title, label="First-pass strategy",
                        info=missing or None)
    mode = gr.Radio(["hard", "soft"], value="hard", label="Dispatch mode (hard: argmax expert; soft: α = probabilities)")
    mixture = gr.Dropdown(choices=[], value=None, label="Few-shot mixture (fit one with CEM, or upload an expert)")
    first, probs = readout or build_readout()
    gr.Markdown(f"**α per expert** ({label}) — filled by the first pass; moving one switches to manual. "
                "0 = the base model, 1 = the whole expert; what the α leave over goes to the base.")
    sliders = [gr.Slider(0, 1, value=0, step=0.01, label=lab) for lab in adapter.labels]
    if not sliders:
        gr.Markdown("*No experts loaded: answers use the base model.*")
    reset = gr.Button("Reset to base")
    with gr.Accordion("What is the first pass?", open=False):
        gr.Markdown(texts.EXPLAIN_PASSES)
    return Panel(adapter, strategy, mode, mixture, first, probs, sliders, reset)


def build_heatmap(adapter: Adapter) -> gr.Plot:
    base = heatmap_figure(adapter.svf, None, "z' (base model: all 0)", heat_limit_of(adapter))
    return gr.Plot(value=base, label="z' heatmap")


def build_detail(panel: Panel) -> None:
    """The detail plot, its matrix picked by layer and kind (panel.matrix holds the chosen name for
    the callbacks), the explanation, and the wiring of sliders, reset and plots (panel.heat built)."""
    adapter = panel.adapter
    names, kinds = _layer_names(adapter), matrix_kinds(adapter)
    first = names[0] if names else None
    with gr.Row():
        layer = gr.Slider(0, max(adapter.svf.num_layers - 1, 1), value=0, step=1, label="detail: decoder layer")
        kind = gr.Dropdown(kinds, value=kinds[0] if kinds else None, label="detail: matrix")
    panel.matrix = gr.Textbox(value=first, visible=False)
    panel.detail = gr.Plot(value=detail_figure(adapter.svf, None, first), label="z' detail")
    for picker in (layer, kind):
        picker.change(lambda lay, k: matrix_name(adapter, lay, k), [layer, kind], panel.matrix,
                      api_visibility="private")
    with gr.Accordion("What are SVD, z-vectors and this heatmap?", open=False):
        gr.Markdown(texts.EXPLAIN_SVD + "\n\n" + texts.EXPLAIN_HEATMAP)
    _wire(panel)


def build_scaling_plots(panel: Panel) -> None:
    """The z' heatmap and detail plot under a panel, wired to its sliders and reset button."""
    with gr.Row():
        with gr.Column(scale=3):
            panel.heat = build_heatmap(panel.adapter)
        with gr.Column(scale=2):
            build_detail(panel)


def _wire(panel: Panel) -> None:
    """Sliders redraw the heatmap and switch to manual; reset returns to the base weights."""
    adapter, sliders, manual = panel.adapter, panel.sliders, STRATEGIES["manual"].title

    def moved(m, *alphas):
        return (manual, sliders_note(adapter, alphas), *scaling_view(adapter, alphas, m))

    for slider in sliders:
        slider.release(moved, [panel.matrix, *sliders], [panel.strategy, panel.first, panel.heat, panel.detail],
                       api_visibility="private")
    panel.matrix.change(lambda m, *a: scaling_view(adapter, a, m)[1], [panel.matrix, *sliders], panel.detail,
                        api_visibility="private")

    def to_base(m):
        zeros = [0.0] * len(sliders)
        return (*zeros, manual, sliders_note(adapter, zeros), *scaling_view(adapter, zeros, m))

    panel.reset.click(to_base, panel.matrix, [*sliders, panel.strategy, panel.first, panel.heat, panel.detail],
                      api_visibility="private")

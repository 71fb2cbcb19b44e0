"""Few-shot CEM in the Chat tab: fit α on examples, watch it live, keep it as a mixture."""

from __future__ import annotations

import threading

import gradio as gr

from t2demo import session as sessions
from t2demo import tasks
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import PipelineError
from t2demo.adapt.registry import STRATEGIES
from t2demo.ui import texts
from t2demo.ui.figures import cem_figure, layer_alpha_figure
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import Panel, scaling_view, user_errors


@user_errors
def run_cem(adapter: Adapter, task_name: str, table, n: int, population: int, generations: int, per_layer: bool,
            fast: bool, cancel=None):
    """Fit α by CEM; yields (history, α or None, status) after each generation and once more with the
    final α. Closing the generator (the Cancel button) stops the search."""
    rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
    examples, task = sessions.cem_examples(task_name, rows, n)
    for history, result in sessions.fit_stream(adapter, examples, task, cancel, per_layer=per_layer,
                                               population=int(population), generations=int(generations), fast=fast):
        status = sessions.cem_status(history, int(generations), result, len(examples))
        yield history, None if result is None else result.alpha, status


@user_errors
def save_mixture(adapter: Adapter, session: sessions.Session, name: str, alpha) -> tuple[list[str], str, str]:
    """Keep a fitted α as a named few-shot mixture of this session: (names, status, stored name)."""
    if alpha is None:
        raise PipelineError("Run CEM first: there is no fitted α to save.")
    stored = session.keep(adapter, name, adapter.mixture(alpha))
    return sorted(session.mixtures_of(adapter)), f"saved mixture {stored!r}: pick it with the few-shot strategy", stored


def build(page: Page, panel: Panel) -> None:
    """The accordion under the chat, wired to the text model's panel."""
    text = page.rt.text
    choices = ["custom"] + [name for name in tasks.names() if not tasks.TASKS[name].vision and name != "smalltalk"]
    with gr.Accordion("Few-shot adaptation: fit α by CEM", open=False):
        gr.Markdown(texts.EXPLAIN_CEM)
        with gr.Row():
            with gr.Column():
                task = gr.Dropdown(choices, value="math-hard", label="Examples from a built-in task (validation split) or custom")
                n = gr.Slider(2, 50, value=10, step=1, label="built-in: number of examples")
                table = gr.Dataframe(headers=["prompt", "answer"], column_count=(2, "fixed"),
                                     value=[["What is 12 + 30?", "42"], ["What is 7 times 6?", "42"]],
                                     label="custom examples (prompt, answer)", interactive=True, wrap=True)
            with gr.Column():
                population = gr.Slider(4, 64, value=16, step=1, label="population")
                generations = gr.Slider(1, 50, value=8, step=1, label="generations")
                per_layer = gr.Checkbox(label="α per expert and layer (else per expert)")
                fast = gr.Checkbox(label="fast: log-likelihood of the answers only (no generation)")
                with gr.Row():
                    run = gr.Button("Run CEM", variant="primary")
                    cancel = gr.Button("Cancel")
                status = gr.Markdown()
        with gr.Row():
            plot = gr.Plot(value=cem_figure([]), label="fitness")
            alpha_plot = gr.Plot(value=layer_alpha_figure([0.0] * len(text.labels), text.labels), label="fitted α")
        with gr.Row():
            name = gr.Textbox(label="mixture name", value="my-mixture")
            save = gr.Button("Save as few-shot mixture")

    def cem_fn(sess, task_name, tbl, k, pop, gens, layered, quick, mat, progress=gr.Progress()):
        sess.cancel = threading.Event()
        for history, alpha, line in run_cem(text, task_name, tbl, k, pop, gens, layered, quick, sess.cancel):
            progress(len(history) / max(int(gens), 1), desc="CEM")
            if alpha is None:
                yield cem_figure(history), line, *([gr.update()] * (len(panel.sliders) + 3))
            else:
                sess.fitted = alpha
                flat = (alpha.mean(1) if alpha.ndim == 2 else alpha).tolist()
                # the sliders now hold the fitted α: redraw the heatmap for it, as moving a slider does
                yield (cem_figure(history), line, *flat, layer_alpha_figure(alpha, text.labels),
                       *scaling_view(text, flat, mat))

    run.click(cem_fn, [page.session, task, table, n, population, generations, per_layer, fast, panel.matrix],
              [plot, status, *panel.sliders, alpha_plot, panel.heat, panel.detail], api_visibility="private")
    cancel.click(lambda sess: sess.cancel.set(), page.session, None, api_visibility="private")

    def save_fn(sess, wanted):
        names, line, stored = save_mixture(text, sess, wanted, sess.fitted)
        return gr.update(choices=names, value=stored), line, STRATEGIES["fewshot"].title

    save.click(save_fn, [page.session, name], [panel.mixture, status, panel.strategy], api_visibility="private")

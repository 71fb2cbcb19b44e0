"""Few-shot CEM in the Chat and VQA tabs: fit α on examples, watch it live, keep it as a mixture.

The VQA tab's accordion fits the vision model's α on examples of its image tasks (each example an
image and a question; no custom table there), so its few-shot strategy has a mixture to use.

A run is bounded (validation.CEM_LIMITS: its size and time, how many run at once) and stops when
whoever asked for it is gone: the Cancel button, a closed tab, an API client that cancels or
disconnects. Gradio notices a request that is gone only when its callback yields, and then closes
it, so callbacks read a run through `ticking`, which yields at least every TICK_S seconds; a run
whose reader stops coming back without closing it (cancelled before Gradio registered it) stops
too, after IDLE_S (Lease).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
from t2demo.validation import CEM_LIMITS, CEMLimits, cem_tasks, check_cem_settings

TICK_S = 0.5
IDLE_S = 10.0
_END = object()


class Lease(threading.Event):
    """A stop switch that also reads as set once its reader has not come back for `idle` seconds
    (Gradio resumes a streaming callback right after each of its yields)."""

    def __init__(self, idle: float = IDLE_S) -> None:
        super().__init__()
        self.idle = idle
        self.renew()

    def renew(self) -> None:
        self._seen = time.monotonic()

    def is_set(self) -> bool:
        return super().is_set() or time.monotonic() - self._seen > self.idle


class CEMRuns:
    """The CEM runs going on: at most `limit` in the app, and one per owner (a session)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._owners: list = []  # one entry per run (None: a run without an owner)
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, owner=None) -> Iterator[None]:
        """Hold one of the app's slots for a run, or refuse with a message saying why."""
        with self._lock:
            if owner is not None and any(o is owner for o in self._owners):
                raise PipelineError("A CEM run is already going in this session: wait for it to end, or cancel it.")
            if len(self._owners) >= self.limit:
                raise PipelineError(f"The server is busy: {len(self._owners)} CEM runs are going (the limit is "
                                    f"{self.limit}). Try again in a minute.")
            self._owners.append(owner)
        try:
            yield
        finally:
            with self._lock:
                del self._owners[next(i for i, o in enumerate(self._owners) if o is owner)]


RUNS = CEMRuns(CEM_LIMITS.runs)


def ticking(steps: Iterator, stop: Lease, every: float = TICK_S) -> Iterator:
    """steps, read in a thread of their own, as they come, and None whenever `every` seconds pass
    without one; each return of the reader renews `stop`. Closing this generator sets `stop` and
    returns at once, without waiting for the work (Gradio closes it in its event loop); the thread
    ends when `steps` does, soon after `stop`."""
    items: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for step in steps:
                items.put((True, step))
            items.put((True, _END))
        except BaseException as e:  # handed to the reader
            items.put((False, e))

    threading.Thread(target=pump, name="t2demo-cem-reader", daemon=True).start()
    try:
        yield None  # at once: Gradio can close a run only once its first yield registered it
        stop.renew()
        while True:
            try:
                ok, step = items.get(timeout=every)
            except queue.Empty:
                ok, step = True, None
            if not ok:
                raise step
            if step is _END:
                return
            yield step
            stop.renew()
    finally:
        stop.set()


@user_errors
def run_cem(adapter: Adapter, task_name, table, n, population, generations, per_layer, fast,
            cancel: threading.Event | None = None, owner: sessions.Session | None = None,
            limits: CEMLimits = CEM_LIMITS):
    """Fit α by CEM on settings checked against limits; yields (history, α or None, status) after each
    generation and once more with the final α (the best so far when stopped). Setting `cancel` (the
    owner's Cancel button, a client gone) or the limits.seconds deadline stops the search."""
    rows = table.values.tolist() if hasattr(table, "values") else table  # the page's table is a DataFrame
    s = check_cem_settings(task_name, rows, n, population, generations, per_layer, fast, limits, adapter.vision)
    examples, task = sessions.cem_examples(s.task, s.rows, s.n)
    stop, expired = cancel or threading.Event(), threading.Event()
    deadline = threading.Timer(limits.seconds, lambda: (expired.set(), stop.set()))
    deadline.daemon = True  # never keeps the app from exiting
    with RUNS.slot(owner):
        if owner is not None:
            owner.cancel = stop  # what the session's Cancel button sets
        deadline.start()
        try:
            for history, result in sessions.fit_stream(adapter, examples, task, stop, per_layer=s.per_layer,
                                                       population=s.population, generations=s.generations,
                                                       fast=s.fast, max_rows=limits.rows_per_call):
                status = sessions.cem_status(history, s.generations, result, len(examples), s.fast)
                if result is not None and expired.is_set():
                    status += f" (stopped at the {limits.seconds:.0f} s limit)"
                yield history, None if result is None else result.alpha, status
        finally:
            deadline.cancel()


@user_errors
def save_mixture(adapter: Adapter, session: sessions.Session, name: str, alpha) -> tuple[list[str], str, str]:
    """Keep a fitted α as a named few-shot mixture of this session: (names, status, stored name)."""
    if alpha is None:
        raise PipelineError("Run CEM first: there is no fitted α to save.")
    stored = session.keep(adapter, name, adapter.mixture(alpha))
    return sorted(session.mixtures_of(adapter)), f"saved mixture {stored!r}: pick it with the few-shot strategy", stored


def build(page: Page, panel: Panel) -> None:
    """The accordion under a model's panel (the Chat tab's text model or the VQA tab's vision model),
    wired to that panel; its sliders stop at CEM_LIMITS."""
    adapter, lim = panel.adapter, CEM_LIMITS
    choices = cem_tasks(adapter.vision)
    with gr.Accordion("Few-shot adaptation: fit α by CEM", open=False):
        gr.Markdown(texts.EXPLAIN_CEM)
        with gr.Row():
            with gr.Column():
                unseen = [name for name in choices if name in tasks.UNSEEN_TASKS]  # where mixing experts is the point
                task = gr.Dropdown(choices, value=(unseen or choices)[0],
                                   label=("Examples (image and question) from a vision task's validation split"
                                          if adapter.vision else
                                          "Examples from a built-in task (validation split) or custom"))
                n = gr.Slider(*lim.examples, value=8, step=1,
                              label="number of examples" if adapter.vision else "built-in: number of examples")
                table = gr.Dataframe(headers=["prompt", "answer"], column_count=(2, "fixed"),
                                     value=[["What is 347 + 285?", "632"], ["Compute 905 - 478.", "427"]],
                                     label="custom examples (prompt, answer)", interactive=True, wrap=True,
                                     visible=not adapter.vision)
            with gr.Column():
                population = gr.Slider(*lim.population, value=16, step=1, label="population")
                generations = gr.Slider(*lim.generations, value=8, step=1, label="generations")
                per_layer = gr.Checkbox(label="α per expert and layer (else per expert)")
                fast = gr.Checkbox(label="fast: log-likelihood of the answers only (no generation)")
                with gr.Row():
                    run = gr.Button("Run CEM", variant="primary")
                    cancel = gr.Button("Cancel")
                status = gr.Markdown()
        gr.Markdown(lim.describe(), elem_classes="t2-note")
        with gr.Row():
            plot = gr.Plot(value=cem_figure([]), label="fitness")
            alpha_plot = gr.Plot(value=layer_alpha_figure([0.0] * len(adapter.labels), adapter.labels),
                                 label="fitted α")
        with gr.Row():
            name = gr.Textbox(label="mixture name", value="my-vqa-mixture" if adapter.vision else "my-mixture")
            save = gr.Button("Save as few-shot mixture")
    fitted = gr.State(None)  # this model's last fitted α (the text and vision models' α differ in shape)
    outputs = [plot, status, *panel.sliders, alpha_plot, panel.heat, panel.detail, fitted]

    def cem_fn(sess, task_name, tbl, k, pop, gens, layered, quick, mat, progress=gr.Progress()):
        stop = Lease()
        for step in ticking(run_cem(adapter, task_name, tbl, k, pop, gens, layered, quick, stop, sess), stop):
            if step is None:  # nothing new: the tick that lets Gradio notice a closed tab
                yield (gr.update(),) * len(outputs)
                continue
            history, alpha, line = step
            progress(len(history) / max(int(gens), 1), desc="CEM")
            if alpha is None:  # the best α so far fills the α plot as the search goes; the sliders wait for the end
                best = layer_alpha_figure(history[-1]["alpha"], adapter.labels,
                                          f"best α so far (generation {history[-1]['generation']})")
                shown = {plot: cem_figure(history), status: line, alpha_plot: best}
                yield tuple(shown.get(component, gr.update()) for component in outputs)
            else:
                flat = (alpha.mean(1) if alpha.ndim == 2 else alpha).tolist()
                # the sliders now hold the fitted α: redraw the heatmap for it, as moving a slider does
                yield (cem_figure(history), line, *flat, layer_alpha_figure(alpha, adapter.labels),
                       *scaling_view(adapter, flat, mat), alpha)

    run.click(cem_fn, [page.session, task, table, n, population, generations, per_layer, fast, panel.matrix],
              outputs, api_visibility="private")
    cancel.click(lambda sess: sess.cancel.set(), page.session, None, api_visibility="private")

    def save_fn(sess, wanted, alpha):
        names, line, stored = save_mixture(adapter, sess, wanted, alpha)
        return gr.update(choices=names, value=stored), line, STRATEGIES["fewshot"].title

    save.click(save_fn, [page.session, name, fitted], [panel.mixture, status, panel.strategy],
               api_visibility="private")

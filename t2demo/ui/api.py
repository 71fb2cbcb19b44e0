"""Named endpoints for scripts (gradio_client): /dispatch, /chat, /vqa, /cem, each returning JSON.

A client keeps its session, so a mixture fitted by /cem with a name can then be used by /chat.
Every input is a raw JSON value (a gr.JSON, not a Textbox or Number that would turn a list into
text or fail on "abc" before the app sees it), checked by t2demo.validation before any work; the
image is the uploaded file, unread (vqa.image_file), so its header is checked before decoding.
"""

from __future__ import annotations

import json
from contextlib import closing

import gradio as gr

from t2demo import session as sessions
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import Dispatch, PipelineError
from t2demo.ui.cem_panel import Lease, run_cem, save_mixture, ticking
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import user_errors
from t2demo.ui.vqa import image_file
from t2demo.validation import (
    Turn,
    check_message,
    check_mode,
    check_strategy,
    check_turn,
    clean_name,
)


def dispatch_json(d: Dispatch) -> dict:
    return {"strategy": d.strategy, "category": d.category, "probabilities": d.probabilities, "experts": d.labels,
            "alpha": d.alpha, "base_share": d.base_share, "seconds": d.seconds, "mixture": d.mixture}


def checked_turn(adapter: Adapter, message, history, strategy, mode, alpha, mixture) -> Turn:
    return check_turn(message, history, strategy, mode, alpha, mixture, labels=adapter.labels,
                      num_layers=adapter.svf.num_layers, bounds=adapter.alpha_bounds)


def turn_json(adapter: Adapter, session: sessions.Session, t: Turn, image=None) -> dict:
    """One checked turn: the first pass, the adapted answer and the base answer as JSON."""
    out = {"answer": "", "base_answer": ""}
    for kind, value, _ in sessions.turn(adapter, session, t.message, t.history, t.strategy, t.mode, t.alpha,
                                        t.mixture, image):
        if kind == "first":
            out["first_pass"] = dispatch_json(value)
        else:
            out["answer" if kind == "answer" else "base_answer"] = value
    return out


@user_errors
def answer_json(adapter: Adapter, session: sessions.Session, message, history, strategy, mode, alpha,
                mixture_name=None) -> dict:
    """/chat: one turn without the UI."""
    return turn_json(adapter, session, checked_turn(adapter, message, history, strategy, mode, alpha, mixture_name))


@user_errors
def vqa_endpoint(adapter: Adapter | None, session: sessions.Session, path, question, strategy, mode, alpha) -> dict:
    """/vqa: the request's fields, then the image's header, are checked before the image is decoded."""
    if adapter is None:
        raise PipelineError("The app was started without a vision model (--vlm none).")
    t = checked_turn(adapter, question, None, strategy, mode, alpha, None)
    return turn_json(adapter, session, t, sessions.open_image(path))


@user_errors
def dispatch_endpoint(adapter: Adapter, session: sessions.Session, message, strategy, mode) -> dict:
    """/dispatch: the first pass alone (no mixture, α 0 for the manual strategy)."""
    message, strategy, mode = check_message(message), check_strategy(strategy), check_mode(mode)
    d, _ = sessions.first_pass(adapter, session, message, strategy, mode, [0.0] * len(adapter.experts))
    return dispatch_json(d)


@user_errors
def cem_json(adapter: Adapter, session: sessions.Session, task_name, examples, n, population, generations, per_layer,
             fast, save_as):
    """/cem: fit α (cem_panel.run_cem) and, with save_as, keep it as a mixture of this client's session
    under the name returned as saved_as. Yields the run so far (alpha null until the end) at least
    every cem_panel.TICK_S, so a client that cancels or goes away stops it."""
    name = None if save_as is None or save_as == "" else clean_name(save_as, "mixture")
    stop, alpha = Lease(), None
    out = {"alpha": None, "labels": adapter.labels, "history": [], "status": "starting", "saved_as": None}
    run = run_cem(adapter, task_name, examples, n, population, generations, per_layer, fast, stop, session)
    with closing(ticking(run, stop)) as steps:
        for step in steps:
            if step is not None:
                history, alpha, status = step
                out |= {"history": list(history), "status": status, "alpha": None if alpha is None else alpha.tolist()}
            yield out
    if name is not None:
        yield out | {"saved_as": save_mixture(adapter, session, name, alpha)[2]}


def raw(default=None) -> gr.JSON:
    """A hidden input that hands the request's JSON value over as it is."""
    return gr.JSON(value=None if default is None else json.dumps(default))


def build(page: Page) -> None:
    """Hidden inputs and one trigger per endpoint."""
    rt, session = page.rt, page.session
    with gr.Row(visible=False):
        message, strategy, mode, history, alpha = raw(), raw("prompt-based"), raw("hard"), raw(), raw()
        image, out = image_file(), gr.JSON()
        task_name, examples, save_as, mixture = raw("math-hard"), raw(), raw(""), raw("")  # mixture: a /cem save_as
        n, population, generations, per_layer, fast = raw(8), raw(16), raw(8), raw(False), raw(False)
        trigger = gr.Button()

    trigger.click(lambda sess, msg, strat, md: dispatch_endpoint(rt.text, sess, msg, strat, md),
                  [session, message, strategy, mode], out, api_name="dispatch")
    trigger.click(lambda sess, msg, h, strat, md, a, mix: answer_json(rt.text, sess, msg, h, strat, md, a, mix),
                  [session, message, history, strategy, mode, alpha, mixture], out, api_name="chat")
    trigger.click(lambda sess, path, q, strat, md, a: vqa_endpoint(rt.vision, sess, path, q, strat, md, a),
                  [session, image, message, strategy, mode, alpha], out, api_name="vqa")

    def cem_fn(sess, t, ex, k, p, g, pl, f, s):
        yield from cem_json(rt.text, sess, t, ex, k, p, g, pl, f, s)

    trigger.click(cem_fn, [session, task_name, examples, n, population, generations, per_layer, fast, save_as], out,
                  api_name="cem")

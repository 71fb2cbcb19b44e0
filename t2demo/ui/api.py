"""Named endpoints for scripts (gradio_client): /dispatch, /chat, /vqa, /cem, each returning JSON.

A client keeps its session, so a mixture fitted by /cem with a name can then be used by /chat.
"""

from __future__ import annotations

import gradio as gr

from t2demo import session as sessions
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import Dispatch, PipelineError
from t2demo.ui.cem_panel import run_cem, save_mixture
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import user_errors


def dispatch_json(d: Dispatch) -> dict:
    return {"strategy": d.strategy, "category": d.category, "probabilities": d.probabilities, "experts": d.labels,
            "alpha": d.alpha, "base_share": d.base_share, "seconds": d.seconds, "mixture": d.mixture}


@user_errors
def answer_json(adapter: Adapter, session: sessions.Session, message: str, history: list | None, strategy: str,
                mode: str, alpha: list | None, mixture_name: str | None = None, image=None) -> dict:
    """One turn without the UI: the first pass, the adapted answer and the base answer as JSON."""
    alphas = alpha if alpha is not None else [0.0] * len(adapter.experts)
    out = {"answer": "", "base_answer": ""}
    for kind, value, _ in sessions.turn(adapter, session, message, [tuple(t) for t in history or []], strategy, mode,
                                        alphas, mixture_name, image):
        if kind == "first":
            out["first_pass"] = dispatch_json(value)
        else:
            out["answer" if kind == "answer" else "base_answer"] = value
    return out


@user_errors
def cem_json(adapter: Adapter, session: sessions.Session, task_name: str, examples: list | None, n: int,
             population: int, generations: int, per_layer: bool, fast: bool, save_as: str | None) -> dict:
    """Fit α by CEM and (optionally) keep it as a named mixture of this client's session."""
    table = [list(r) for r in examples or []]
    *_, (history, alpha, status) = run_cem(adapter, task_name, table, n, population, generations, per_layer, fast)
    stored = save_mixture(adapter, session, save_as, alpha)[2] if save_as else None
    return {"alpha": alpha.tolist(), "labels": adapter.labels, "history": history, "status": status,
            "saved_as": stored}


@user_errors
def dispatch_endpoint(adapter: Adapter, session: sessions.Session, message: str, strategy: str, mode: str) -> dict:
    d, _ = sessions.first_pass(adapter, session, sessions.check_message(message), strategy, mode,
                               [0.0] * len(adapter.experts))
    return dispatch_json(d)


@user_errors
def vqa_endpoint(adapter: Adapter | None, session: sessions.Session, path, question: str, strategy: str, mode: str,
                 alpha) -> dict:
    if adapter is None:
        raise PipelineError("The app was started without a vision model (--vlm none).")
    return answer_json(adapter, session, question, None, strategy, mode, alpha, None, sessions.open_image(path))


def build(page: Page) -> None:
    """Hidden components and one trigger per endpoint."""
    rt, session = page.rt, page.session
    with gr.Row(visible=False):
        message, strategy, mode = gr.Textbox(), gr.Textbox(value="prompt-based"), gr.Textbox(value="hard")
        history, alpha, examples, out = gr.JSON(), gr.JSON(), gr.JSON(), gr.JSON()
        image, task_name, save_as = gr.Image(type="filepath"), gr.Textbox(value="math-hard"), gr.Textbox()
        mixture = gr.Textbox(value="")  # the name of a mixture this client saved with /cem
        n, population, generations = gr.Number(value=10), gr.Number(value=16), gr.Number(value=8)
        per_layer, fast = gr.Checkbox(), gr.Checkbox()
        trigger = gr.Button()

    trigger.click(lambda sess, msg, strat, md: dispatch_endpoint(rt.text, sess, msg, strat, md),
                  [session, message, strategy, mode], out, api_name="dispatch")
    trigger.click(lambda sess, msg, h, strat, md, a, mix: answer_json(rt.text, sess, msg, h, strat, md, a, mix or None),
                  [session, message, history, strategy, mode, alpha, mixture], out, api_name="chat")
    trigger.click(lambda sess, path, q, strat, md, a: vqa_endpoint(rt.vision, sess, path, q, strat, md, a),
                  [session, image, message, strategy, mode, alpha], out, api_name="vqa")
    trigger.click(lambda sess, t, ex, k, p, g, pl, f, s: cem_json(rt.text, sess, t, ex, int(k), int(p), int(g), pl, f, s),
                  [session, task_name, examples, n, population, generations, per_layer, fast, save_as], out,
                  api_name="cem")

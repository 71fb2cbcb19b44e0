"""The page: a header, then the tabs in TABS order, then the API endpoints.

A new tab is a module with TITLE and build(page) plus one line in TABS; tabs later in the list can
wire to the panels of earlier ones (page.panels).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from t2demo.runtime import Runtime
from t2demo.session import Session
from t2demo.ui import api, chat, compare, experts_tab, vqa
from t2demo.ui.page_parts import Page

TABS = (
    chat,
    vqa,
    experts_tab,
    compare,
)


def header(rt: Runtime) -> str:
    text, vision = rt.text, rt.vision
    return ("# t2demo · Transformer² self-adaptation\n"
            f"Text model: `{Path(text.svf.base_model_name).name}` · vision model: "  # folder names, not server paths
            f"`{Path(vision.svf.base_model_name).name if vision else 'not loaded'}` · device: `{rt.device}` · "
            f"experts: {', '.join(text.labels) or 'none'}"
            + (f" · classifier: {text.cls_expert.label}" if text.cls_expert else "")
            + "".join(f"\n\n> {note}" for note in rt.notes))


def build_app(rt: Runtime) -> gr.Blocks:
    """The whole page over a loaded runtime (nothing is loaded here)."""
    with gr.Blocks(title="t2demo · Transformer²") as demo:
        page = Page(rt, gr.State(Session()))  # copied for every browser session
        gr.Markdown(header(rt))
        for tab in TABS:
            tab.build(page)
        api.build(page)
    return demo

"""The Chat tab: the adapted and the base answer of every turn side by side (ui.conversation) with
the latest first pass and z' heatmap beside them (all above the fold on a desktop), then the test
questions, the strategy and α controls, the detail plot and the few-shot CEM accordion."""

from __future__ import annotations

import gradio as gr

from t2demo.ui import cem_panel, conversation
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import build_controls, build_detail, build_heatmap, build_readout

TITLE = "Chat"


def build(page: Page) -> None:
    text = page.rt.text
    with gr.Tab(TITLE):
        # one row of two columns, each filled from the top: the answers, tally, test questions and diff
        # on the left, the first pass, heatmap and controls on the right (two rows would leave a band
        # under the tally wherever the right column's first half is the taller)
        with gr.Row():
            with gr.Column(scale=3):
                answers = conversation.build_answers()
                conv = conversation.conversation_of(answers, conversation.build_extras(answers["message"]))
            with gr.Column(scale=2):
                readout, heat = build_readout(), build_heatmap(text)
                panel = build_controls(text, "text model", readout)
                panel.heat = heat
        with gr.Row():
            with gr.Column():
                build_detail(panel)
        page.panels["text"] = panel
        cem_panel.build(page, panel)
    conversation.wire(conv, text, page.session, panel)

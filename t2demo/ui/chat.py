"""The Chat tab: a streaming multi-turn chat on the text model beside its adaptation panel."""

from __future__ import annotations

import gradio as gr

from t2demo.ui import cem_panel
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import build_controls, build_scaling_plots, respond
from t2demo.validation import MAX_MESSAGE_CHARS

TITLE = "Chat"


def build(page: Page) -> None:
    """Chat, the text model's panel, its heatmaps and the few-shot CEM accordion."""
    text = page.rt.text
    with gr.Tab(TITLE):
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Adapted answer (second pass)", height=360)
                message = gr.Textbox(label="Message", placeholder="Ask a math, code or reasoning question, or just say hi",
                                     lines=2, max_length=MAX_MESSAGE_CHARS)
                with gr.Row():
                    send = gr.Button("Send", variant="primary")
                    clear = gr.Button("Clear chat")
                base = gr.Textbox(label="Base model's answer to the same message", lines=4, max_lines=8,
                                  interactive=False)
            with gr.Column(scale=2):
                panel = build_controls(text, "text model")
        build_scaling_plots(panel)
        page.panels["text"] = panel
        cem_panel.build(page, panel)

    def chat_fn(sess, msg, history, strat, md, mix, mat, *alphas):
        for h, b, p, f, vals, hm, dt in respond(text, sess, msg, history, strat, md, alphas, mix, None, mat):
            yield h, b, p, f, *vals, hm, dt, ""

    outputs = [chatbot, base, *panel.outputs, message]
    inputs = [page.session, message, chatbot, panel.strategy, panel.mode, panel.mixture, panel.matrix, *panel.sliders]
    send.click(chat_fn, inputs, outputs, api_visibility="private")
    message.submit(chat_fn, inputs, outputs, api_visibility="private")
    clear.click(lambda: ([], ""), None, [chatbot, base], api_visibility="private")

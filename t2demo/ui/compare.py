"""The Compare tab, for educators: one prompt answered by the base model and by each expert alone,
side by side, each with the heatmap of its z' on the model's fixed colour range."""

from __future__ import annotations

import gradio as gr

from t2demo import comparison, quiz
from t2demo.adapt.adapter import Adapter
from t2demo.adapt.dispatch import PipelineError
from t2demo.ui.conversation import example_samples, random_prompt
from t2demo.ui.figures import heatmap_figure
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import heat_limit_of

TITLE = "Compare experts"


def cell_text(c: comparison.Cell) -> str:
    mark = "" if c.right is None else f"\n\n---\n{quiz.mark(c.right)}"
    return f"**{c.label}**\n\n{c.answer or '…'}{mark}"


def grid_values(adapter: Adapter, message: str, max_new_tokens: int):
    """The grid's answers as they grow (the heatmaps are drawn once, they do not change), or one
    note when the prompt is refused (the grid keeps what it showed)."""
    n = 1 + len(adapter.experts)
    try:
        steps = comparison.compare(adapter, message, int(max_new_tokens))
        first = next(steps)
    except PipelineError as e:
        gr.Warning(str(e), duration=5)
        yield f"**⚠ Not compared:** {e}", *[gr.skip()] * (2 * n)
        return
    limit = heat_limit_of(adapter)
    heats = [heatmap_figure(adapter.svf, c.z, f"z' of {c.label}", limit) for c in first]
    yield "", *map(cell_text, first), *heats
    for grid in steps:
        yield "", *map(cell_text, grid), *[gr.skip()] * n


def build(page: Page) -> None:
    """A prompt, then one column per answerer: its answer above its heatmap."""
    text = page.rt.text
    with gr.Tab(TITLE):
        gr.Markdown("One prompt, answered by the base model and by each expert alone (α = 1 on that expert). "
                    "The heatmaps share one colour range, so their colours compare directly.")
        with gr.Row():
            prompt = gr.Textbox(label="Prompt to compare", lines=1, max_lines=6, scale=4)
            run = gr.Button("Compare", variant="primary", scale=1, min_width=100)
            pick = gr.Button("Random test question", scale=1, min_width=100)
        note = gr.Markdown(elem_classes="t2-note")
        samples, labels = example_samples()
        examples = gr.Dataset(label="Test questions (answers are marked against their references)",
                              components=[prompt], samples=samples, sample_labels=labels, samples_per_page=6)
        answers, heats = [], []
        with gr.Row(elem_classes="t2-grid"):
            for c in comparison.cells(text):
                with gr.Column(min_width=220):  # the heatmap first, so the grid's heatmaps line up
                    heats.append(gr.Plot(value=heatmap_figure(text.svf, c.z, f"z' of {c.label}", heat_limit_of(text)),
                                         label=f"z' heatmap: {c.label}"))
                    answers.append(gr.Markdown(cell_text(c), elem_classes="t2-cell"))

    def compare_fn(message):
        yield from grid_values(text, message, comparison.MAX_NEW_TOKENS)

    for trigger in (run.click, prompt.submit):
        trigger(compare_fn, prompt, [note, *answers, *heats], api_visibility="private")
    pick.click(lambda: random_prompt(), None, prompt, api_visibility="private")
    examples.click(lambda sample: sample[0], examples, prompt, api_visibility="private")

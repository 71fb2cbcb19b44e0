"""The VQA tab: an image and a question on the LLaVA-Next model, with its own adaptation panel.

Test questions from the vision tasks' test split are there to click; a question that is one of them
(its prompt and its image's pixels, quiz.lookup) has both answers marked right or wrong by the task's
own checker with the reference shown, and the tab keeps its own tally, as the Chat tab does. Its
few-shot CEM accordion fits the vision model's α on a vision task's examples (cem_panel)."""

from __future__ import annotations

import itertools

import gradio as gr

from t2demo import quiz
from t2demo import session as sessions
from t2demo.paths import EXAMPLE_IMAGES
from t2demo.tasks import world
from t2demo.ui import cem_panel
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import USER_ERRORS, build_controls, build_scaling_plots, respond
from t2demo.validation import MAX_MESSAGE_CHARS

TITLE = "VQA"


def image_file(**kwargs) -> gr.Image:
    """An image input whose callback gets the uploaded file's path, unread. gr.Image's own
    preprocess opens and converts the file before the app sees it (a small file can decode to
    gigabytes, and a non-image fails as Gradio's "Could not preprocess input"); session.open_image
    reads the header and refuses first. (Not a subclass: Gradio writes a .pyi beside the module
    of every component class.)"""
    image = gr.Image(type="filepath", **kwargs)
    image.preprocess = lambda payload: None if payload is None else payload.path
    return image


def example_question(word: str) -> str:
    """For a shipped example image: a reading question, or a knowledge one if it names a creature."""
    if word in world.NAMES:
        return "The sign names a creature. Where does it live?"
    return "What word is written on the sign?"


def marks(question: quiz.Question | None, adapted: str, base: str, tally: quiz.Tally) -> tuple[str, str]:
    """Right/wrong lines under the two answers (with the reference) for a test question, counted in
    the tally; ("", "") for any other question."""
    if question is None:
        return "", ""
    g = quiz.grade(question, adapted, base)
    tally.add(g)
    return quiz.verdict(g, "adapted"), quiz.verdict(g, "base")


def tally_text(tally: quiz.Tally) -> str:
    return tally.text() if tally.asked else "**Tally**: no test question asked yet — click a test question below."


def ask(adapter, sess, tally, path, question, strategy, mode, mixture, matrix, *alphas):
    """Answer a question about an image: (note, adapted answer, base answer, adapted mark, base mark,
    tally, *panel) as they grow; the marks come once both answers are complete. A refused image or
    question is the note alone (and a toast); the answers and panel stay as they were."""
    try:
        image = sessions.open_image(path)
        steps = respond.__wrapped__(adapter, sess, question, [], strategy, mode, alphas, mixture, image, matrix)
        first = next(steps)
    except USER_ERRORS as e:
        gr.Warning(str(e), duration=5)
        yield f"**⚠ Not asked:** {e}", *[gr.skip()] * (9 + len(adapter.experts))
        return
    test = quiz.lookup(question, vision=True, image=image) if isinstance(question, str) else None
    adapted = base = ""
    for h, b, p, f, vals, hm, dt in itertools.chain([first], steps):
        adapted, base = h[-1]["content"], b
        yield "", adapted, base, "", "", tally_text(tally), p, f, *vals, hm, dt
    yield "", adapted, base, *marks(test, adapted, base, tally), tally_text(tally), *[gr.skip()] * (4 + len(adapter.experts))


def build(page: Page) -> None:
    """Nothing without a vision model (the header says why)."""
    vision = page.rt.vision
    if vision is None:
        return
    with gr.Tab(TITLE):
        with gr.Row():
            with gr.Column(scale=3, elem_classes="t2-examples"):
                with gr.Row():
                    image = image_file(sources=["upload", "clipboard"], label="Image", height=220)
                    with gr.Column():
                        question = gr.Textbox(label="Question", value="What word is written on the sign?",
                                              max_length=MAX_MESSAGE_CHARS)
                        button = gr.Button("Ask", variant="primary")
                        note = gr.Markdown(elem_classes="t2-note")
                with gr.Row(equal_height=True):  # the two answers side by side, alike, each with its mark
                    with gr.Column():
                        answer = gr.Textbox(label="Adapted answer (second pass)", max_lines=6, interactive=False)
                        answer_mark = gr.Markdown()
                    with gr.Column():
                        base = gr.Textbox(label="Base model's answer", max_lines=6, interactive=False)
                        base_mark = gr.Markdown()
                tally = gr.Markdown(tally_text(quiz.Tally()))
                gr.Examples([[path, q.example.prompt] for q, path in quiz.image_files()], [image, question],
                            label="Test questions with known answers (the vqa tasks' test split): click one, then Ask",
                            examples_per_page=12)
                examples = sorted(EXAMPLE_IMAGES.glob("*.png"))
                if examples:
                    gr.Examples([[str(p), example_question(p.stem)] for p in examples], [image, question],
                                label="example images", examples_per_page=12)
            with gr.Column(scale=2):
                panel = build_controls(vision, "vision model")
        build_scaling_plots(panel)
        cem_panel.build(page, panel)  # few-shot CEM on the vision tasks: what the few-shot strategy uses here
    page.panels["vision"] = panel

    counts = gr.State(quiz.Tally())

    def ask_fn(*args):
        yield from ask(vision, *args)

    button.click(ask_fn, [page.session, counts, image, question, panel.strategy, panel.mode, panel.mixture,
                          panel.matrix, *panel.sliders],
                 [note, answer, base, answer_mark, base_mark, tally, *panel.outputs], api_visibility="private")

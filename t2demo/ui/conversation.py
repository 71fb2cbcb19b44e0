"""The side-by-side conversation: base and adapted answers of every turn in two matching columns,
the words that differ, test questions with their references, right/wrong marks and a tally.

The callbacks are plain generators over turn records (t2demo.transcript) and quiz questions
(t2demo.quiz); the widgets only show what they yield. A refused input (an empty message, few-shot
without a mixture) is one line next to the message box and a toast, never an error over the answers.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace

import gradio as gr

from t2demo import quiz
from t2demo import session as sessions
from t2demo.adapt.adapter import Adapter
from t2demo.serving import MAX_TEMPERATURE
from t2demo.transcript import (
    ADAPTED_ONLY,
    BASE_ONLY,
    TurnRecord,
    columns,
    diff_summary,
    pairs,
    word_diff,
)
from t2demo.ui.figures import detail_figure, heatmap_figure, probabilities_figure
from t2demo.ui.panel import (
    USER_ERRORS,
    Panel,
    alpha_of,
    answer_title,
    first_pass_summary,
    heat_limit_of,
    scaling_view,
    slider_values,
)
from t2demo.validation import MAX_MESSAGE_CHARS

DEFAULT_MAX_NEW_TOKENS = sessions.MAX_NEW_TOKENS
DIFF_COLOURS = {ADAPTED_ONLY: "#9be3a7", BASE_ONLY: "#f4b6b6"}


@dataclass
class Request:
    """What one turn is asked with (the panel's settings at the time of sending)."""

    message: str
    strategy: str
    mode: str
    alphas: list[float]
    mixture: str | None = None
    matrix: str | None = None
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0


class StopSwitch:
    """The Stop button's switch for one session's running turn. The turn stops itself when it sees it
    (so its last update, marked stopped, is also the last one shown; cancelling the event from
    outside would race with updates still on their way). Each session copy gets its own Event."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __deepcopy__(self, memo: dict) -> StopSwitch:
        return StopSwitch()


def converse(adapter: Adapter, session: sessions.Session, tally: quiz.Tally, records: list[TurnRecord],
             req: Request, stop: threading.Event | None = None):
    """One turn, streamed: yields (records, note, panel) after the first pass and after every piece
    of either answer; note is "" or the reason the input was refused (then nothing else changes),
    panel is None or (probabilities, first-pass text, slider values, heatmap, detail). Setting `stop`
    ends the turn at the next piece, its partial answers kept and marked stopped (not graded)."""
    record = TurnRecord(req.message.strip() if isinstance(req.message, str) else "",
                        question=quiz.lookup(req.message) if isinstance(req.message, str) else None)
    events = sessions.turn(adapter, session, req.message, pairs(records), req.strategy, req.mode,
                           alpha_of(adapter, req.alphas), req.mixture or None, None, int(req.max_new_tokens),
                           float(req.temperature))
    try:
        kind, d, z = next(events)
    except USER_ERRORS as e:
        yield records, str(e), None
        return
    record.first, records = d, [*records, record]
    yield records, "", (probabilities_figure(d), first_pass_summary(d), slider_values(adapter, d),
                        heatmap_figure(adapter.svf, z, answer_title(d), heat_limit_of(adapter)),
                        detail_figure(adapter.svf, z, req.matrix))
    for kind, text, _ in events:
        setattr(record, "adapted" if kind == "answer" else "base", text)
        if stop is not None and stop.is_set():
            events.close()  # the scheduler drops the rows
            record.stopped = True
            yield records, "", None
            return
        yield records, "", None
    record.done = True
    if record.question is not None:
        record.grade = quiz.grade(record.question, record.adapted, record.base)
        tally.add(record.grade)
    yield records, "", None


def views(records: list[TurnRecord]) -> tuple[list[dict], list[dict], list, str]:
    """The two chat columns and the latest turn's diff (highlighted words and a one-line summary)."""
    adapted, base = columns(records)
    if not records:
        return adapted, base, [], "Differences between the two answers of the latest turn appear here."
    last = records[-1]
    return adapted, base, word_diff(last.base, last.adapted), diff_summary(last.base, last.adapted)


def regenerate_request(records: list[TurnRecord], req: Request) -> tuple[list[TurnRecord], Request]:
    """The last turn dropped and its message asked again (with the current settings)."""
    if not records:
        raise sessions.PipelineError("Nothing to regenerate yet: send a message first.")
    return records[:-1], replace(req, message=records[-1].message)


def random_prompt(seed: int | None = None) -> str:
    """A random test question's prompt (its reference is found again by quiz.lookup when sent)."""
    return quiz.random_question(random.Random(seed)).example.prompt


def example_samples() -> tuple[list[list[str]], list[str]]:
    """The clickable test questions: their prompts and short labels ("math · Eva had 17 cards…")."""
    questions = quiz.examples_interleaved()
    labels = [f"{q.category} · {q.example.prompt.splitlines()[0][:60]}" for q in questions]
    return [[q.example.prompt] for q in questions], labels


@dataclass
class Conversation:
    """The widgets of the side-by-side chat (chat.py lays them out and wires them with `wire`)."""

    adapted: gr.Chatbot
    base: gr.Chatbot
    message: gr.Textbox
    note: gr.Markdown
    send: gr.Button
    stop: gr.Button
    regenerate: gr.Button
    clear: gr.Button
    random: gr.Button
    examples: gr.Dataset
    diff_line: gr.Markdown
    diff: gr.HighlightedText
    tally: gr.Markdown
    max_new_tokens: gr.Slider
    temperature: gr.Slider
    records: gr.State
    counts: gr.State
    switch: gr.State  # StopSwitch


def build_answers() -> dict:
    """The two answer columns, the message box with its buttons, the note and the tally."""
    with gr.Row(equal_height=True):
        # height=None lets them grow with the turns up to max_height, so a first turn shows whole
        # (Chatbot's default height=400 fixes it, and a long question scrolled under the label)
        adapted = gr.Chatbot(label="Adapted answer (second pass)", height=None, min_height=320, max_height=640, buttons=["copy"])
        base = gr.Chatbot(label="Base model's answer (z' = 1)", height=None, min_height=320, max_height=640, buttons=["copy"])
    message = gr.Textbox(label="Message", lines=1, max_lines=8, max_length=MAX_MESSAGE_CHARS,
                         placeholder="Ask a math, code or reasoning question (Enter sends, Shift+Enter: new line)")
    note = gr.Markdown(elem_classes="t2-note")
    with gr.Row(elem_classes="t2-buttons"):
        send = gr.Button("Send", variant="primary", size="md", min_width=70)
        stop = gr.Button("Stop", variant="stop", size="md", min_width=70)
        regenerate = gr.Button("Regenerate", size="md", min_width=70)
        clear = gr.Button("Clear chat", size="md", min_width=70)
        pick = gr.Button("Random question", size="md", min_width=70)
    tally = gr.Markdown(quiz.Tally().text())
    return dict(adapted=adapted, base=base, message=message, note=note, send=send, stop=stop, regenerate=regenerate,
                clear=clear, random=pick, tally=tally)


def build_extras(message: gr.Textbox) -> dict:
    """The test questions to click, the latest turn's diff and the answer length."""
    samples, labels = example_samples()
    examples = gr.Dataset(label="Test questions with known answers: click one, then press Enter",
                          components=[message], samples=samples, sample_labels=labels, samples_per_page=8)
    diff_line = gr.Markdown(views([])[3])
    diff = gr.HighlightedText(label="Differences (latest turn; every turn keeps its own under its answers): "
                                    "green only in the adapted answer, red only in the base",
                              color_map=DIFF_COLOURS, combine_adjacent=True, show_legend=True)
    with gr.Row():
        max_new_tokens = gr.Slider(16, 512, value=DEFAULT_MAX_NEW_TOKENS, step=16, label="max new tokens")
        temperature = gr.Slider(0, MAX_TEMPERATURE, value=0, step=0.05,
                                label="temperature (0 = greedy; both answers sampled alike)")
    return dict(diff_line=diff_line, diff=diff, examples=examples, max_new_tokens=max_new_tokens,
                temperature=temperature)


def conversation_of(answers: dict, extras: dict) -> Conversation:
    return Conversation(**answers, **extras, records=gr.State([]), counts=gr.State(quiz.Tally()),
                        switch=gr.State(StopSwitch()))


def outputs_of(c: Conversation, panel: Panel) -> list:
    return [c.records, c.adapted, c.base, c.diff, c.diff_line, c.tally, c.note, c.message, *panel.outputs]


def shown(adapter: Adapter, tally: quiz.Tally, steps):
    """converse's steps as the values of outputs_of: a refusal changes only the note (and toasts)."""
    n_panel = 4 + len(adapter.experts)
    for i, (records, note, panel) in enumerate(steps):
        if note:
            gr.Warning(note, duration=5)
            yield records, *[gr.skip()] * 5, f"**⚠ Not sent:** {note}", gr.skip(), *[gr.skip()] * n_panel
            return
        values = [gr.skip()] * n_panel if panel is None else [panel[0], panel[1], *panel[2], panel[3], panel[4]]
        message = "" if panel is not None else gr.skip()  # cleared once the turn is accepted
        yield records, *views(records), tally.text(), "", message, *values


def wire(c: Conversation, adapter: Adapter, session: gr.State, panel: Panel) -> None:
    """Send (button or Enter), Stop, Regenerate, Clear, a random question and the examples."""
    inputs = [session, c.switch, c.counts, c.records, c.message, panel.strategy, panel.mode, panel.mixture,
              panel.matrix, c.max_new_tokens, c.temperature, *panel.sliders]
    outputs = outputs_of(c, panel)

    def send_fn(sess, switch, tally, records, msg, strat, md, mix, mat, mnt, temp, *alphas):
        switch.event.clear()
        req = Request(msg, strat, md, list(alphas), mix, mat, mnt, temp)
        yield from shown(adapter, tally, converse(adapter, sess, tally, records, req, switch.event))

    def regenerate_fn(sess, switch, tally, records, msg, strat, md, mix, mat, mnt, temp, *alphas):
        if not records:
            yield from shown(adapter, tally, [(records, "Nothing to regenerate yet: send a message first.", None)])
            return
        switch.event.clear()
        records, req = regenerate_request(records, Request(msg, strat, md, list(alphas), mix, mat, mnt, temp))
        yield from shown(adapter, tally, converse(adapter, sess, tally, records, req, switch.event))

    runs = [c.send.click(send_fn, inputs, outputs, api_visibility="private"),
            c.message.submit(send_fn, inputs, outputs, api_visibility="private"),
            c.regenerate.click(regenerate_fn, inputs, outputs, api_visibility="private")]
    c.stop.click(lambda switch: switch.event.set(), c.switch, None, queue=False, api_visibility="private")

    def clear_fn(matrix, *alphas):
        heat, _ = scaling_view(adapter, alphas, matrix)  # the heatmap no longer shows the last answer's z'
        return [], *views([]), "", probabilities_figure(None), "*The first pass appears here after a message.*", heat

    c.clear.click(clear_fn, [panel.matrix, *panel.sliders],
                  [c.records, c.adapted, c.base, c.diff, c.diff_line, c.note, panel.probs, panel.first, panel.heat],
                  cancels=runs, api_visibility="private")
    c.random.click(lambda: random_prompt(), None, c.message, api_visibility="private")
    c.examples.click(lambda sample: sample[0], c.examples, c.message, api_visibility="private")

"""Questions with references, turn records, the side-by-side conversation and readable plots, as plain
functions (the browser test drives the same through the page). Tiny random models (conftest)."""

from __future__ import annotations

import random
import threading

import gradio as gr
import pytest

from t2demo import comparison, generation, quiz, tasks
from t2demo.adapt.dispatch import Dispatch
from t2demo.session import Session
from t2demo.transcript import (
    ADAPTED_ONLY,
    BASE_ONLY,
    TurnRecord,
    alpha_text,
    columns,
    word_diff,
)
from t2demo.ui import compare, conversation, figures, panel


def last(gen):
    *_, final = gen
    return final


def math_question() -> quiz.Question:
    return quiz.examples_by_category()["math"][0]


def test_answers_are_marked_by_the_tasks_checker_and_tallied():
    q = math_question()
    right, wrong = q.example.reference, str(int(q.example.reference) + 2)
    g = quiz.grade(q, f"The answer is {wrong}.", f"So {right}.")
    assert (g.adapted, g.base) == (False, True)
    tally = quiz.Tally()
    tally.add(g)
    tally.add(quiz.grade(q, right, right))
    assert "base right 2/2 · adapted right 1/2" in tally.text()
    assert quiz.lookup("  " + q.example.prompt + "\n") == q  # a typed test prompt is found again
    assert quiz.lookup("What is 3 + 4?") is None


def test_examples_cover_every_text_category_and_random_questions_come_from_the_test_split():
    grouped = quiz.examples_by_category()
    assert set(grouped) == {t.category for t in tasks.TASKS.values() if not t.vision}
    q = quiz.random_question(random.Random(3))
    assert q.example in tasks.TASKS[q.task].examples("test", quiz.POOL)
    assert not tasks.TASKS[q.task].vision


def test_alpha_text_rounds_and_explains_the_base_share():
    d = Dispatch({}, None, [0.9999901, 0.0], 0.01, "manual", ["math", "code"])
    assert "math 1.00" in alpha_text(d) and "0.9999" not in alpha_text(d)
    over = alpha_text(Dispatch({}, None, [0.8, 0.58], 0.01, "manual", ["math", "code"]))
    assert "Σα = 1.38 > 1" in over and "base share 1 − Σα = -0.38" in over
    assert "base share 1 − Σα = 0.40" in alpha_text(Dispatch({}, None, [0.6, 0], 0, "manual", ["math", "code"]))


def test_columns_match_turn_for_turn_and_carry_marks_and_first_pass():
    q = math_question()
    d = Dispatch({"math": 0.9, "code": 0.1}, "math", [1.0, 0.0], 0.02, "prompt", ["math", "code"])
    r = TurnRecord(q.example.prompt, d, "21", q.example.reference, q, quiz.grade(q, "21", q.example.reference), True)
    adapted, base = columns([r, TurnRecord("hi", d, "hello", "hey", done=True)])
    assert len(adapted) == len(base) == 8 and [m["role"] for m in adapted] == [m["role"] for m in base]
    assert "read as math 0.90" in adapted[1]["content"] and "experts math" in adapted[1]["content"]
    assert adapted[2]["content"].startswith("21") and "✗ wrong" in adapted[2]["content"]
    assert "✓ right" in base[2]["content"] and q.example.reference in base[2]["content"]
    assert "✓" not in adapted[6]["content"]  # not a test question: no mark
    assert adapted[3]["metadata"]["title"].startswith("Word diff of this turn")  # each turn: user, note, answer, diff


def test_word_diff_marks_what_each_answer_has_alone():
    parts = word_diff("The answer is 18.", "The answer is 21.")
    assert ("18.", BASE_ONLY) in parts and ("21.", ADAPTED_ONLY) in parts
    assert "".join(t for t, c in parts if c != BASE_ONLY) == "The answer is 21."


def test_every_turn_keeps_its_own_word_diff_in_both_columns():
    from t2demo.transcript import diff_markup

    first = TurnRecord("q1", adapted="The answer is 21.", base="The answer is 18.", done=True)
    second = TurnRecord("q2", adapted="def f(x):\n    return x * 2", base="def f(x):\n    return x + x", done=True)
    same = TurnRecord("q3", adapted="hello", base="hello", done=True)
    adapted, base = columns([first, second, same, TurnRecord("q4", adapted="still", base="going")])  # q4 streams
    diffs = [m for m in adapted if m.get("metadata", {}).get("title", "").startswith("Word diff of this turn")]
    assert len(diffs) == 3 and diffs == [m for m in base if m.get("metadata", {}).get("title", "").startswith("Word")]
    assert [m["role"] for m in adapted] == [m["role"] for m in base]  # the columns still line up
    one, two, three = (d["content"] for d in diffs)
    assert "<del" in one and ">18&#46;</del>" in one and ">21&#46;</ins>" in one and "q2" not in one
    assert "+" not in two and "&#43;" in two and "&#42;" in two  # each turn's own words, markdown-escaped
    assert "&nbsp;&nbsp;&nbsp; return" in two and "<br>" in two  # code keeps its lines and indentation
    assert "identical" in diffs[2]["metadata"]["title"] and "<ins" not in three
    assert diff_markup("a b", "a c").count("<ins") == 1


def test_converse_streams_both_answers_grades_and_keeps_history(app_runtime):
    text, tally, q = app_runtime.text, quiz.Tally(), math_question()
    req = conversation.Request(q.example.prompt, "prompt-based", "hard", [0, 0, 0], max_new_tokens=12)
    steps = list(conversation.converse(text, Session(), tally, [], req))
    records, note, first_panel = steps[0]
    assert note == "" and first_panel is not None and "z' of this answer (prompt)" in first_panel[3].layout.title.text
    records, *_ = steps[-1]
    r = records[-1]
    assert r.done and r.grade is not None and tally.asked == 1 and r.first.strategy == "prompt"
    assert len(steps) >= 3  # the first pass, then answer pieces as they come
    again = conversation.Request("and now?", "manual", "hard", [0, 1, 0], max_new_tokens=4)
    records, *_ = last(conversation.converse(text, Session(), tally, records, again))
    assert len(records) == 2 and records[1].first.strategy == "manual" and records[1].grade is None
    assert tally.asked == 1


def test_a_refused_input_is_a_note_and_changes_nothing_else(app_runtime):
    text, records = app_runtime.text, [TurnRecord("old", done=True)]
    for msg, strategy, needle in (("", "prompt-based", "Type a message"), ("hi", "few-shot", "needs a mixture")):
        steps = list(conversation.converse(text, Session(), quiz.Tally(), records,
                                           conversation.Request(msg, strategy, "hard", [0, 0, 0])))
        assert len(steps) == 1 and steps[0][0] is records and needle in steps[0][1] and steps[0][2] is None


def test_regenerate_asks_the_last_message_again():
    records = [TurnRecord("a", done=True), TurnRecord("b", done=True)]
    kept, req = conversation.regenerate_request(records, conversation.Request("", "manual", "hard", [0]))
    assert [r.message for r in kept] == ["a"] and req.message == "b"


def test_stop_ends_the_turn_at_the_next_piece_and_marks_it(app_runtime, monkeypatch):
    text, stop, pieces = app_runtime.text, threading.Event(), []

    def endless(enc, zs, max_new_tokens, min_new_tokens=0, temperature=0.0):
        try:
            while True:
                yield len(pieces) % 2, "on "
                pieces.append(1)
        finally:
            pieces.append("closed")

    monkeypatch.setattr(text.scheduler, "submit", endless)
    steps = conversation.converse(text, Session(), quiz.Tally(), [], conversation.Request("go", "manual", "hard",
                                                                                          [0, 0, 0]), stop)
    next(steps), next(steps), next(steps)
    stop.set()
    records, *_ = last(steps)
    assert records[-1].stopped and not records[-1].done and pieces[-1] == "closed"
    assert "(stopped)" in columns(records)[0][2]["content"] and records[-1].adapted.startswith("on")


def test_heatmaps_share_one_fixed_colour_range_and_say_which_alpha(app_runtime):
    text = app_runtime.text
    a, _ = panel.scaling_view(text, [0, 1, 0], None)
    b, _ = panel.scaling_view(text, [0.3, 0, 0.2], None)
    limit = panel.heat_limit_of(text)
    assert (a.data[0].zmin, a.data[0].zmax) == (b.data[0].zmin, b.data[0].zmax) == (-limit, limit)
    peak = max(abs(v) for e in text.experts for row in text.svf.scaling_grid(e.z)[1].nan_to_num(0).tolist() for v in row)
    assert peak <= limit < 2.5 * peak and f"±{limit:g}" in a.data[0].colorbar.title.text
    assert "math 1.00" in a.layout.title.text and "code 0.30, reasoning 0.20" in b.layout.title.text


def test_detail_plot_shows_both_spectra_full_log_ticks_axis_titles_and_the_base_line(app_runtime):
    text = app_runtime.text
    name = panel.matrix_name(text, 1, panel.matrix_kinds(text)[0])
    assert text.svf.layer_of(name) == 1
    fig = figures.detail_figure(text.svf, text.experts[0].z, name)
    before, after = fig.data[1], fig.data[2]
    assert before.line.width > after.line.width and after.line.dash == "dash"  # the wide base stays visible
    assert fig.layout.yaxis2.type == "log" and all(float(t) == v for t, v in zip(fig.layout.yaxis2.ticktext,
                                                                                     fig.layout.yaxis2.tickvals))
    assert fig.layout.yaxis.title.text == "z'" and fig.layout.yaxis2.title.text.startswith("σ")
    assert any(s.y0 == 1 == s.y1 for s in fig.layout.shapes)  # the z' = 1 line
    assert figures.log_ticks(0.15, 3) == ([0.2, 0.5, 1, 2], ["0.2", "0.5", "1", "2"])


def test_experts_norms_start_at_zero(app_runtime):
    fig = figures.norms_figure(app_runtime.text.svf, app_runtime.text.experts[0])
    assert fig.data[0].zmin == 0 and fig.data[0].zmax > 0 and fig.layout.title.text.startswith("‖z − 1‖ per matrix")


@pytest.mark.parametrize("x, nice", [(0.0012, 0.002), (0.02, 0.02), (0.031, 0.05), (0.21, 0.25), (0.6, 1.0)])
def test_nice_ceiling(x, nice):
    assert figures.nice_ceiling(x) == pytest.approx(nice)


def test_compare_answers_with_the_base_model_and_each_expert_alone_in_one_batch(app_runtime):
    text, q = app_runtime.text, math_question()
    batches = len(text.scheduler.batches)
    grid = last(comparison.compare(text, q.example.prompt, max_new_tokens=6))
    assert [c.label for c in grid] == ["base model"] + [f"{lab} expert alone" for lab in text.labels]
    assert list(text.scheduler.batches)[batches:] == [1 + len(text.labels)]  # one batch for the whole grid
    with text.svf.adapted(text.experts[1].z):
        alone = generation.generate(text.lm, [q.example.prompt], max_new_tokens=6)[0]
    assert grid[2].answer == alone and all(c.right is not None for c in grid)
    note, *cells = last(compare.grid_values(text, "", 6))  # a refused prompt: a note, the grid unchanged
    assert "Type a message" in note and all(c is gr.skip() or c == gr.skip() for c in cells)


def test_strategies_a_model_cannot_run_are_not_offered_and_the_reason_is_given(app_runtime):
    offered, why = panel.strategy_choices(app_runtime.text)
    assert "classification expert" in offered and why == ""
    offered, why = panel.strategy_choices(app_runtime.vision)  # the tiny vision model has no cls expert
    assert "classification expert" not in offered and "no classification expert" in why


def test_export_is_an_archive_outside_the_working_folder_and_transferred_experts_are_marked(app_runtime, tmp_path,
                                                                                            monkeypatch):
    import zipfile
    from pathlib import Path

    from t2demo.ui import experts_tab

    monkeypatch.chdir(tmp_path)
    archive, line = experts_tab.export_archive(app_runtime.text, [0, 1, 0], "my model")
    assert archive.endswith("my-model.zip") and "config.json" in " ".join(zipfile.ZipFile(archive).namelist())
    assert list(tmp_path.iterdir()) == [] and str(Path(archive).parent) not in line  # no server path shown
    assert not Path(archive).with_suffix("").exists()  # only the archive is left
    sources = [row[1] for row in experts_tab.experts_table(app_runtime.vision, Session())]
    assert sources[0] == "loaded" and all(s.startswith("transferred from ") for s in sources[1:4])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not an expert")
    names, note = experts_tab.upload_note(app_runtime.text, Session(), str(bad))
    assert names is None and note.startswith("**⚠ Not loaded:**")


def test_sampling_is_per_row_and_greedy_stays_the_default(app_runtime):
    from types import SimpleNamespace

    import torch

    from t2demo import serving

    def texts(rows) -> list[str]:
        out = ["", ""]
        for row, piece in rows:
            out[row] += piece
        return out

    text = app_runtime.text
    enc = text.encode("What is 3 + 4?", None, (), 24)
    greedy = texts(text.scheduler.submit(enc, [None, None], 24))
    assert texts(text.scheduler.submit(enc, [None, None], 24, temperature=0.0)) == greedy
    torch.manual_seed(0)
    assert texts(text.scheduler.submit(enc, [None, None], 24, temperature=2.0)) != greedy
    with pytest.raises(ValueError, match="temperature"):
        text.scheduler.submit(enc, [None], 4, temperature=5)
    rows = [(SimpleNamespace(temperature=t), 0) for t in (0.0, 1.0)]  # a greedy and a sampled request
    scores = torch.randn(2, 7)
    out = serving._RowSampling(SimpleNamespace(rows=rows))(None, scores)
    assert torch.equal(out[0], scores[0]) and torch.isfinite(out[1]).sum() == 1

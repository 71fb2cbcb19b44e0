"""The app's callbacks as plain functions, then the launched app through gradio_client (named
endpoints, parallel sessions). Tiny random models with seeded random experts."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest
import torch
from PIL import Image
from transformers import AutoModelForCausalLM

import app
from conftest import APP_LABELS
from t2demo import generation
from t2demo.adapt.dispatch import Dispatch, PipelineError
from t2demo.experts import load_expert, save_expert
from t2demo.session import MAX_MESSAGE_CHARS, MAX_NEW_TOKENS, Session, mixture_file, open_image
from t2demo.ui import experts_tab, figures
from t2demo.ui.cem_panel import run_cem, save_mixture
from t2demo.ui.page import build_app
from t2demo.ui.panel import history_pairs, respond, scaling_view, slider_values

LABELS = APP_LABELS


@pytest.fixture(scope="module")
def runtime(app_runtime):
    return app_runtime


@pytest.fixture
def session():
    return Session()


def last(gen):
    *_, final = gen
    return final


def test_runtime_loads_experts_and_transfers_text_experts_to_the_vision_model(runtime):
    assert runtime.text.labels == list(LABELS) and runtime.text.cls_expert.label == "cls"
    assert runtime.vision.labels == ["vqa", *LABELS]  # its own, then the text experts transferred
    assert runtime.notes == []


def test_chat_turn_streams_first_pass_then_both_answers(runtime, session):
    text = runtime.text
    steps = list(respond(text, session, "What is 3 + 4?", [], "prompt-based", "hard", [0, 0, 0]))
    history, base, probs, first, sliders, heat, detail = steps[-1]
    assert len(steps) >= 3 and history[0] == {"role": "user", "content": "What is 3 + 4?"}
    assert "First pass" in first and len(sliders) == 3 and isinstance(probs, gr.components.Plot.data_model) is False
    d, z = text.first_pass("What is 3 + 4?", strategy="prompt")
    with text.svf.adapted(z):
        adapted = generation.generate(text.lm, ["What is 3 + 4?"], max_new_tokens=MAX_NEW_TOKENS)[0]
    expected_base = generation.generate(text.lm, ["What is 3 + 4?"], max_new_tokens=MAX_NEW_TOKENS)[0]
    assert history[-1]["content"] == adapted and base == expected_base
    assert sliders == slider_values(text, d)
    assert sum(probs.data[0].y) == pytest.approx(1, abs=1e-4)  # the bar chart holds the full distribution


def test_multi_turn_history_reaches_the_model(runtime, session):
    history, *_ = last(respond(runtime.text, session, "hello", [], "manual", "hard", [0, 0, 0]))
    again, *_ = last(respond(runtime.text, session, "and again", history, "manual", "hard", [0, 0, 0]))
    assert [m["role"] for m in again] == ["user", "assistant"] * 2
    pairs = history_pairs(history)
    expected = generation.generate(runtime.text.lm, ["and again"], max_new_tokens=1)
    enc = generation.encode_prompts(runtime.text.lm, ["and again"], history=pairs)
    assert enc["input_ids"].shape[1] > generation.encode_prompts(runtime.text.lm, ["and again"])["input_ids"].shape[1]
    assert isinstance(expected[0], str)


def test_manual_alpha_zero_is_the_base_model(runtime, session):
    history, base, *_ = last(respond(runtime.text, session, "Name a creature.", [], "manual", "hard", [0, 0, 0]))
    assert history[-1]["content"] == base


def test_moving_a_slider_changes_the_heatmap(runtime):
    text = runtime.text
    name = text.svf.names[0]
    base_heat, base_detail = scaling_view(text, [0, 0, 0], name)
    math_heat, math_detail = scaling_view(text, [0, 1, 0], name)
    assert all(v == 0 for row in base_heat.data[0].z for v in row)
    assert any(abs(v) > 1e-3 for row in math_heat.data[0].z for v in row)
    kinds, grid = text.svf.scaling_grid(text.experts[1].z)
    assert [list(r) for r in math_heat.data[0].z] == grid.tolist() and list(math_heat.data[0].x) == kinds
    assert list(math_detail.data[0].y) == text.experts[1].z[name].tolist()  # z' along the index


def test_soft_mode_fills_sliders_with_probabilities(runtime, session):
    *_, first, sliders, _, _ = last(respond(runtime.text, session, "What is 3 + 4?", [], "prompt-based", "soft", [0, 0, 0]))
    d, _ = runtime.text.first_pass("What is 3 + 4?", strategy="prompt", mode="soft")
    assert sliders == pytest.approx([d.probabilities[lab] for lab in LABELS], abs=5e-4)  # rounded to 3 decimals
    assert "base share" in first


@pytest.mark.parametrize("message, needle", [("", "Type a message"), ("   ", "Type a message"),
                                             ("x" * (MAX_MESSAGE_CHARS + 1), "limit")])
def test_bad_messages_are_clear_errors(runtime, session, message, needle):
    with pytest.raises(gr.Error, match=needle):
        last(respond(runtime.text, session, message, [], "prompt-based", "hard", [0, 0, 0]))


def test_a_message_longer_than_the_context_is_refused(runtime, session):
    limit = runtime.text.model.config.max_position_embeddings
    with pytest.raises(gr.Error, match="context window"):
        last(respond(runtime.text, session, "1 " * limit, [], "prompt-based", "hard", [0, 0, 0]))


def test_fewshot_without_a_mixture_is_a_clear_error(runtime, session):
    with pytest.raises(gr.Error, match="Few-shot needs a mixture"):
        last(respond(runtime.text, session, "hi", [], "few-shot", "hard", [0, 0, 0]))


def test_images_are_checked(tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    with pytest.raises(PipelineError, match="not an image"):
        open_image(str(not_image))
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 4000)).save(huge)
    with pytest.raises(PipelineError, match="megapixels"):
        open_image(str(huge))
    with pytest.raises(PipelineError, match="Add an image"):
        open_image(None)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (30, 90)).save(rgba)
    assert open_image(str(rgba)).mode == "RGB"


def test_vqa_turn(runtime, session, tmp_path):
    path = tmp_path / "sign.png"
    Image.new("RGB", (96, 64), "white").save(path)
    image = open_image(str(path))
    history, base, _, first, sliders, heat, _ = last(
        respond(runtime.vision, session, "What word is on the sign?", [], "manual", "hard", [0, 0, 0, 0], image=image))
    assert history[-1]["content"] == base and len(sliders) == 4 and "manual" in first
    with pytest.raises(gr.Error, match="text-only model"):
        last(respond(runtime.text, session, "What is on it?", [], "manual", "hard", [0, 0, 0], image=image))


def test_vqa_test_questions_are_marked_with_the_reference_and_tallied(runtime, session):
    from t2demo import quiz
    from t2demo.ui import vqa

    files = quiz.image_files()
    assert {q.task for q, _ in files} == {"vqa", "vqa-knowledge"}  # both vision tasks, from the test split
    q, path = files[0]
    assert q.example in quiz.pool(q.task) and quiz.lookup(q.example.prompt, vision=True, image=open_image(path)) == q
    tally = quiz.Tally()
    steps = list(vqa.ask(runtime.vision, session, tally, path, q.example.prompt, "manual", "hard", None, None,
                         0, 0, 0, 0))
    note, adapted, base, adapted_mark, base_mark, tally_line, *_ = steps[-1]
    g = quiz.grade(q, adapted, base)
    assert note == "" and tally.asked == 1 and all(m == "" for s in steps[:-1] for m in s[3:5])  # marked at the end
    assert adapted_mark == f"{quiz.mark(g.adapted)} · reference **{q.example.reference}**"
    assert base_mark == f"{quiz.mark(g.base)} · reference **{q.example.reference}**"
    assert tally_line.startswith("**Tally** over 1 test question: base right")
    other, _ = files[1]  # the same image with another question, or another image: not a test question
    *_, last_step = vqa.ask(runtime.vision, session, tally, path, other.example.prompt + " Really?", "manual", "hard",
                            None, None, 0, 0, 0, 0)
    assert last_step[3:5] == ("", "") and tally.asked == 1
    assert quiz.grade(q, q.example.reference, "").adapted  # the checker takes the reference itself


def test_cem_fits_saves_and_serves_as_the_fewshot_mixture(runtime, session):
    table = [["What is 1 + 1?", "2"], ["What is 2 + 2?", "4"], ["", ""]]
    steps = list(run_cem(runtime.text, "custom", table, 0, population=4, generations=2, per_layer=False, fast=True))
    history, alpha, status = steps[-1]
    assert [h["generation"] for h in history] == [1, 2] and alpha.shape == (3,) and "done" in status
    assert all(a is None for _, a, _ in steps[:-1])  # live updates come before the result
    assert f"(base model {history[0]['base']:.4f})" in status
    figure = figures.cem_figure(history)
    assert [t.name for t in figure.data] == ["best", "mean", "base model (α = 0)"]
    assert list(figure.data[2].y) == [history[0]["base"]] * 2
    names, _, stored = save_mixture(runtime.text, session, "my mix", alpha)
    assert stored == "my-mix"
    assert names == ["my-mix"]
    *_, first, sliders, _, _ = last(respond(runtime.text, session, "What is 5 + 5?", [], "few-shot", "hard",
                                                [0, 0, 0], "my-mix"))
    assert "few" in first and sliders == pytest.approx(alpha.tolist(), abs=5e-4)  # rounded to 3 decimals


def test_cem_on_a_vision_task_fits_the_vision_model_for_the_vqa_tabs_fewshot_strategy(runtime, session):
    """Few-shot CEM on image examples (vqa's validation split) fits the vision model's α; saved, it
    is the VQA tab's few-shot mixture, and its answer is the one the mixture's z' gives."""
    from t2demo import quiz
    from t2demo.ui import vqa

    vision = runtime.vision
    history, alpha, status = last(run_cem(vision, "vqa", None, 2, population=4, generations=2, per_layer=False,
                                          fast=False))
    assert alpha.shape == (len(vision.labels),) and status.startswith("done") and len(history) == 2
    _, _, stored = save_mixture(vision, session, "signs", alpha)
    assert stored in session.mixtures["vision"] and session.mixtures["text"] == {}  # kept for the vision model
    q, path = quiz.image_files()[0]
    steps = list(vqa.ask(vision, session, quiz.Tally(), path, q.example.prompt, "few-shot", "hard", "signs", None,
                         *[0] * len(vision.labels)))
    (note, adapted, *_), first = steps[-1], steps[0][7]  # the first pass's line comes with the first step
    assert note == "" and "**fewshot**" in first and "few-shot mixture" in first
    with vision.svf.adapted(session.mixture(vision, "signs").z):
        expected = generation.generate(vision.lm, [q.example.prompt], [open_image(path)], max_new_tokens=MAX_NEW_TOKENS)
    assert adapted == expected[0]
    with pytest.raises(gr.Error, match="needs images, and CEM fits the text model"):
        last(run_cem(runtime.text, "vqa", None, 2, 4, 1, False, True))
    for task in ("math", "custom"):
        with pytest.raises(gr.Error, match="has no images"):
            last(run_cem(vision, task, [["a", "b"], ["c", "d"]], 2, 4, 1, False, True))


def test_cem_per_layer_and_cancel(runtime):
    cancel = threading.Event()
    gen = run_cem(runtime.text, "math", None, 2, population=4, generations=5, per_layer=True, fast=True, cancel=cancel)
    history, alpha, _ = next(gen)
    assert alpha is None and len(history) == 1
    cancel.set()
    history, alpha, status = last(gen)
    assert "cancelled" in status and len(history) < 5 and alpha.shape == (3, runtime.text.svf.num_layers)


def test_cem_needs_two_examples(runtime):
    with pytest.raises(gr.Error, match="at least 2 examples"):
        last(run_cem(runtime.text, "custom", [["What is 1 + 1?", "2"]], 0, 4, 1, False, True))


def test_expert_upload_download_and_refusals(runtime, session, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(gr.Error):
        experts_tab.upload_expert(runtime.text, session, str(bad))
    assert session.mixtures_of(runtime.text) == {}  # a refusal changes nothing
    path = mixture_file(runtime.text, [0.5, 0, 0.5])
    expert = load_expert(path, runtime.text.svf)
    assert expert.notes["alpha"] == [0.5, 0, 0.5]
    names, status = experts_tab.upload_expert(runtime.text, session, path)
    assert names == ["uploaded:mixture:code+math+reasoning"] and "loaded" in status
    rows = experts_tab.experts_table(runtime.text, session)
    assert [r[0] for r in rows] == [*LABELS, "cls", "mixture:code+math+reasoning"]


def test_an_uploaded_expert_answers_as_the_fewshot_mixture(runtime, session, tmp_path):
    path = tmp_path / "math.safetensors"
    save_expert(runtime.text.experts[1], path)
    names, _ = experts_tab.upload_expert(runtime.text, session, str(path))
    history, _, _, first, sliders, _, _ = last(respond(runtime.text, session, "What is 5 + 5?", [], "few-shot",
                                                           "hard", [0, 0, 0], names[0]))
    assert "the z' of uploaded:math" in first and sliders == [0.0, 0.0, 0.0]
    with runtime.text.svf.adapted(runtime.text.experts[1].z):
        expected = generation.generate(runtime.text.lm, ["What is 5 + 5?"], max_new_tokens=MAX_NEW_TOKENS)
    assert history[-1]["content"] == expected[0]


def test_probabilities_figure_marks_the_category_served():
    """A text prompt read as vqa: the bar of the category served is marked, and the title says why."""
    probs = {"math": 0.0, "code": 0.49, "reasoning": 0.0, "vqa": 0.51, "other": 0.0}
    served = Dispatch(probs, "code", [0.0, 1.0, 0.0], 0.0, "prompt", ["math", "code", "reasoning"])
    fig = figures.probabilities_figure(served)
    assert fig.data[0].marker.color == ("#1f77b4", "#d62728", "#1f77b4", "#1f77b4", "#1f77b4")
    assert fig.layout.title.text == "first pass (prompt): code<br><sup>read as vqa, which needs an image</sup>"
    as_read = figures.probabilities_figure(Dispatch(probs, "vqa", [0.0, 0.0, 0.0], 0.0, "prompt", ["math"]))
    assert as_read.layout.title.text == "first pass (prompt): vqa"


def test_similarity_and_norms(runtime):
    fig = figures.similarity_figure(runtime.text.experts)
    sims = fig.data[0].z
    assert [round(sims[i][i], 6) for i in range(3)] == [1.0, 1.0, 1.0] and all(abs(v) < 1 for v in (sims[0][1], sims[1][2]))
    norms = figures.norms_figure(runtime.text.svf, runtime.text.experts[0]).data[0].z
    assert all(v > 0 for row in norms for v in row)


def test_export_writes_a_loadable_adapted_checkpoint(runtime, tmp_path):
    folder = experts_tab.export_model(runtime.text, [0, 1, 0], "my model", tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(folder)
    name = runtime.text.svf.names[0]
    expected = runtime.text.svf.compose(name, runtime.text.experts[1].z[name])
    assert torch.allclose(loaded.get_parameter(name), expected, atol=1e-6)
    assert not torch.equal(runtime.text.model.get_parameter(name), expected)  # the app's weights are back to base
    with pytest.raises(gr.Error, match="already exists"):
        experts_tab.export_model(runtime.text, [0, 1, 0], "my model", tmp_path)


def test_bad_model_folder_is_a_clear_exit(tmp_path, capsys):
    with pytest.raises(SystemExit, match="not a Hugging Face model folder"):
        app.main(["--model", str(tmp_path), "--vlm", "none"])


# ----------------------------------------------------------------------------- the launched app

@pytest.fixture(scope="module")
def client(runtime):
    from gradio_client import Client

    demo = build_app(runtime)
    demo.queue(default_concurrency_limit=4)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    yield Client(url, verbose=False)
    demo.close()


def test_api_dispatch_and_chat(client, runtime):
    d = client.predict("What is 3 + 4?", "prompt-based", "hard", api_name="/dispatch")
    assert set(d["probabilities"]) == {"math", "code", "reasoning", "vqa", "other"} and d["experts"] == list(LABELS)
    out = client.predict("What is 3 + 4?", [], "manual", "hard", [0, 1, 0], api_name="/chat")
    z = runtime.text.z_from_alpha([0, 1, 0])
    with runtime.text.svf.adapted(z):
        expected = generation.generate(runtime.text.lm, ["What is 3 + 4?"], max_new_tokens=MAX_NEW_TOKENS)[0]
    assert out["answer"] == expected and out["first_pass"]["alpha"] == [0, 1, 0]


def test_api_vqa_and_cem(client, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "sign.png"
    Image.new("RGB", (64, 64), "white").save(path)
    out = client.predict(handle_file(str(path)), "What word is on the sign?", "manual", "hard", [0, 0, 0, 0], api_name="/vqa")
    assert out["answer"] == out["base_answer"]
    fit = client.predict("custom", [["What is 1 + 1?", "2"], ["What is 2 + 2?", "4"]], 2, 4, 2, False, True, "m",
                         api_name="/cem")
    assert len(fit["alpha"]) == 3 and len(fit["history"]) == 2 and fit["saved_as"] == "m"
    used = client.predict("What is 3 + 3?", [], "few-shot", "hard", None, "m", api_name="/chat")["first_pass"]
    assert used["strategy"] == "fewshot" and used["alpha"] == pytest.approx(fit["alpha"])


def test_parallel_sessions_get_their_own_weights(client, runtime):
    """Clients chatting at once with different α get exactly what serial calls with that α give."""
    prompts = [("What is 2 + 9?", [1, 0, 0]), ("What is 2 + 9?", [0, 1, 0]), ("Hello!", [0, 0, 1]), ("Hello!", [0, 0, 0])]
    serial = [client.predict(p, [], "manual", "hard", a, api_name="/chat")["answer"] for p, a in prompts]
    assert len(set(serial)) > 1  # the α really change the answers

    def call(job):
        from gradio_client import Client

        p, a = job
        return Client(client.src, verbose=False).predict(p, [], "manual", "hard", a, api_name="/chat")["answer"]

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(call, prompts * 2))
    assert parallel == serial * 2


def test_api_errors_keep_the_app_serving(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Type a message"):
        client.predict("", [], "manual", "hard", [0, 0, 0], api_name="/chat")
    assert json.dumps(client.predict("hi", "prompt-based", "hard", api_name="/dispatch"))

"""The batching scheduler: requests from many threads share one factored generate(), each row with
its own z' (and image), and each gets exactly what it gets alone; readers that leave and errors stay
their own. Tiny random models with strong random experts (conftest.app_runtime)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from PIL import Image

from t2demo import generation
from t2demo.adapt.dispatch import PipelineError
from t2demo.serving import Scheduler
from t2demo.session import Session, turn
from t2demo.ui.page import build_app

NEW = 24
JOBS = [("What is 2 + 9?", [1, 0, 0]), ("Hello!", [0, 1, 0]), ("Name three colours of the rainbow, please.", [0, 0, 1]),
        ("x", [0, 0, 0]), ("What is 2 + 9?", [0.5, 0.3, 0.2]), ("Hello!", [0, 0, 1])]


@pytest.fixture(scope="module")
def text(app_runtime):
    return app_runtime.text


def alone(adapter, prompt: str, z, new: int = NEW, image=None, **generate_kwargs) -> str:
    """The reference: this prompt generated alone, z composed into the weights (the old path)."""
    if not generate_kwargs:
        with adapter.svf.adapted(z):
            return generation.generate(adapter.lm, [prompt], None if image is None else [image], max_new_tokens=new)[0]
    enc = adapter.encode(prompt, image)
    tok = adapter.lm.tokenizer
    with adapter.svf.adapted(z) as model, torch.no_grad():
        out = model.generate(**enc, max_new_tokens=new, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id, **generate_kwargs)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def at_once(fns) -> list:
    """Each function in its own thread, all started together: their results (or exceptions)."""
    out: list = [None] * len(fns)

    def run(i: int) -> None:
        try:
            out[i] = fns[i]()
        except Exception as e:  # noqa: BLE001 - the test looks at it
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


def reader(scheduler: Scheduler, adapter, prompt: str, z, new: int = NEW, image=None, **kw):
    return lambda: "".join(scheduler.stream(adapter.encode(prompt, image, max_new_tokens=new), z, new, **kw))


def test_rows_with_different_z_equal_each_prompt_alone(text):
    """Six requests from six threads, prompts of different lengths (left padding), different α and
    the base model: one batch, and each row's answer is the one it gets alone."""
    scheduler = Scheduler(text.svf, text.lm.tokenizer, window_s=30, max_rows=len(JOBS))
    zs = [text.z_from_alpha(a) for _, a in JOBS]
    got = at_once([reader(scheduler, text, p, z) for (p, _), z in zip(JOBS, zs)])
    assert list(scheduler.batches) == [len(JOBS)]
    assert got == [alone(text, p, z) for (p, _), z in zip(JOBS, zs)]
    assert zs[3] is None and len(set(got)) == len(JOBS)  # the α (and the base row) really differ


def test_a_turn_is_one_batch_of_the_adapted_and_the_base_row(text):
    events = list(turn(text, Session(), "What is 2 + 9?", [], "manual", "hard", [0, 1, 0], max_new_tokens=NEW))
    assert events[0][0] == "first" and {e[0] for e in events[1:]} == {"answer", "base"}
    final = {kind: value for kind, value, _ in events[1:]}
    assert final["answer"] == alone(text, "What is 2 + 9?", text.z_from_alpha([0, 1, 0]))
    assert final["base"] == alone(text, "What is 2 + 9?", None) != final["answer"]
    assert text.scheduler.batches[-1] == 2
    assert text.scheduler.eos == generation.stop_token_ids(text.lm)  # rows stop where generate() stops


def test_emitter_hands_out_a_piece_per_token_that_add_up_to_the_decoded_text(text):
    """Per-token pieces: a token ending inside a multi-byte character waits for the next, special
    tokens add nothing, and the pieces join to the tokenizer's decoding of all the tokens."""
    from t2demo.serving import _Emitter

    tok = text.lm.tokenizer
    ids = tok("The answer is 42 — naïve café 🙂 ok", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    pieces: list[str] = []
    emitter = _Emitter(tok, pieces.append)
    for i in ids:
        emitter.put(i)
    emitter.end()
    assert "".join(pieces) == tok.decode(ids, skip_special_tokens=True) == "The answer is 42 — naïve café 🙂 ok"
    assert len(pieces) > len("The answer is 42 — naïve café 🙂 ok".split())  # finer than words
    assert "\ufffd" not in "".join(pieces)


def test_a_turn_streams_token_by_token_and_the_pieces_join_to_the_answer(text):
    """A multi-token answer reaches the reader as one visible update per token (not per word), and
    the concatenated pieces equal the final text, which is the answer generated alone."""
    scheduler = Scheduler(text.svf, text.lm.tokenizer, window_s=0.01, max_rows=2)
    z = text.z_from_alpha([0, 0.3, 0])  # a random expert at full α can make the random model emit byte
    # tokens that form no character until the end (shown as one update, rightly); 0.3 keeps them whole
    enc = text.encode("What is 2 + 9?", max_new_tokens=NEW)
    pieces: dict[int, list[str]] = {0: [], 1: []}
    for row, piece in scheduler.submit(enc, [z, None], NEW, min_new_tokens=NEW):
        pieces[row].append(piece)
    for row, zr in ((0, z), (1, None)):
        final = alone(text, "What is 2 + 9?", zr, min_new_tokens=NEW)
        tokens = text.lm.tokenizer(final, add_special_tokens=False)["input_ids"]
        assert "".join(pieces[row]) == final and len(tokens) > 1
        assert len(pieces[row]) > 1 and len(pieces[row]) >= len(final.split())
        assert len(pieces[row]) > NEW // 2  # about one piece per generated token (a few wait for a whole character)
    # the app's turn: every piece is one visible update of the growing answer
    events = list(turn(text, Session(), "What is 2 + 9?", [], "manual", "hard", [0, 1, 0], max_new_tokens=NEW))
    shown = [value for kind, value, _ in events if kind == "answer"]
    assert all(b.startswith(a) for a, b in zip(shown, shown[1:]))
    assert len(text.lm.tokenizer(shown[-1], add_special_tokens=False)["input_ids"]) > 1 and len(shown) > 1


def test_min_new_tokens_holds_per_row(text):
    """With eos forced on every step, a row with min_new_tokens still makes that many tokens (as
    generate(min_new_tokens=) alone) while its neighbour stops at once."""
    eos = text.lm.tokenizer.eos_token_id
    bias = torch.zeros(text.model.config.vocab_size)
    bias[eos] = 1e4
    hook = text.model.lm_head.register_forward_hook(lambda m, i, out: out + bias)
    try:
        scheduler = Scheduler(text.svf, text.lm.tokenizer, window_s=30, max_rows=2)
        z = text.z_from_alpha([1, 0, 0])
        forced, free = at_once([reader(scheduler, text, "Hello!", z, 10, min_new_tokens=10),
                                reader(scheduler, text, "Hello!", z, 10)])
        assert free == "" and forced == alone(text, "Hello!", z, 10, min_new_tokens=10) != ""
    finally:
        hook.remove()


def test_a_reader_that_leaves_stops_its_row_and_blocks_nobody(text):
    scheduler = Scheduler(text.svf, text.lm.tokenizer, window_s=30, max_rows=2)
    z = text.z_from_alpha([0, 1, 0])
    forwards = []
    hook = text.model.lm_head.register_forward_hook(lambda *_: forwards.append(1))
    try:
        other = ThreadPoolExecutor(1).submit(reader(scheduler, text, "What is 2 + 9?", z, 10))
        leaving = scheduler.stream(text.encode("Hello!", max_new_tokens=600), None, 600)
        assert next(leaving) == "\n"  # the base answer here is one newline per token
        leaving.close()
        answer = other.result(timeout=60)
    finally:
        hook.remove()
    assert answer == alone(text, "What is 2 + 9?", z, 10)
    assert list(scheduler.batches) == [2] and len(forwards) < 100  # not the 600 steps the leaver asked for
    assert text.svf._lock.acquire(timeout=10)  # the batch ended and gave back the lock
    text.svf._lock.release()


def test_errors_reach_only_their_request(text):
    scheduler = Scheduler(text.svf, text.lm.tokenizer, window_s=30, max_rows=2)
    limit = text.model.config.max_position_embeddings
    with pytest.raises(PipelineError, match="context window"):
        scheduler.submit(text.encode("hi"), [None], limit)  # refused in the submitter's thread
    name = text.svf.names[0]
    bad = {name: torch.ones(3)}  # the wrong length: fails when the batch sets its rows
    z = text.z_from_alpha([0, 0, 1])
    good, failed = at_once([reader(scheduler, text, "Hello!", z), reader(scheduler, text, "x", bad)])
    assert good == alone(text, "Hello!", z)
    assert isinstance(failed, ValueError) and "shape" in str(failed)
    assert list(scheduler.batches) == [2, 1, 1]  # the batch failed before any text: each request alone


def test_vision_rows_with_their_own_images_and_z(app_runtime):
    """LLaVA-Next rows with images of different patch counts (and one without an image) in one batch."""
    vision = app_runtime.vision
    small, wide = Image.new("RGB", (64, 64), "white"), Image.new("RGB", (96, 64), (200, 30, 30))
    assert vision.encode("?", small)["pixel_values"].shape[1] != vision.encode("?", wide)["pixel_values"].shape[1]
    jobs = [("What word is on the sign?", small, [1, 0, 0, 0]), ("What colour?", wide, [0, 0, 0, 0]),
            ("Hello!", None, [0, 1, 0, 0])]
    zs = [vision.z_from_alpha(a) for *_, a in jobs]
    scheduler = Scheduler(vision.svf, vision.lm.tokenizer, window_s=30, max_rows=len(jobs))
    got = at_once([reader(scheduler, vision, p, z, 8, image) for (p, image, _), z in zip(jobs, zs)])
    assert list(scheduler.batches) == [3]
    assert got == [alone(vision, p, z, 8, image) for (p, image, _), z in zip(jobs, zs)]


def test_browser_sessions_share_batches_and_get_their_own_answers(app_runtime, monkeypatch):
    """Four gradio_client sessions chatting at once with different α: their turns (adapted + base
    rows) are batched together, and each gets exactly the answers of its own α."""
    from gradio_client import Client

    from t2demo.session import MAX_NEW_TOKENS

    text = app_runtime.text
    monkeypatch.setattr(text.scheduler, "window_s", 2.0)  # wide enough for four HTTP clients
    monkeypatch.setattr(text.scheduler, "max_rows", 8)
    demo = build_app(app_runtime)
    demo.queue(default_concurrency_limit=4)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        jobs = JOBS[:4]
        before = len(text.scheduler.batches)
        out = at_once([lambda p=p, a=a: Client(url, verbose=False).predict(p, [], "manual", "hard", a, api_name="/chat")
                       for p, a in jobs])
    finally:
        demo.close()
    batches = list(text.scheduler.batches)[before:]
    assert [o["answer"] for o in out] == [alone(text, p, text.z_from_alpha(a), MAX_NEW_TOKENS) for p, a in jobs]
    assert [o["base_answer"] for o in out] == [alone(text, p, None, MAX_NEW_TOKENS) for p, _ in jobs]
    assert sum(batches) == 8 and max(batches) >= 4  # at least two sessions shared a batch


def test_bench_serve_reports_every_path(model_dirs, monkeypatch, tmp_path):
    import json

    from t2demo import bench, cli

    monkeypatch.setattr(bench, "SERVE_USERS", (1, 3))
    monkeypatch.setattr(bench, "SERVE_TOKENS", 6)
    res = bench.serve_bench(str(model_dirs[0]), "cpu", repeats=2)
    assert set(res["users"]) == {1, 3} and res["targets_at"] == 3
    for n, row in res["users"].items():
        for path in ("swap", "batched", "base"):
            assert 0 < row[path]["p50_s"] <= row[path]["p95_s"] and row[path]["tokens_per_s"] > 0
        assert sum(row["batched"]["batch_rows"]) == 2 * n  # every user's row, in each of the 2 repeats
    assert 1 < res["memory"]["memory_ratio"] < 2
    assert "target at N = 3" in bench.format_serve(json.loads(json.dumps(res)))
    with pytest.raises(SystemExit, match="bench serve: .*not a Hugging Face model folder"):
        cli.main(["bench", "serve", "--model", str(tmp_path)])

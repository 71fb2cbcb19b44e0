"""Bad input as a careless or hostile user sends it, against the launched app (tiny models): every
named endpoint (/dispatch, /chat, /vqa, /cem) through gradio_client or raw HTTP, and the expert
upload. Each bad input must come back as a message that names the field, with no server path in
it, and the app must answer a normal /dispatch within a second afterwards. Then the CEM guards: a
run stops when its client cancels or goes away, one run per session, a global limit, a deadline."""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import httpx
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from safetensors.torch import save_file

from t2demo.adapt.dispatch import PipelineError
from t2demo.experts import save_expert
from t2demo.session import Session, open_image
from t2demo.ui import cem_panel, experts_tab
from t2demo.ui.page import build_app
from t2demo.validation import (
    CEM_LIMITS,
    CEMLimits,
    check_alpha_input,
    check_int,
    open_image_file,
)

SERVER_PATH = re.compile(r"(?<![\w.])/(?:tmp|work|home|root|usr|var|etc|opt|srv)\b")
LAYERS = 3  # conftest's TINY_TEXT
TWO_EXAMPLES = [["What is 1 + 1?", "2"], ["What is 2 + 2?", "4"]]
BIG_CEM = {"task": "math", "examples": [], "n": 16, "population": 16, "generations": 4, "per_layer": False,
           "fast": False, "save_as": ""}  # at CEM_LIMITS.work: long enough to stop half-way


@dataclass(frozen=True)
class File:
    name: str  # one of the files the `files` fixture makes


@dataclass(frozen=True)
class Bad:
    api: str
    fields: dict
    needle: str  # a regex the message must match: it names the field
    id: str = field(default="")


DEFAULTS = {  # a valid request per endpoint, in argument order; each Bad case changes some fields
    "/dispatch": {"message": "What is 3 + 4?", "strategy": "prompt-based", "mode": "hard"},
    "/chat": {"message": "What is 3 + 4?", "history": [], "strategy": "manual", "mode": "hard", "alpha": [0, 0, 0],
              "mixture": ""},
    "/vqa": {"image": File("sign.png"), "message": "What word is on the sign?", "strategy": "manual", "mode": "hard",
             "alpha": [0, 0, 0, 0]},
    "/cem": {"task": "custom", "examples": TWO_EXAMPLES, "n": 2, "population": 4, "generations": 1, "per_layer": False,
             "fast": True, "save_as": ""},
}

ALPHA = r"alpha must be a list of 3 numbers"
HISTORY = r"history must be a list of \[user message, assistant answer\] pairs"
BAD = [
    # /dispatch
    Bad("/dispatch", {"message": ""}, r"Type a message", "empty message"),
    Bad("/dispatch", {"message": "   \n "}, r"Type a message", "blank message"),
    Bad("/dispatch", {"message": None}, r"Type a message", "null message"),
    Bad("/dispatch", {"message": 42}, r"message must be text, got 42", "number message"),
    Bad("/dispatch", {"message": {"text": "hi"}}, r"message must be text", "object message"),
    Bad("/dispatch", {"message": ["hi"]}, r"message must be text", "list message"),
    Bad("/dispatch", {"message": "x" * 4001}, r"message has 4001 characters; the limit is 4000", "long message"),
    Bad("/dispatch", {"strategy": "nope"}, r"unknown strategy 'nope'; choose from", "unknown strategy"),
    Bad("/dispatch", {"strategy": 3}, r"strategy must be text", "number strategy"),
    Bad("/dispatch", {"strategy": None}, r"strategy is empty", "null strategy"),
    Bad("/dispatch", {"mode": "medium"}, r"mode must be one of \['hard', 'soft'\]", "unknown mode"),
    Bad("/dispatch", {"mode": ["hard"]}, r"mode must be one of", "list mode"),
    Bad("/dispatch", {"strategy": "few-shot"}, r"Few-shot needs a mixture", "few-shot without mixture"),
    # /chat: α
    Bad("/chat", {"alpha": "0.5"}, ALPHA, "alpha string"),
    Bad("/chat", {"alpha": {"math": 1}}, ALPHA, "alpha object"),
    Bad("/chat", {"alpha": [0, "1", 0]}, ALPHA, "alpha with text"),
    Bad("/chat", {"alpha": [0, True, 0]}, ALPHA, "alpha with true"),
    Bad("/chat", {"alpha": [0, None, 0]}, ALPHA, "alpha with null"),
    Bad("/chat", {"alpha": [[0.1, [0.2]], [0], [0]]}, ALPHA, "alpha three deep"),
    Bad("/chat", {"alpha": [0, 1]}, r"alpha has shape \(2,\); expected \(3,\)", "alpha too few"),
    Bad("/chat", {"alpha": [0, 1, 0, 1]}, r"alpha has shape \(4,\)", "alpha more values than experts"),
    Bad("/chat", {"alpha": []}, r"alpha has shape \(0,\)", "alpha empty"),
    Bad("/chat", {"alpha": [[0.1] * 2] * 3}, rf"alpha has shape \(3, 2\); expected \(3,\) .* or \(3, {LAYERS}\)",
        "alpha per layer wrong layers"),
    Bad("/chat", {"alpha": [[0.1] * LAYERS] * 2}, r"alpha has shape \(2, 3\)", "alpha per layer wrong experts"),
    Bad("/chat", {"alpha": [0, 2, 0]}, r"outside the bounds \[0.0, 1.0\]", "alpha above bounds"),
    Bad("/chat", {"alpha": [[0.5] * LAYERS, [-1] * LAYERS, [0] * LAYERS]}, r"outside the bounds", "alpha below bounds"),
    # /chat: history, mixture, message, mode
    Bad("/chat", {"history": "abc"}, HISTORY, "history string"),
    Bad("/chat", {"history": {"user": "hi"}}, HISTORY, "history object"),
    Bad("/chat", {"history": 7}, HISTORY, "history number"),
    Bad("/chat", {"history": [["hi"]]}, HISTORY, "history lone message"),
    Bad("/chat", {"history": [["hi", "there", "again"]]}, HISTORY, "history triple"),
    Bad("/chat", {"history": ["hi", "there"]}, HISTORY, "history flat"),
    Bad("/chat", {"history": [[1, 2]]}, r"history\[0\] user message must be text", "history numbers"),
    Bad("/chat", {"history": [["hi", "ok"], ["hi", {"a": 1}]]}, r"history\[1\] answer must be text",
        "history object answer"),
    Bad("/chat", {"history": [["x" * 4001, "y"]]}, r"history\[0\] user message has 4001 characters",
        "history long turn"),
    Bad("/chat", {"history": [["a", "b"]] * 33}, r"history has 33 turns; the limit is 32", "history too many turns"),
    Bad("/chat", {"message": 3.5}, r"message must be text", "chat number message"),
    Bad("/chat", {"mixture": 5, "strategy": "few-shot"}, r"the mixture name must be text", "number mixture"),
    Bad("/chat", {"mixture": "x" * 101, "strategy": "few-shot"}, r"mixture name has 101 characters",
        "long mixture"),
    Bad("/chat", {"mixture": "nope", "strategy": "few-shot"}, r"Few-shot needs a mixture.*this session has",
        "unknown mixture"),
    Bad("/chat", {"mode": "fast"}, r"mode must be one of", "manual with unknown mode"),
    Bad("/chat", {"message": "1 " * 1999}, r"context window", "longer than the context"),
    # /vqa
    Bad("/vqa", {"image": File("notes.png")}, r"not an image this app can read", "text file as png"),
    Bad("/vqa", {"image": File("notes.txt")}, r"not an image this app can read", "text file"),
    Bad("/vqa", {"image": File("empty.png")}, r"not an image this app can read", "empty file"),
    Bad("/vqa", {"image": File("truncated.png")}, r"not an image this app can read", "truncated png"),
    Bad("/vqa", {"image": File("sign.tiff")}, r"not an image this app can read \(PNG, JPEG", "tiff"),
    Bad("/vqa", {"image": File("20mp.png")}, r"The image is 5000×4000; the limit is 16 megapixels", "20 megapixels"),
    Bad("/vqa", {"image": File("bomb.png")}, r"The image is over 32 megapixels; the limit is 16", "9000x9000 bomb"),
    Bad("/vqa", {"image": File("huge.png")}, r"image file has 21.0 MB; the limit is 20 MB", "21 MB file"),
    Bad("/vqa", {"image": None}, r"Add an image first", "no image"),
    Bad("/vqa", {"message": ""}, r"Type a message", "empty question"),
    Bad("/vqa", {"alpha": [0, 0, 0]}, r"alpha has shape \(3,\); expected \(4,\)", "text model's alpha"),
    Bad("/vqa", {"strategy": "nope"}, r"unknown strategy", "vqa unknown strategy"),
    # /cem
    Bad("/cem", {"task": "nope"}, r"task must be one of \['custom', ", "unknown task"),
    Bad("/cem", {"task": "vqa"}, r"task 'vqa' needs images, and CEM fits the text model", "vision task"),
    Bad("/cem", {"task": 5}, r"task must be text", "number task"),
    Bad("/cem", {"task": "smalltalk"}, r"task must be one of", "unfittable task"),
    Bad("/cem", {"task": "math", "n": -3}, r"n \(number of examples\) must be a whole number from 2 to 20, got -3",
        "negative n"),
    Bad("/cem", {"task": "math", "n": "abc"}, r"n \(number of examples\) must be a whole number", "text n"),
    Bad("/cem", {"task": "math", "n": 10**6}, r"n \(number of examples\) must be a whole number", "huge n"),
    Bad("/cem", {"task": "math", "n": 2.5}, r"n \(number of examples\) must be a whole number", "fractional n"),
    Bad("/cem", {"task": "math", "n": True}, r"n \(number of examples\) must be a whole number", "true n"),
    Bad("/cem", {"population": 10**6}, r"population must be a whole number from 4 to 32", "huge population"),
    Bad("/cem", {"population": 1}, r"population must be a whole number", "tiny population"),
    Bad("/cem", {"population": "16"}, r"population must be a whole number", "text population"),
    Bad("/cem", {"generations": 10**6}, r"generations must be a whole number from 1 to 20", "huge generations"),
    Bad("/cem", {"generations": 0}, r"generations must be a whole number", "zero generations"),
    Bad("/cem", {"generations": None}, r"generations must be a whole number", "null generations"),
    Bad("/cem", {"task": "math", "n": 20, "population": 32, "generations": 20},
        r"population × generations × examples = 32 × 20 × 20 = 12,800 .* the limit is 1,024", "over the work limit"),
    Bad("/cem", {"per_layer": "yes"}, r"per_layer must be true or false", "text per_layer"),
    Bad("/cem", {"fast": 1}, r"fast must be true or false", "number fast"),
    Bad("/cem", {"examples": "abc"}, r"examples must be a list of \[prompt, answer\] rows", "examples string"),
    Bad("/cem", {"examples": [["q"]]}, r"examples must be a list of \[prompt, answer\] rows", "examples lone cell"),
    Bad("/cem", {"examples": TWO_EXAMPLES[:1]}, r"at least 2 examples and at most 20; the table has 1",
        "one example"),
    Bad("/cem", {"examples": TWO_EXAMPLES * 11}, r"at most 20; the table has 22", "too many examples"),
    Bad("/cem", {"examples": [["x" * 201, "2"], TWO_EXAMPLES[1]]},
        r"examples\[0\] prompt has 201 bytes of UTF-8; the limit is 200", "long prompt"),
    Bad("/cem", {"examples": [["Ω", "Ω" * 33], TWO_EXAMPLES[1]]},
        r"examples\[0\] answer has 66 bytes of UTF-8; the limit is 64", "long answer in bytes"),
    Bad("/cem", {"examples": [TWO_EXAMPLES[0], ["q", {"a": 1}]]}, r"examples\[1\] answer must be text",
        "object answer"),
    Bad("/cem", {"examples": [["What is 1 + 1?", ""], TWO_EXAMPLES[1]]}, r"empty reference or response",
        "empty answer"),
    Bad("/cem", {"save_as": "///"}, r"Give the mixture a name", "unusable name"),
    Bad("/cem", {"save_as": 5}, r"the mixture name must be text", "number name"),
    Bad("/cem", {"save_as": "x" * 101}, r"mixture name has 101 characters", "long name"),
]


def _png(path: Path, width: int, height: int) -> None:
    """A grayscale PNG of zeros, compressed row by row (a 9000×9000 one is ~80 KB, never in memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("inputs")
    Image.new("RGB", (64, 48), "white").save(root / "sign.png")
    Image.new("RGB", (64, 48), "white").save(root / "sign.tiff")
    (root / "notes.png").write_text("not an image")
    (root / "notes.txt").write_text("not an image either")
    (root / "empty.png").write_bytes(b"")
    (root / "truncated.png").write_bytes((root / "sign.png").read_bytes()[:60])
    _png(root / "20mp.png", 5000, 4000)
    _png(root / "bomb.png", 9000, 9000)
    (root / "huge.png").write_bytes((root / "sign.png").read_bytes() + b"\0" * (21 * 2**20))
    return {p.name: str(p) for p in root.iterdir()}


@pytest.fixture(scope="module")
def url(app_runtime):
    demo = build_app(app_runtime)
    demo.queue(default_concurrency_limit=4)
    _, local_url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    yield local_url
    demo.close()


@pytest.fixture(scope="module")
def client(url):
    return Client(url, verbose=False)


def dispatch_seconds(client: Client) -> float:
    """How long a normal request takes now (it must also succeed)."""
    start = time.perf_counter()
    d = client.predict("What is 3 + 4?", "prompt-based", "hard", api_name="/dispatch")
    assert sum(d["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    return time.perf_counter() - start


def assert_clear(message: str, needle: str) -> None:
    assert re.search(needle, message), message
    assert not SERVER_PATH.search(message), message
    assert "Traceback" not in message and "upstream Gradio app" not in message, message


def cem_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("t2demo-cem")]


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ----------------------------------------------------------------------------- bad input, endpoint by endpoint

@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input_is_a_clear_message_and_the_app_keeps_serving(client, files, case):
    fields = DEFAULTS[case.api] | case.fields
    args = [handle_file(files[v.name]) if isinstance(v, File) else v for v in fields.values()]
    with pytest.raises(AppError) as refused:
        client.predict(*args, api_name=case.api)
    assert_clear(str(refused.value), case.needle)
    assert dispatch_seconds(client) < 1.0


def raw_call(url: str, api: str, args: list) -> tuple[str, str]:
    """(event, data) of a call sent as raw HTTP: JSON with \\u escapes, which gradio_client cannot send
    for a lone surrogate."""
    body = json.dumps({"data": args}).encode("ascii")
    with httpx.Client(base_url=url, timeout=30) as http:
        event_id = http.post(f"/gradio_api/call/{api}", content=body,
                             headers={"content-type": "application/json"}).json()["event_id"]
        lines = http.get(f"/gradio_api/call/{api}/{event_id}").text.splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return events[-1], data[-1]


SURROGATE = [
    ("dispatch", ["hi \ud800 there", "prompt-based", "hard"], r"message holds a lone surrogate at position 3"),
    ("chat", ["hi", [["\udfff", "ok"]], "manual", "hard", [0, 0, 0], ""], r"history\[0\] user message holds a lone"),
    ("cem", ["custom", [["What is 1 + 1?", "2\ud83d"], TWO_EXAMPLES[1]], 2, 4, 1, False, True, ""],
     r"examples\[0\] answer holds a lone surrogate"),
]


@pytest.mark.parametrize("api, args, needle", SURROGATE, ids=[s[0] for s in SURROGATE])
def test_a_lone_surrogate_is_a_clear_message(client, url, api, args, needle):
    event, data = raw_call(url, api, args)
    assert event == "error"
    assert_clear(data, needle)
    assert dispatch_seconds(client) < 1.0


def test_no_pixel_is_decoded_before_the_size_check(files):
    img = open_image_file(files["sign.png"])
    assert img.tile and img.size == (64, 48)  # header read, pixels not yet
    img.close()
    with pytest.raises(PipelineError, match="5000×4000"):
        open_image_file(files["20mp.png"])
    assert open_image(files["sign.png"]).mode == "RGB"


# ----------------------------------------------------------------------------- expert uploads

def _metadata(expert) -> dict[str, str]:
    return {"format_version": "1", "label": expert.label, "base_model": expert.base_model,
            "fingerprint": expert.fingerprint, "targets": json.dumps(expert.targets), "parameterisation": "scale",
            "notes": json.dumps(expert.notes)}


def _write(path: Path, expert, z=None, **meta) -> None:
    """An expert file from `expert` with z and metadata fields replaced (None: the field is left out)."""
    fields = {k: v for k, v in (_metadata(expert) | meta).items() if v is not None}
    save_file(expert.z if z is None else z, str(path), fields)


def _first(expert, change) -> dict:
    name = next(iter(expert.z))
    return expert.z | {name: change(expert.z[name])}


UPLOADS = {  # id: (writer(path, expert, adapter), needle)
    "pickle": (lambda p, e, a: torch.save(dict(e.z), p), r"is a pickle \(torch.save\) file; pickles are refused"),
    "not safetensors": (lambda p, e, a: p.write_bytes(b"hello, not tensors"), r"is not a safetensors file"),
    "truncated": (lambda p, e, a: (_write(p, e), p.write_bytes(p.read_bytes()[:-64])), r"corrupt or truncated"),
    "no vectors": (lambda p, e, a: _write(p, e, z={}), r"holds no vectors"),
    "format version": (lambda p, e, a: _write(p, e, format_version="2"), r"unknown format version '2'"),
    "missing metadata": (lambda p, e, a: _write(p, e, notes=None), r"metadata lacks \['notes'\]"),
    "parameterisation": (lambda p, e, a: _write(p, e, parameterisation="log"), r"unknown parameterisation 'log'"),
    "notes not json": (lambda p, e, a: _write(p, e, notes="{oops"), r"'targets' or 'notes' is not valid JSON"),
    "notes a list": (lambda p, e, a: _write(p, e, notes="[1, 2]"), r"'notes' must be a JSON object, got list"),
    "notes task an object": (lambda p, e, a: _write(p, e, notes='{"task": {"a": 1}}'),
                             r"notes \['task'\] must be text or numbers"),
    "targets a number": (lambda p, e, a: _write(p, e, targets="5"), r"'targets' must be a string or a list of strings"),
    "label empty": (lambda p, e, a: _write(p, e, label=""), r"'label' must be 1 to 90 printable characters"),
    "label long": (lambda p, e, a: _write(p, e, label="x" * 91), r"'label' must be 1 to 90 printable characters"),
    "label control": (lambda p, e, a: _write(p, e, label="a\nb"), r"'label' must be 1 to 90 printable characters"),
    "2-D vector": (lambda p, e, a: _write(p, e, z=_first(e, lambda v: v[None])), r"must be a 1-D float vector"),
    "int vector": (lambda p, e, a: _write(p, e, z=_first(e, lambda v: v.long())), r"must be a 1-D float vector"),
    "NaN": (lambda p, e, a: _write(p, e, z=_first(e, lambda v: v * float("nan"))), r"non-finite values"),
    "foreign names": (lambda p, e, a: _write(p, e, z={"model.other.weight": torch.ones(4)}),
                      r"matrix names are not targets of this model"),
    "wrong rank": (lambda p, e, a: _write(p, e, z=_first(e, lambda v: torch.cat([v, v[:1]]))),
                   r"has \d+ values but this model's matrix has rank"),
    "fingerprint": (lambda p, e, a: _write(p, e, fingerprint="0" * 64, base_model="elsewhere/model"),
                    r"fingerprint 000000000000\), this model is 'text' .*cross-model transfer"),
    "too large": (lambda p, e, a: p.write_bytes(b"\0" * (experts_tab.largest_expert_file(a) + 1)),
                  r"has [\d,]+ bytes; a valid one for this model has at most"),
}


@pytest.mark.parametrize("kind", UPLOADS)
def test_a_bad_expert_file_is_a_clear_message_and_never_enters_the_session(client, app_runtime, tmp_path, kind):
    text, session = app_runtime.text, Session()
    write, needle = UPLOADS[kind]
    path = tmp_path / "upload.safetensors"
    write(path, text.experts[1], text)
    with pytest.raises(gr.Error) as refused:
        experts_tab.upload_expert(text, session, str(path))
    message = str(refused.value)
    assert_clear(message, needle)
    assert "upload.safetensors" in message and str(tmp_path) not in message
    assert session.mixtures_of(text) == {}
    assert dispatch_seconds(client) < 1.0


def test_no_expert_file_is_a_clear_message(app_runtime):
    with pytest.raises(gr.Error, match="Choose an expert file"):
        experts_tab.upload_expert(app_runtime.text, Session(), None)


def test_a_refused_file_does_not_poison_the_session(app_runtime, tmp_path):
    text, session = app_runtime.text, Session()
    _write(tmp_path / "bad.safetensors", text.experts[0], notes="[]")
    with pytest.raises(gr.Error):
        experts_tab.upload_expert(text, session, str(tmp_path / "bad.safetensors"))
    save_expert(text.experts[0], tmp_path / "good.safetensors")
    names, line = experts_tab.upload_expert(text, session, str(tmp_path / "good.safetensors"))
    assert names == ["uploaded:code"] and "loaded 'code'" in line
    assert [row[0] for row in experts_tab.experts_table(text, session)][-1] == "code"


# ----------------------------------------------------------------------------- CEM: names, stopping, limits

def test_cem_returns_the_name_it_stored_and_chat_finds_it_by_either(client):
    fit = client.predict("custom", TWO_EXAMPLES, 2, 4, 1, False, True, "  My mix! ", api_name="/cem")
    assert fit["saved_as"] == "My-mix"
    for name in (fit["saved_as"], "  My mix! "):
        used = client.predict("What is 3 + 3?", [], "few-shot", "hard", None, name, api_name="/chat")["first_pass"]
        assert used["mixture"] == "My-mix" and used["alpha"] == pytest.approx(fit["alpha"])


def test_per_layer_alpha_through_the_api(client):
    out = client.predict("What is 3 + 4?", [], "manual", "hard", [[0.5] * LAYERS, [0] * LAYERS, [1] * LAYERS],
                         api_name="/chat")
    assert out["first_pass"]["alpha"] == [[0.5] * LAYERS, [0] * LAYERS, [1] * LAYERS]


def _start_big_cem(client: Client):
    job = client.submit(*BIG_CEM.values(), api_name="/cem")
    assert wait_for(lambda: "t2demo-cem" in cem_threads(), 10), "the CEM worker did not start"
    return job


def test_a_cancelled_cem_stops_its_worker(client):
    job = _start_big_cem(client)
    time.sleep(0.3)
    job.cancel()
    assert wait_for(lambda: not cem_threads(), 5), cem_threads()
    assert not cem_panel.RUNS._owners  # its slot is free again
    assert dispatch_seconds(client) < 1.0


def test_a_cem_whose_client_goes_away_stops(client, url):
    """A raw client joins the queue, reads its stream a little and hangs up."""
    body = {"data": [None, *BIG_CEM.values()], "fn_index": client._infer_fn_index("/cem", None),
            "session_hash": "gone-away"}
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/gradio_api/queue/join", json=body).status_code == 200
        with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": "gone-away"}) as stream:
            for line in stream.iter_lines():
                if "process_generating" in line:
                    break
    assert wait_for(lambda: not cem_threads(), 5), cem_threads()
    assert dispatch_seconds(client) < 1.0


def test_one_cem_per_session_and_a_global_limit(client, url):
    first = _start_big_cem(client)
    with pytest.raises(AppError) as again:
        client.predict("custom", TWO_EXAMPLES, 2, 4, 1, False, True, "", api_name="/cem")
    assert_clear(str(again.value), r"A CEM run is already going in this session")
    others = [Client(url, verbose=False) for _ in range(CEM_LIMITS.runs)]
    second = others[0].submit(*BIG_CEM.values(), api_name="/cem")
    assert wait_for(lambda: len(cem_panel.RUNS._owners) == 2, 10)
    with pytest.raises(AppError) as busy:
        others[1].predict("custom", TWO_EXAMPLES, 2, 4, 1, False, True, "", api_name="/cem")
    assert_clear(str(busy.value), r"The server is busy: 2 CEM runs are going \(the limit is 2\)")
    first.cancel(), second.cancel()
    assert wait_for(lambda: not cem_threads(), 20), cem_threads()
    assert dispatch_seconds(client) < 1.0


def test_a_cem_run_stops_at_its_time_limit(app_runtime):
    *_, (history, alpha, status) = cem_panel.run_cem(app_runtime.text, *list(BIG_CEM.values())[:-1],
                                                     limits=CEMLimits(seconds=1))
    assert status.startswith("cancelled") and status.endswith("(stopped at the 1 s limit)"), status
    assert alpha is not None and len(history) < BIG_CEM["generations"]


def test_a_run_whose_reader_never_comes_back_stops():
    """A reader dropped without being closed (a request cancelled before Gradio registered it)."""
    stop, ended = cem_panel.Lease(idle=0.3), threading.Event()

    def work():
        while not stop.is_set():
            time.sleep(0.02)
            yield "step"
        ended.set()

    reader = cem_panel.ticking(work(), stop, every=0.05)
    assert next(reader) is None and next(reader) == "step"  # then abandoned, not closed
    assert ended.wait(2) and not threading.Event.is_set(stop)  # the lease ran out: nothing closed or set it
    reader.close()


# ----------------------------------------------------------------------------- the checks themselves

def test_numbers_and_alpha_shapes_that_are_accepted():
    assert check_int(10.0, "n", (2, 20)) == 10
    assert check_alpha_input(None, ["a", "b"], 3) == [0.0, 0.0]
    assert check_alpha_input([[0, 0.5, 1], [1, 1, 1]], ["a", "b"], 3) == [[0, 0.5, 1], [1, 1, 1]]


def test_the_page_callback_checks_cem_settings_too(app_runtime):
    with pytest.raises(gr.Error, match="population must be a whole number"):
        list(cem_panel.run_cem(app_runtime.text, "math", None, 2, 10**6, 1, False, True))

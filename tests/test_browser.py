"""The app in a real browser: Debian's Chromium, driven by Playwright, on the app launched in-process
with tiny random models and strong random experts. A chat turn, an α slider, a tiny CEM run and a
VQA question, each waited for on what the page shows, with a full-page screenshot after each step
(into $T2DEMO_SCREENSHOTS, or the test's tmp_path).

Needs /usr/bin/chromium (apt-get install chromium) and the playwright package; skipped without them.
Playwright's own browser download is not used: it launches Debian's Chromium by its path."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest
from conftest import APP_LABELS
from PIL import Image, ImageDraw

import app
from t2demo import quiz

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

# Chromium as root on a machine without a network (or a display) needs these; without the
# background-networking flags it keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LABELS = APP_LABELS
WAIT_MS = 60_000  # upper bound of one wait; on an idle machine each takes a second or two


@pytest.fixture(scope="module")
def url(app_runtime):
    """The app on both tiny models (conftest's app_runtime), served on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_app(app_runtime).queue()
    _, local_url, _ = demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                                  css=app.CSS)
    yield local_url
    demo.close()


@pytest.fixture
def page(url, tmp_path):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900})
        browser.set_default_timeout(WAIT_MS)
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("T2DEMO_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def plot(page, label: str):
    """The plotly element of the visible gr.Plot whose block label is `label`."""
    block_label = page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return block_label.locator("visible=true").locator("xpath=..").locator(".js-plotly-plot")


def figure(page, label: str) -> dict:
    """What plotly drew: the title and each trace's type, name, x, y and z, read from the element."""
    return plot(page, label).evaluate(
        "e => ({title: (e.layout.title || {}).text || '',"
        "       data: e.data.map(t => ({type: t.type, name: t.name, x: t.x, y: t.y, z: t.z}))})")


def wait_for_figure(page, label: str, predicate: str, prev=None) -> dict:
    """Wait until the plot's figure `f` ({title, data}) satisfies the JavaScript expression `predicate`
    (which may compare with `prev`, a value passed from Python)."""
    handle = plot(page, label).element_handle()
    page.wait_for_function(
        f"([e, prev]) => {{ if (!e.data || !e.layout) return false;"
        f"  const f = {{title: (e.layout.title || {{}}).text || '', data: e.data}}; return {predicate}; }}",
        arg=[handle, prev])
    return figure(page, label)


def wait_until_idle(page) -> None:
    """Wait until no output shows Gradio's pending/streaming tracker (the event has finished)."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=status-tracker]')].every(e => e.classList.contains('hide'))")


def number_input(page, label: str):
    return page.get_by_role("spinbutton", name=f"number input for {label}", exact=True)


def set_slider(page, label: str, value) -> None:
    """Type into the slider's number box and leave it: Gradio fires the slider's `release` on blur."""
    box = number_input(page, label)
    box.fill(str(value))
    box.blur()


def block(page, label: str):
    """The visible block (a chatbot, a plot, ...) whose block label is `label`."""
    block_label = page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return block_label.locator("visible=true").locator("xpath=..")


def heat_range(page) -> tuple:
    return tuple(plot(page, "z' heatmap").evaluate("e => [e.data[0].zmin, e.data[0].zmax]"))


def no_error_badges(page) -> bool:
    """No output shows Gradio's "Error" status (a refusal is a note and a toast, not a badge)."""
    return page.locator("[data-testid=status-tracker]").filter(has_text=re.compile(r"^\s*Error")).locator(
        "visible=true").count() == 0


def shoot(page, shots: Path, name: str) -> None:
    """A full-page screenshot at the desktop width and at a 390 px phone width; the page's text names
    no server path."""
    text = page.inner_text("body")
    assert not re.search(r"(/tmp/|/root/|/home/|/work/)", text), "a server path is shown"
    page.screenshot(path=shots / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # plotly redraws for the width
    page.screenshot(path=shots / f"{name}-phone.png", full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.wait_for_timeout(300)


MARK = re.compile(r"(✓ right|✗ wrong)")


def test_examples_marks_first_pass_record_stop_and_errors_in_a_real_browser(page, shots, app_runtime, monkeypatch):
    page.get_by_role("button", name="Send", exact=True).wait_for()
    plot(page, "z' heatmap").wait_for()
    page.screenshot(path=shots / "chat-above-the-fold.png")  # the viewport only: what shows without scrolling
    tally = page.get_by_text(re.compile(r"^Tally")).first.bounding_box()
    below = page.get_by_text("Test questions with known answers").first.bounding_box()
    assert 0 <= below["y"] - (tally["y"] + tally["height"]) < 60  # no empty band under the tally at 1400 × 900
    message = page.get_by_role("textbox", name="Message", exact=True)

    # an invalid input: one note under the message box, no error badge over the outputs
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_text("⚠ Not sent: Type a message first.").wait_for()
    assert no_error_badges(page)

    # click a test question, press Enter: both answers marked against the reference, a first-pass record
    page.get_by_text(re.compile(r"^math · ")).first.click()
    sync_api.expect(message).not_to_have_value("", timeout=WAIT_MS)
    message.press("Enter")
    adapted, base = block(page, "Adapted answer (second pass)"), block(page, "Base model's answer (z' = 1)")
    adapted.get_by_text(MARK).wait_for()
    base.get_by_text(MARK).wait_for()
    wait_until_idle(page)
    assert "reference" in adapted.inner_text() and "reference" in base.inner_text()
    adapted.get_by_text(re.compile(r"^First pass: prompt, experts and α")).wait_for()
    page.get_by_text(re.compile(r"^Tally over 1 test question: base right [01]/1 · adapted right [01]/1")).wait_for()
    first_range = heat_range(page)
    page.evaluate("window.scrollTo(0, 0)")
    for label in ("Adapted answer (second pass)", "Base model's answer (z' = 1)", "category probabilities", "z' heatmap"):
        box = block(page, label).bounding_box()  # above the fold at 1400 × 900
        assert box["y"] + box["height"] <= 900, label
    assert first_range[0] == -first_range[1] > -10
    shoot(page, shots, "chat-answered")

    # a second, different answer: the heatmap keeps the same colour range; Shift+Enter is a new line
    message.fill("Say hi")
    message.press("Shift+Enter")
    assert message.input_value() == "Say hi\n"
    message.press("Enter")
    wait_for_figure(page, "z' heatmap", "f.title.startsWith(\"z' of this answer\")")
    wait_until_idle(page)
    assert heat_range(page) == first_range and adapted.locator("[data-testid=user]").count() == 2

    # Stop ends a generation (one that would never end by itself); the partial answers stay, marked
    def endless(enc, zs, max_new_tokens, min_new_tokens=0, temperature=0.0):
        while True:
            for row in range(len(zs)):
                yield row, "and on "
            time.sleep(0.05)

    monkeypatch.setattr(app_runtime.text.scheduler, "submit", endless)
    message.fill("Tell me a story that never ends.")
    message.press("Enter")
    adapted.get_by_text("and on and on").first.wait_for()
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    adapted.get_by_text("(stopped)").first.wait_for()
    base.get_by_text("(stopped)").first.wait_for()
    assert no_error_badges(page)

    # Clear chat empties both columns and the first pass; the heatmap shows the sliders' α, not the last answer
    page.get_by_role("button", name="Clear chat", exact=True).click()
    page.get_by_text("The first pass appears here after a message.").wait_for()
    wait_for_figure(page, "z' heatmap", "f.title.startsWith(\"z' of the sliders' α\")")
    assert adapted.get_by_test_id("user").count() == 0 and base.get_by_test_id("user").count() == 0


def test_comparison_grid_in_a_real_browser(page, shots):
    page.get_by_role("tab", name="Compare experts", exact=True).click()
    page.get_by_role("textbox", name="Prompt to compare", exact=True).fill("What is 3 + 4?")
    page.get_by_role("button", name="Compare", exact=True).click()
    wait_until_idle(page)
    for label in ("base model", *(f"{lab} expert alone" for lab in LABELS)):
        sync_api.expect(page.get_by_text(label, exact=True)).to_be_visible()
        heat = figure(page, f"z' heatmap: {label}")
        assert heat["data"][0]["type"] == "heatmap"
    assert page.get_by_text("…", exact=True).count() == 0  # every cell answered
    shoot(page, shots, "compare")


def test_chat_slider_cem_and_vqa_in_a_real_browser(page, shots, tmp_path):
    page.get_by_role("button", name="Send", exact=True).wait_for()
    for label in ("category probabilities", "z' heatmap", "z' detail"):
        plot(page, label).wait_for()  # plotly.js is loaded and has drawn the initial figures
    page.screenshot(path=shots / "0-loaded.png", full_page=True)

    # 1. a chat turn: first pass (bar chart and summary), adapted answer in the chat, base answer below
    page.get_by_role("textbox", name="Message", exact=True).fill("What is 3 + 4?")
    page.get_by_role("button", name="Send", exact=True).click()
    probs = wait_for_figure(page, "category probabilities", "f.data.length > 0 && f.data[0].type === 'bar'")
    assert probs["title"].startswith("first pass (prompt)")
    assert sum(probs["data"][0]["y"]) == pytest.approx(1, abs=1e-3) and set(LABELS) <= set(probs["data"][0]["x"])
    first = page.get_by_text(re.compile(r"^First pass · prompt, \d+ ms: read as"))
    first.wait_for()
    base = block(page, "Base model's answer (z' = 1)")
    wait_until_idle(page)
    for column in (block(page, "Adapted answer (second pass)"), base):  # both columns hold the turn
        assert column.get_by_test_id("user").last.inner_text().strip() == "What is 3 + 4?"
        assert column.get_by_test_id("bot").last.inner_text().strip()
    assert page.get_by_role("textbox", name="Message", exact=True).input_value() == ""  # cleared for the next one
    heat = figure(page, "z' heatmap")
    assert heat["title"].startswith("z' of this answer (prompt)") and heat["data"][0]["type"] == "heatmap"
    page.screenshot(path=shots / "1-chat.png", full_page=True)

    # 2. moving an α slider recomposes z' and redraws the heatmap (no generation)
    before = heat["data"][0]["z"]
    code = float(number_input(page, "code").input_value())
    set_slider(page, "code", 0.37 if code != 0.37 else 0.73)
    moved = wait_for_figure(page, "z' heatmap", "f.title.startsWith(\"z' of the sliders' α (manual)\")")
    page.get_by_text(re.compile(r"^Sliders moved · the next message uses manual α: code 0.(37|73)")).wait_for()
    assert moved["data"][0]["z"] != before
    assert any(abs(v) > 1e-3 for row in moved["data"][0]["z"] for v in row)
    sync_api.expect(page.get_by_role("radio", name="manual", exact=True)).to_be_checked()  # switched to manual
    wait_until_idle(page)
    page.screenshot(path=shots / "2-slider.png", full_page=True)

    # 3. a tiny few-shot CEM run on two built-in examples
    page.get_by_role("button", name=re.compile(r"^Few-shot adaptation: fit α by CEM")).click()
    run = page.get_by_role("button", name="Run CEM", exact=True)
    run.wait_for()
    for label, value in (("built-in: number of examples", 2), ("population", 4), ("generations", 2)):
        set_slider(page, label, value)
    page.get_by_role("checkbox", name="fast: log-likelihood of the answers only (no generation)", exact=True).check()
    run.click()
    page.get_by_text(re.compile(r"^done: best fitness .* on 2 examples$")).wait_for()
    fitness = wait_for_figure(page, "fitness", "f.data.length === 3 && f.data[0].x.length === 2")
    assert list(fitness["data"][0]["x"]) == [1, 2] and fitness["data"][2]["name"] == "base model (α = 0)"
    fitted = [float(number_input(page, label).input_value()) for label in LABELS]
    assert fitted != [0.37 if code != 0.37 else 0.73, 0, 0] and all(0 <= a <= 1 for a in fitted)  # the fitted α
    shown = wait_for_figure(page, "fitted α", "f.title === 'α per expert and layer'")  # "best α so far" until the end
    assert [round(a, 2) for a in shown["data"][0]["z"][0]] == [round(a, 2) for a in fitted]
    wait_for_figure(page, "z' heatmap", "JSON.stringify(f.data[0].z) !== JSON.stringify(prev)",
                    moved["data"][0]["z"])  # and the heatmap is redrawn for it
    wait_until_idle(page)
    page.get_by_role("button", name="Run CEM", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=shots / "3-cem.png", full_page=True)

    # 4. VQA: upload an image, ask, see the adapted answer
    page.get_by_role("tab", name="VQA", exact=True).click()
    page.get_by_role("button", name="Ask", exact=True).click()  # no image yet: a note, no error badges
    page.get_by_text(re.compile(r"^⚠ Not asked: Add an image")).wait_for()
    assert no_error_badges(page)
    picture = tmp_path / "sign.png"
    sign = Image.new("RGB", (192, 96), "#2a6f3e")
    ImageDraw.Draw(sign).text((60, 40), "TAXI", fill="white")
    sign.save(picture)
    page.get_by_role("tabpanel").locator("input[type=file]").first.set_input_files(picture)
    page.locator("img[src$='/sign.png']").wait_for()  # the upload reached the server and shows as a preview
    page.get_by_role("textbox", name="Question", exact=True).fill("What word is written on the sign?")
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.get_by_role("textbox", name="Adapted answer (second pass)", exact=True)
    sync_api.expect(answer).not_to_have_value("", timeout=WAIT_MS)
    sync_api.expect(page.get_by_role("textbox", name="Base model's answer", exact=True)).not_to_have_value(
        "", timeout=WAIT_MS)
    wait_until_idle(page)
    assert figure(page, "category probabilities")["data"][0]["type"] == "bar"
    # a test question (image and question from the vqa test split): both answers marked, the reference shown
    question = quiz.image_files()[0][0].example.prompt  # the first test question the tab lists
    page.get_by_role("tabpanel").get_by_text(question, exact=True).first.click()
    sync_api.expect(page.get_by_role("textbox", name="Question", exact=True)).to_have_value(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    page.get_by_text(re.compile(r"^Tally over 1 test question: base right [01]/1")).wait_for()
    assert page.get_by_role("tabpanel").get_by_text(MARK).count() == 2
    shoot(page, shots, "vqa")
    page.get_by_role("tab", name="Experts", exact=True).click()
    plot(page, "similarity of the experts").wait_for()
    shoot(page, shots, "experts")

"""The Experts tab: what is loaded, how the experts differ, upload, download and export."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import gradio as gr

from t2demo import export
from t2demo import session as sessions
from t2demo.adapt.adapter import Adapter
from t2demo.experts import EXPERT_COLUMNS, ExpertError, expert_row, load_expert
from t2demo.ui.figures import norms_figure, similarity_figure
from t2demo.ui.page_parts import Page
from t2demo.ui.panel import USER_ERRORS, alpha_of, user_errors
from t2demo.validation import check_upload_size

TITLE = "Experts"


def source_of(adapter: Adapter, expert) -> str:
    """"loaded", or "transferred from <model>" for an expert trained on another model (the text
    experts on the vision model's language model)."""
    own = expert.base_model == adapter.svf.base_model_name or expert.fingerprint == adapter.svf.fingerprint_of(list(expert.z))
    return "loaded" if own else f"transferred from {Path(expert.base_model).name}"


def experts_table(adapter: Adapter, session: sessions.Session) -> list[list]:
    """The loaded experts (and classifier, transferred ones marked), then this session's mixtures."""
    loaded = adapter.experts + ([adapter.cls_expert] if adapter.cls_expert else [])
    return ([expert_row(e, source_of(adapter, e)) for e in loaded]
            + [expert_row(e, "session") for e in session.mixtures_of(adapter).values()])


def largest_expert_file(adapter: Adapter) -> int:
    """Bytes a valid expert file for this model can have: float64 vectors and a generous header."""
    return 8 * sum(adapter.svf.ranks.values()) + 2**20


@user_errors
def upload_expert(adapter: Adapter, session: sessions.Session, path: str | None) -> tuple[list[str], str]:
    """Validate a user's expert file against the model; only a valid one becomes a few-shot mixture.
    Refusals name the file and the model by their names, never by their paths on the server."""
    if not path:
        raise sessions.PipelineError("Choose an expert file (.safetensors) to upload.")
    file_name, model = Path(path).name, adapter.svf.base_model_name
    check_upload_size(path, largest_expert_file(adapter), f"file {file_name!r}")
    try:
        expert = load_expert(path, adapter.svf)
    except ExpertError as e:
        raise ExpertError(str(e).replace(str(Path(path)), file_name).replace(model, Path(model).name)) from e
    name = session.keep(adapter, f"uploaded:{expert.label}", expert)
    return sorted(session.mixtures_of(adapter)), f"loaded {expert.label!r} ({len(expert.z)} matrices) as mixture {name!r}"


@user_errors
def export_model(adapter: Adapter, alphas, name: str, root: Path) -> str:
    """The model with W'(z') for the sliders' α as a Hugging Face folder under root."""
    target = root / sessions.clean_name(name, "export folder")
    return str(export.export_merged(adapter.svf, adapter.z_from_alpha(alpha_of(adapter, alphas)),
                                    adapter.lm.preprocessor, target))


def export_archive(adapter: Adapter, alphas, name: str) -> tuple[str, str]:
    """The exported folder as one .zip in a fresh temporary folder (for the browser to download;
    nothing is left in the server's working folder), and a line on it without server paths."""
    folder = Path(export_model(adapter, alphas, name, Path(tempfile.mkdtemp(prefix="t2demo-export-"))))
    archive = Path(shutil.make_archive(str(folder), "zip", folder.parent, folder.name))
    shutil.rmtree(folder)
    size = archive.stat().st_size / 2**20
    return str(archive), f"`{archive.name}` ({size:.1f} MB): unzip it and load the folder with `from_pretrained`."


def upload_note(adapter: Adapter, session: sessions.Session, path: str | None) -> tuple[list[str] | None, str]:
    """upload_expert's result, or no names and the refusal as a note (the file is then cleared)."""
    try:
        return upload_expert.__wrapped__(adapter, session, path)
    except USER_ERRORS as e:
        return None, f"**⚠ Not loaded:** {e}"


def build(page: Page) -> None:
    """Tables and plots per model, upload into either model's mixture menu, download and export."""
    adapters = {"text model": page.rt.text} | ({"vision model": page.rt.vision} if page.rt.vision else {})
    text = page.rt.text
    with gr.Tab(TITLE):
        which = gr.Radio(list(adapters), value="text model", label="model")
        table = gr.Dataframe(headers=EXPERT_COLUMNS, value=experts_table(text, sessions.Session()), interactive=False,
                             label="experts (loaded with the app, transferred, and this session's mixtures)")
        pick = gr.Dropdown(text.labels, value=text.labels[0] if text.labels else None,
                           label="expert for the per-matrix norms")
        with gr.Row():
            norms = gr.Plot(value=norms_figure(text.svf, text.experts[0] if text.experts else None),
                            label="‖z − 1‖ per matrix")
            similarity = gr.Plot(value=similarity_figure(text.experts), label="similarity of the experts")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Upload an expert (.safetensors); it is validated against the model",
                                 file_types=[".safetensors"], type="filepath")
                upload_status = gr.Markdown()
            with gr.Column():
                download = gr.DownloadButton("Download the chat sliders' mixture as an expert file",
                                             value=mixture_or_none(text, [0.0] * len(text.experts)))
                export_name = gr.Textbox(label="name of the exported model", value="t2demo-adapted")
                export_button = gr.Button("Export the adapted text model (sliders' α) as a Hugging Face folder (.zip)")
                export_file = gr.File(label="exported model", interactive=False, height=90)
                export_status = gr.Markdown()
    _wire(page, adapters, which, table, pick, norms, similarity, upload, upload_status)
    sliders = page.panels["text"].sliders
    for slider in sliders:  # the file follows the sliders, so one click downloads it
        slider.change(lambda *alphas: mixture_or_none(text, alphas), sliders, download, api_visibility="private")
    export_button.click(lambda name, *alphas: export_archive(text, alphas, name), [export_name, *sliders],
                        [export_file, export_status], api_visibility="private")


def mixture_or_none(adapter: Adapter, alphas) -> str | None:
    """The sliders' mixture as a file to download (None without experts: the button has nothing)."""
    return sessions.mixture_file(adapter, alpha_of(adapter, alphas)) if adapter.experts else None


def _wire(page: Page, adapters: dict, which, table, pick, norms, similarity, upload, upload_status) -> None:
    """The model switch, the norms picker and the upload into the right mixture menu."""
    def show(sess, model_name):
        a = adapters[model_name]
        return (experts_table(a, sess), gr.update(choices=a.labels, value=a.labels[0] if a.labels else None),
                norms_figure(a.svf, a.experts[0] if a.experts else None), similarity_figure(a.experts))

    which.change(show, [page.session, which], [table, pick, norms, similarity], api_visibility="private")
    pick.change(lambda m, lab: norms_figure(adapters[m].svf, next((e for e in adapters[m].experts if e.label == lab), None)),
                [which, pick], norms, api_visibility="private")
    menus = {panel.adapter: panel.mixture for panel in page.panels.values()}

    def upload_fn(sess, model_name, path):
        a = adapters[model_name]
        names, line = upload_note(a, sess, path)
        if names is None:  # refused: the note, and the file taken off the widget
            return line, None, gr.skip(), *(gr.skip() for _ in menus)
        return line, gr.skip(), experts_table(a, sess), *(gr.update(choices=names) if m is a else gr.skip() for m in menus)

    upload.upload(upload_fn, [page.session, which, upload], [upload_status, upload, table, *menus.values()],
                  api_visibility="private")

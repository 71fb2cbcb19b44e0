"""What the tabs of one page share: the runtime, the session state and each model's panel."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from t2demo.runtime import Runtime


@dataclass
class Page:
    """Built by ui.page.build_app and handed to every tab's build(); tabs built later can wire
    to the panels of tabs built earlier (the Experts tab fills the mixture menus)."""

    rt: Runtime
    session: gr.State
    panels: dict = field(default_factory=dict)  # "text" / "vision" -> ui.panel.Panel

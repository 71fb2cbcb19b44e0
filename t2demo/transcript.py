"""A chat as turn records: each turn's message, adapted and base answers, first-pass record and
grade, and the views drawn from them (two matching chat columns, the word diff of a turn).

Why: base and adapted answers are comparable only when every turn keeps both, rendered the same
way, with the first pass that produced the adapted one (strategy, probabilities, experts, α, time)
recorded beside it rather than shown once and then left stale.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

import torch

from t2demo import quiz
from t2demo.adapt.dispatch import Dispatch

ADAPTED_ONLY, BASE_ONLY = "adapted only", "base only"


@dataclass
class TurnRecord:
    """One turn; `adapted` and `base` grow while the answers stream."""

    message: str
    first: Dispatch | None = None
    adapted: str = ""
    base: str = ""
    question: quiz.Question | None = None
    grade: quiz.Grade | None = None
    done: bool = False  # both answers complete (only done turns are history for the next one)
    stopped: bool = False  # the viewer pressed Stop: the answers stay as far as they got


def alpha_text(d: Dispatch) -> str:
    """α per expert, rounded, with the base share 1 − Σα explained (and Σα > 1 called out)."""
    if not d.labels:
        return f"the z' of {d.mixture} (used whole, no α)" if d.mixture else "no experts: the base weights (z' = 1)"
    alphas = d.expert_alpha
    layered = " (mean over layers)" if torch.as_tensor(d.alpha).ndim == 2 else ""
    shown = ", ".join(f"{lab} {a:.2f}" for lab, a in zip(d.labels, alphas)) + layered
    total = sum(alphas)
    if total > 1 + 5e-3:
        share = (f"; Σα = {total:.2f} > 1, so z' goes past the experts (base share 1 − Σα = {1 - total:.2f}: "
                 "the base weights are subtracted, not kept)")
    elif total > 5e-3:
        share = f"; base share 1 − Σα = {1 - total:.2f} (that part of z' stays at the base weights)"
    else:
        share = " (all 0: the base weights)"
    return f"α = {shown}{share}"


def first_pass_record(d: Dispatch) -> str:
    """The first pass of one turn, in one paragraph: strategy, reading, experts, α and time."""
    if d.probabilities:
        top = sorted(d.probabilities.items(), key=lambda kv: -kv[1])[:3]
        read = "read as " + ", ".join(f"{c} {p:.2f}" for c, p in top)
        read += f" ({d.reading} needs an image: served as {d.category}) → " if d.reading != d.category else " → "
    else:
        read = "no classification (α given) → " if d.mixture is None else "few-shot mixture → "
    chosen = [lab for lab, a in zip(d.labels, d.expert_alpha) if a > 5e-3]
    experts = ", ".join(chosen) if chosen else (d.mixture or "none (base weights)")
    return f"**{d.strategy}**, {d.seconds * 1000:.0f} ms: {read}experts {experts}; {alpha_text(d)}"


def grade_line(g: quiz.Grade | None, which: str) -> str:
    if g is None:
        return ""
    return f"\n\n---\n{quiz.verdict(g, which)}"


def _answer(text: str, r: TurnRecord, which: str) -> str:
    stopped = "\n\n*(stopped)*" if r.stopped else ""
    return (text or ("" if r.stopped else "…")) + stopped + grade_line(r.grade, which)


def columns(records: list[TurnRecord]) -> tuple[list[dict], list[dict]]:
    """Chat messages for the adapted and the base column, turn for turn the same shape (so the
    columns line up), each answer followed by its right/wrong mark when the turn was graded and, once
    both answers are complete, by the turn's own word diff (collapsed, the same in both columns)."""
    adapted, base = [], []
    for r in records:
        diff = diff_message(r)
        user = {"role": "user", "content": r.message}
        title = "First pass" if r.first is None else f"First pass: {r.first.strategy}, experts and α"
        note = first_pass_record(r.first) if r.first is not None else "…"
        adapted += [user, {"role": "assistant", "content": note, "metadata": {"title": title, "status": "done"}},
                    {"role": "assistant", "content": _answer(r.adapted, r, "adapted")}]
        base += [user, {"role": "assistant", "content": "The base model's weights (z' = 1 everywhere).",
                        "metadata": {"title": "No first pass: the base model", "status": "done"}},
                 {"role": "assistant", "content": _answer(r.base, r, "base")}]
        if diff is not None:
            adapted.append(diff)
            base.append(dict(diff))
    return adapted, base


DIFF_STYLE = {ADAPTED_ONLY: "background:#9be3a7;text-decoration:none", BASE_ONLY: "background:#f4b6b6"}
_MARKDOWN = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~$:"}  # read as text, never as markdown syntax


def _literal(text: str) -> str:
    """Text shown as written inside a chat message: HTML- and markdown-escaped, newlines as <br>,
    runs of spaces kept (code indentation)."""
    out = html.escape(text, quote=False).translate(str.maketrans(_MARKDOWN))
    return re.sub(r" (?= )", "&nbsp;", out).replace("\n", "<br>")


def diff_markup(base: str, adapted: str) -> str:
    """A turn's word diff as chat-message HTML: words only the adapted answer has on green (<ins>),
    words only the base answer has struck through on red (<del>), colours as the latest-turn view."""
    tags = {ADAPTED_ONLY: "ins", BASE_ONLY: "del"}
    return "".join(_literal(t) if kind is None else f'<{tags[kind]} style="{DIFF_STYLE[kind]}">{_literal(t)}</{tags[kind]}>'
                   for t, kind in word_diff(base, adapted))


def diff_message(r: TurnRecord) -> dict | None:
    """The collapsed note under a turn's answers: its word diff and how much the answers share
    (None while the answers stream: a row ahead of the other would read as a difference)."""
    if not (r.done or r.stopped) or not (r.adapted or r.base):
        return None
    body = diff_markup(r.base, r.adapted) if r.base != r.adapted else _literal(r.adapted)
    return {"role": "assistant", "content": f"{diff_summary(r.base, r.adapted)}\n\n{body}",
            "metadata": {"title": f"Word diff of this turn: {diff_title(r.base, r.adapted)}", "status": "done"}}


def diff_title(base: str, adapted: str) -> str:
    if base == adapted:
        return "identical answers"
    return f"{shared(base, adapted):.0%} shared (green: adapted only, red: base only)"


def word_diff(base: str, adapted: str) -> list[tuple[str, str | None]]:
    """The adapted answer with the words base lacks marked, and base's own words struck in, for a
    highlighted-text view; whitespace is kept so the text reads as written."""
    a, b = re.findall(r"\s+|\S+", base), re.findall(r"\s+|\S+", adapted)
    out: list[tuple[str, str | None]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("".join(b[j1:j2]), None))
            continue
        if i2 > i1:
            out.append(("".join(a[i1:i2]), BASE_ONLY))
        if j2 > j1:
            out.append(("".join(b[j1:j2]), ADAPTED_ONLY))
    return out


def diff_summary(base: str, adapted: str) -> str:
    """One line: identical, or how much of the text the two answers share."""
    if base == adapted:
        return "The two answers are identical: adaptation did not change this answer."
    return f"The answers differ ({shared(base, adapted):.0%} of the text shared); highlighted below."


def shared(base: str, adapted: str) -> float:
    """The share of the two answers' text in common (difflib's ratio, 1.0 when identical)."""
    return difflib.SequenceMatcher(None, base, adapted, autojunk=False).ratio()


def pairs(records: list[TurnRecord]) -> list[tuple[str, str]]:
    """Earlier turns for the chat template: the adapted conversation."""
    return [(r.message, r.adapted) for r in records if r.done]

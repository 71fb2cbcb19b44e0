"""The app's figures: plain functions from first-pass results, z' and experts to plotly figures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from t2demo.adapt.dispatch import Dispatch
from t2demo.experts import Expert, change_norms, change_similarity
from t2demo.svf import SVF


def probabilities_figure(d: Dispatch | None) -> go.Figure:
    fig = go.Figure()
    if d is not None and d.probabilities:
        cats = list(d.probabilities)
        fig.add_bar(x=cats, y=[d.probabilities[c] for c in cats],
                    marker_color=["#d62728" if c == d.category else "#1f77b4" for c in cats],
                    hovertemplate="%{x}: %{y:.3f}<extra></extra>")
        title = f"first pass ({d.strategy}): {d.category}"
        if d.reading != d.category:  # a line of its own: one line would not fit a phone's width
            title += f"<br><sup>read as {d.reading}, which needs an image</sup>"
    else:
        title = "first pass: no classification (manual or few-shot α)" if d is not None else "first pass"
        fig.update_xaxes(visible=False)  # no bars: an empty numeric axis would only puzzle
    top = 60 if "<br>" in title else 40
    fig.update_layout(title=title, yaxis=dict(range=[0, 1], title="probability"), height=220 + top - 40,
                      margin=dict(l=50, r=10, t=top, b=40))
    return fig


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above x (a colour range people can read)."""
    k = math.floor(math.log10(max(x, 1e-6)))
    return next(m * 10.0**k for m in (1, 2, 2.5, 5, 10) if m * 10.0**k >= x * (1 - 1e-9))


def heat_limit(svf: SVF, zs: Sequence[Mapping[str, torch.Tensor]]) -> float:
    """One symmetric colour range for every z' heatmap of a model: the largest |mean log|z||
    of any expert alone (α = 1), rounded up. A mix with α in [0, 1] and Σα ≤ 1 stays inside it, so
    two answers' heatmaps are compared by colour; beyond it (Σα > 1) cells take the end colour."""
    peaks = [float(svf.scaling_grid(z)[1].nan_to_num(0).abs().max()) for z in zs]
    return nice_ceiling(max(peaks, default=0.0) or 1e-3)


def heatmap_figure(svf: SVF, z: dict | None, title: str, limit: float = 0.1) -> go.Figure:
    """Mean log|z'| per (layer, matrix kind) on the fixed range ±limit (heat_limit)."""
    kinds, grid = svf.scaling_grid(z)
    fig = go.Figure(go.Heatmap(
        z=grid.tolist(), x=kinds, y=list(range(svf.num_layers)), colorscale="RdBu_r", zmin=-limit, zmax=limit,
        colorbar=dict(title=f"mean log|z'|<br>fixed ±{limit:g}"),
        hovertemplate="layer %{y}<br>%{x}<br>mean log|z'| = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=dict(text=title, font_size=13), xaxis_title="adapted matrix", yaxis_title="decoder layer",
                      height=340, margin=dict(l=50, r=10, t=50, b=60))
    return fig


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """1, 2, 5 × 10^k between lo and hi, labelled in full ("0.5", not plotly's minor "5")."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    vals = [float(f"{m}e{k}") for k in decades for m in (1, 2, 5)]  # exact decimals: 0.2, not 0.20000000000000001
    vals = [v for v in vals if lo <= v <= hi] or [lo, hi]
    return vals, [f"{v:g}" for v in vals]


def detail_figure(svf: SVF, z: dict | None, name: str | None) -> go.Figure:
    """One matrix: z' along the singular-value index (with the z' = 1 line of the base model), and below
    it the spectrum before (wide grey) and after (thin, dashed, on top) so both stay visible. Stacked,
    not side by side: the plot sits in a narrow column, and at phone width side-by-side panels overlap."""
    fig = make_subplots(rows=2, cols=1, subplot_titles=("z' per singular value", "σ before / after"),
                        vertical_spacing=0.2)
    if name in svf.ranks:
        sigma = svf.spectrum(name)
        zv = z[name].float() if z is not None and name in z else torch.ones_like(sigma)
        index, after = list(range(len(sigma))), sigma * zv
        fig.add_scatter(x=index, y=zv.tolist(), name="z'", line=dict(color="#d62728"), row=1, col=1)
        fig.add_hline(y=1, line=dict(dash="dot", color="grey"), annotation_text="z' = 1 (base)",
                      annotation_font_size=10, row=1, col=1)
        fig.add_scatter(x=index, y=sigma.tolist(), name="σ before (base)", line=dict(color="#bbbbbb", width=6),
                        row=2, col=1)
        fig.add_scatter(x=index, y=after.tolist(), name="σ·z' after (adapted)",
                        line=dict(color="#1f77b4", width=2, dash="dash"), row=2, col=1)
        both = torch.cat([sigma, after]).clamp_min(1e-8)
        ticks, labels = log_ticks(float(both.min()), float(both.max()))
        fig.update_yaxes(type="log", tickvals=ticks, ticktext=labels, title_text="σ (log scale)", row=2, col=1)
        fig.update_yaxes(title_text="z'", row=1, col=1)
    fig.update_annotations(font_size=12)  # the subplot titles
    fig.update_xaxes(title=dict(text="singular-value index", font_size=11), row=2, col=1)
    fig.update_layout(title=dict(text=name or "pick a layer and a matrix", font_size=13), height=480,
                      legend=dict(orientation="h", x=0, y=-0.18), margin=dict(l=55, r=10, t=60, b=60))
    return fig


def layer_alpha_figure(alpha, labels: list[str], title: str = "α per expert and layer") -> go.Figure:
    """α per expert and layer, for mixtures fitted per layer (a flat α shows as equal columns)."""
    a = torch.as_tensor(alpha, dtype=torch.float32)
    a = a[:, None] if a.ndim == 1 else a
    fig = go.Figure(go.Heatmap(z=a.T.tolist(), x=labels, colorscale="Viridis", colorbar=dict(title="α"),
                               zmin=0 if float(a.min()) >= 0 else None,  # non-negative α: the scale starts at 0
                               zmax=float(a.max()) if float(a.min()) >= 0 and float(a.max()) > 0 else None,
                               hovertemplate="layer %{y}<br>%{x}: α = %{z:.3f}<extra></extra>"))
    yaxis = (dict(title="layer", dtick=max(1, -(-a.shape[1] // 12))) if a.shape[1] > 1
             else dict(tickvals=[0], ticktext=["all layers"]))  # a flat α: one row, not "layer -0.5 … 0.5"
    fig.update_layout(title=title, yaxis=yaxis, height=260, margin=dict(l=70, r=10, t=40, b=40))
    return fig


def cem_figure(history: list[dict]) -> go.Figure:
    fig = go.Figure()
    gens = [h["generation"] for h in history]
    fig.add_scatter(x=gens, y=[h["best"] for h in history], name="best", mode="lines+markers")
    fig.add_scatter(x=gens, y=[h["mean"] for h in history], name="mean", mode="lines+markers")
    if history and "base" in history[-1]:  # the bar a mixture has to beat
        fig.add_scatter(x=gens, y=[h["base"] for h in history], name="base model (α = 0)", mode="lines",
                        line=dict(dash="dash", color="grey"))
    fig.update_layout(title="CEM fitness per generation", yaxis_title="fitness", height=320,
                      xaxis=dict(title="generation", dtick=max(1, -(-len(gens) // 10))),  # whole generations
                      legend=dict(orientation="h", x=0, y=-0.35),  # below: at phone width a side legend takes the plot's width
                      margin=dict(l=50, r=10, t=40, b=80))
    return fig


def similarity_figure(experts: list[Expert]) -> go.Figure:
    """Cosine similarity of the experts' changes z − 1 (z itself is ≈ 1 everywhere, so its cosine is ≈ 1)."""
    labels = [e.label for e in experts]
    sims = change_similarity(experts)
    fig = go.Figure(go.Heatmap(z=sims, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu_r",
                               colorbar=dict(title="cosine"),
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title="similarity of experts: cosine of (z − 1)", height=320, margin=dict(l=60, r=10, t=40, b=40))
    return fig


def norms_figure(svf: SVF, expert: Expert | None) -> go.Figure:
    """‖z − 1‖ per matrix of one expert (layers × matrices)."""
    kinds, grid = svf.layer_grid(change_norms(expert) if expert else {})
    top = float(grid.nan_to_num(0).max()) or 1.0  # plotly uses zmin only with zmax
    fig = go.Figure(go.Heatmap(z=grid.tolist(), x=kinds, colorscale="Viridis", zmin=0, zmax=top,  # a norm: from 0
                               colorbar=dict(title="‖z − 1‖"),
                               hovertemplate="layer %{y}<br>%{x}: ‖z − 1‖ = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=f"‖z − 1‖ per matrix of expert {expert.label if expert else '-'}",
                      yaxis_title="decoder layer", xaxis_title="matrix", height=320,
                      margin=dict(l=50, r=10, t=40, b=60))
    return fig

"""The app's figures: plain functions from first-pass results, z' and experts to plotly figures."""

from __future__ import annotations

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
    else:
        title = "first pass: no classification (manual or few-shot α)" if d is not None else "first pass"
        fig.update_xaxes(visible=False)  # no bars: an empty numeric axis would only puzzle
    fig.update_layout(title=title, yaxis=dict(range=[0, 1], title="probability"), height=260,
                      margin=dict(l=50, r=10, t=40, b=40))
    return fig


def heatmap_figure(svf: SVF, z: dict | None, title: str) -> go.Figure:
    kinds, grid = svf.scaling_grid(z)
    limit = max(float(grid.nan_to_num(0).abs().max()), 1e-3)
    fig = go.Figure(go.Heatmap(
        z=grid.tolist(), x=kinds, y=list(range(svf.num_layers)), colorscale="RdBu_r", zmin=-limit, zmax=limit,
        colorbar=dict(title="mean log|z'|"),
        hovertemplate="layer %{y}<br>%{x}<br>mean log|z'| = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="adapted matrix", yaxis_title="decoder layer", height=340,
                      margin=dict(l=50, r=10, t=40, b=60))
    return fig


def detail_figure(svf: SVF, z: dict | None, name: str | None) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("z' per singular value", "σ before / after (log)"),
                        horizontal_spacing=0.14)
    if name in svf.ranks:
        sigma = svf.spectrum(name)
        zv = z[name].float() if z is not None and name in z else torch.ones_like(sigma)
        index = list(range(len(sigma)))
        fig.add_scatter(x=index, y=zv.tolist(), name="z'", row=1, col=1)
        fig.add_scatter(x=index, y=sigma.tolist(), name="σ (base)", row=1, col=2)
        fig.add_scatter(x=index, y=(sigma * zv).tolist(), name="σ·z' (adapted)", row=1, col=2)
        fig.update_yaxes(type="log", row=1, col=2)
    fig.update_annotations(font_size=12)  # the subplot titles: the default size overlaps in a narrow column
    fig.update_xaxes(title=dict(text="singular-value index", font_size=11))
    fig.update_layout(title=dict(text=name or "pick a matrix", font_size=13), height=320,
                      legend=dict(orientation="h", x=0, y=-0.3), margin=dict(l=50, r=10, t=60, b=70))
    return fig


def layer_alpha_figure(alpha, labels: list[str]) -> go.Figure:
    """α per expert and layer, for mixtures fitted per layer (a flat α shows as equal columns)."""
    a = torch.as_tensor(alpha, dtype=torch.float32)
    a = a[:, None] if a.ndim == 1 else a
    fig = go.Figure(go.Heatmap(z=a.T.tolist(), x=labels, colorscale="Viridis", colorbar=dict(title="α"),
                               hovertemplate="layer %{y}<br>%{x}: α = %{z:.3f}<extra></extra>"))
    yaxis = (dict(title="layer", dtick=max(1, -(-a.shape[1] // 12))) if a.shape[1] > 1
             else dict(tickvals=[0], ticktext=["all layers"]))  # a flat α: one row, not "layer -0.5 … 0.5"
    fig.update_layout(title="α per expert and layer", yaxis=yaxis, height=260, margin=dict(l=70, r=10, t=40, b=40))
    return fig


def cem_figure(history: list[dict]) -> go.Figure:
    fig = go.Figure()
    gens = [h["generation"] for h in history]
    fig.add_scatter(x=gens, y=[h["best"] for h in history], name="best", mode="lines+markers")
    fig.add_scatter(x=gens, y=[h["mean"] for h in history], name="mean", mode="lines+markers")
    if history and "base" in history[-1]:  # the bar a mixture has to beat
        fig.add_scatter(x=gens, y=[h["base"] for h in history], name="base model (α = 0)", mode="lines",
                        line=dict(dash="dash", color="grey"))
    fig.update_layout(title="CEM fitness per generation", yaxis_title="fitness", height=280,
                      xaxis=dict(title="generation", dtick=max(1, -(-len(gens) // 10))),  # whole generations
                      margin=dict(l=50, r=10, t=40, b=40))
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
    fig = go.Figure(go.Heatmap(z=grid.tolist(), x=kinds, colorscale="Viridis", colorbar=dict(title="‖z − 1‖"),
                               hovertemplate="layer %{y}<br>%{x}: ‖z − 1‖ = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=f"per-matrix norms: {expert.label if expert else '-'}", yaxis_title="layer", height=320,
                      margin=dict(l=50, r=10, t=40, b=60))
    return fig

"""The words of the page: collapsed explanations beside the widgets they explain, and the CSS."""

EXPLAIN_SVD = """**SVD and z-vectors.** Every adapted weight matrix is factored once as W = U Σ Vᵀ. An expert is a
vector z with one number per singular value; the adapted matrix is W' = U (Σ ⊙ z) Vᵀ. z = 1 is the base
model; z > 1 amplifies a direction the model already has, z < 1 damps it. An expert for a whole model
is a few thousand numbers — far fewer than a LoRA adapter — and experts can be mixed: z' = Σ αₖ zₖ + (1 − Σα)·1
(α = 0 is the base model, one α at 1 is that expert, in between is part of the way)."""
EXPLAIN_PASSES = """**Two passes.** Transformer² answers in two passes. The *first pass* works out what the message
needs: the base model (prompt-based) or the model with the classification expert reads a
classification instruction and we read the probabilities of the category labels. That gives α — which
experts to use and how much. The *second pass* answers with the weights W'(z'), z' = Σ αₖ zₖ + (1 − Σα)·1. The base
answer beside it shows what adaptation changed."""
EXPLAIN_HEATMAP = """**The heatmap** shows z' for the current α: one row per decoder layer, one column per adapted
matrix, colour = mean log|z'| over that matrix's singular values (0 = unchanged, red = amplified, blue =
damped). Pick a matrix below it to see z' along the singular-value index and the spectrum before and
after."""
EXPLAIN_CEM = """**Few-shot CEM.** Given a handful of solved examples, the Cross-Entropy Method searches α: each
generation samples a population of α (the first also tries each set of experts at full weight), scores
each (accuracy on the examples, ties broken by the model's confidence in its own right answers), and
refits its sampling distribution to the best fifth. The result is a mixture you can save and then pick as the
few-shot strategy for later messages."""


CSS = """
.t2-note {font-size: 0.9em; color: #555;}
footer {display: none !important;}
/* example thumbnails whole (letterboxed), not cropped to a square */
.t2-examples .container.table {width: 9rem !important; height: 4.5rem !important;}
.t2-examples .container img {object-fit: contain !important;}
.t2-buttons {flex-wrap: wrap !important;}
.t2-buttons button {white-space: nowrap; min-width: max-content !important;}
"""

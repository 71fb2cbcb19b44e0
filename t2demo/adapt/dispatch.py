r"""The first pass of Transformer²: read which category a prompt belongs to, and turn a category
distribution into expert weights α. The strategies (adapt.registry) are built from these pieces.

Classifying: the model (base weights, or the cls expert's) reads tasks.classification_prompt(prompt) and its
answer is read, not generated: after the chat template's assistant header and a teacher-forced
"\boxed{", each category label (plus its closing "}") is scored by its full token sequence's
log-probability (the prompt is read once and its KV cache shared by the K candidates), and a
softmax over the K sums gives the distribution over tasks.CATEGORIES.

From the distribution, mode "hard" (the paper) takes the argmax category: its expert gets α = 1,
and a category without an expert ("other") means the base weights. A prompt without an image cannot be
served by an image category (vqa), so its argmax is taken over the other categories (`servable`): the
paper's text first pass offers code, math, reasoning and other only.
Mode "soft" gives each expert α = p(its category); svf.mix hands the rest of the mass, 1 − Σα, to
the base model (z' = Σₖ αₖ zₖ + (1 − Σα)·1), so an unsure first pass hedges towards the base.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from transformers import DynamicCache

from t2demo import tasks
from t2demo.generation import format_chat, tokenize_chat
from t2demo.models import LoadedModel
from t2demo.svf import SVF

MODES = ("hard", "soft")


class PipelineError(ValueError):
    """A request the pipeline cannot serve, with a message a person can act on."""


@dataclass
class Dispatch:
    """What the first pass decided: z' = svf.mix(experts' z, alpha), experts in label order."""

    probabilities: dict[str, float]  # over tasks.CATEGORIES; empty when the strategy does not classify
    category: str | None  # the argmax over the servable categories; None when the strategy does not classify
    alpha: list  # per expert (K,), or per expert and layer (K, L) as nested lists
    seconds: float
    strategy: str  # its name in adapt.registry.STRATEGIES
    labels: list[str] = field(default_factory=list)  # the experts α refers to, in order
    mixture: str | None = None  # the label of the few-shot mixture whose z' answers, if any

    @property
    def reading(self) -> str | None:
        """The argmax over every category, image ones included: what the classifier read (dispatch accuracy
        scores this; `category` may differ only for a prompt without an image read as an image category)."""
        return max(self.probabilities, key=self.probabilities.get) if self.probabilities else None

    @property
    def expert_alpha(self) -> list[float]:
        """α per expert (per-layer α: its mean over layers); empty when z' is not a mix of experts
        (e.g. an uploaded expert used as the few-shot mixture)."""
        if not self.labels:
            return []
        return torch.as_tensor(self.alpha, dtype=torch.float32).reshape(len(self.labels), -1).mean(1).tolist()

    @property
    def base_share(self) -> float:
        """1 − Σα: how much of z' is left to the base weights (svf.mix); 0 for a z' that is not a mix."""
        return 1.0 - sum(self.expert_alpha) if self.labels else 0.0


def context_window(model) -> int:
    """Positions the (language) model can attend over."""
    return int(model.config.get_text_config().max_position_embeddings)


def check_fits(model, n_tokens: int, what: str) -> None:
    """Refuse, rather than silently truncate, an input the model cannot see in full."""
    limit = context_window(model)
    if n_tokens > limit:
        raise PipelineError(f"{what} needs {n_tokens} tokens but the model's context window is {limit}; "
                            "shorten the prompt (or lower max_new_tokens)")


def check_image(lm: LoadedModel, image) -> None:
    """Refuse an image for a model that cannot read one."""
    if image is not None and not lm.vision:
        raise PipelineError("an image was given but this is a text-only model; load a vision (LLaVA-Next) model "
                            "to ask about images")


def label_ids(tokenizer, prefix: str, label: str) -> list[int]:
    """Token ids of `label + "}"` as they follow `prefix`: taken from the joint tokenization when
    it extends the prefix's own (so merges and sentencepiece's leading space come out as the
    model saw them in training), else the label tokenized alone."""
    head = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    joint = tokenizer(prefix + label + "}", add_special_tokens=False)["input_ids"]
    if joint[:len(head)] == head and len(joint) > len(head):
        return joint[len(head):]
    return tokenizer(label + "}", add_special_tokens=False)["input_ids"]


class InstructionCache:
    """Keys and values of the classification prompt's fixed opening, per weights (base or cls).

    Every text first pass starts with the same tokens: the chat header and the instruction up to
    the user's request. They are read once per weights and reused (prefix caching, as vLLM does),
    so a first pass computes only the request and the closing line. The owner must keep the
    model's weights fixed for a key (adapt.adapter.Adapter does: its passes run under svf.adapted).
    With an image the image tokens come first, so vision prompts are read whole.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[object, list[int], DynamicCache]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def head_ids(lm: LoadedModel) -> list[int]:
        """The instruction's opening up to the last line break before the request (a token boundary
        in any tokenizer that does not merge across lines)."""
        text = format_chat(lm.preprocessor, tasks.CLASSIFICATION_INSTRUCTION)
        if "{prompt}" not in text:  # a template that rewrites the request: nothing to share
            return []
        head = text[:text.index("{prompt}")]
        head = head[:head.rindex("\n") + 1] if "\n" in head else head
        return tokenize_chat(lm, [head])["input_ids"][0].tolist()

    def lookup(self, lm: LoadedModel, ids: list[int], weights: object) -> tuple[int, DynamicCache | None]:
        """(n, a copy of the cache of the first n tokens of ids) for the model under `weights` (None:
        the base weights), or (0, None) when ids does not start with the cached opening."""
        with self._lock:
            entry = self._entries.get(id(weights))
            if entry is None or entry[0] is not weights:  # an id is only trusted with its object alive
                if len(self._entries) >= 4:
                    self._entries.clear()
                head = self.head_ids(lm)
                if not head:
                    return 0, None
                kv = lm.model(input_ids=torch.tensor([head], device=lm.device), use_cache=True,
                              logits_to_keep=1).past_key_values
                entry = self._entries[id(weights)] = (weights, head, kv)
            _, head, kv = entry
            if len(ids) <= len(head) or ids[:len(head)] != head:
                return 0, None
            return len(head), copy.deepcopy(kv)


@torch.no_grad()
def _label_scores(lm: LoadedModel, prompt: str, image, labels: Sequence[str],
                  cache: InstructionCache | None = None, weights: object = None) -> Tensor:
    """Σ log p(label tokens) after the classification prompt and "\\boxed{", one row per label.

    The prompt (and its image) goes through the model once, after the instruction's opening taken
    from `cache` (the model running under `weights`) when given; its KV cache is then repeated for
    the K labels, whose short continuations are scored in one batched forward.
    """
    model, tokenizer = lm.model, lm.tokenizer
    prefix = format_chat(lm.preprocessor, tasks.classification_prompt(prompt), image=image is not None) + "\\boxed{"
    enc = tokenize_chat(lm, [prefix], [image] if image is not None else None)
    enc.pop("attention_mask")
    conts = [label_ids(tokenizer, prefix, label) for label in labels]
    width = max(map(len, conts))
    check_fits(model, enc["input_ids"].shape[1] + width, "the classification prompt")
    cached, past = 0, None
    if cache is not None and image is None:
        cached, past = cache.lookup(lm, enc["input_ids"][0].tolist(), weights)
        enc["input_ids"] = enc["input_ids"][:, cached:]
    out = model(**{k: v.to(model.device) for k, v in enc.items()}, past_key_values=past, use_cache=True,
                logits_to_keep=1)
    ids = torch.full((len(labels), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for k, c in enumerate(conts):  # right padding: causal attention keeps it out of the scored positions
        ids[k, :len(c)] = torch.tensor(c)
        mask[k, :len(c)] = 1
    logits = out.logits[:, -1:].expand(len(labels), -1, -1)
    if width > 1:  # a label's last token is scored, never read: feed all but the last column
        kv = out.past_key_values
        kv.batch_repeat_interleave(len(labels))
        logits = torch.cat([logits, model(input_ids=ids[:, :-1].to(model.device), past_key_values=kv).logits], 1)
    logits = logits.float()
    logp = logits.log_softmax(-1).gather(-1, ids[..., None].to(logits.device)).squeeze(-1)
    return (logp * mask.to(logp.device)).sum(-1).cpu()


def category_probabilities(lm: LoadedModel, prompt: str, image=None, svf: SVF | None = None,
                           cls_z: Mapping[str, Tensor] | None = None,
                           cache: InstructionCache | None = None) -> dict[str, float]:
    """p(category) over tasks.CATEGORIES from one forward pass, with the base weights (or cls_z).

    With `svf` the pass runs under its lock (svf.adapted), so a concurrent second pass never lends
    it adapted weights; cls_z and cache need svf (the cache is keyed by the weights svf applies).
    """
    check_image(lm, image)
    if (cls_z is not None or cache is not None) and svf is None:
        raise PipelineError("the classification expert and the instruction cache need the model's SVF engine (svf=...)")
    if svf is None:
        scores = _label_scores(lm, prompt, image, tasks.CATEGORIES)
    else:
        with svf.adapted(cls_z):
            scores = _label_scores(lm, prompt, image, tasks.CATEGORIES, cache, cls_z)
    return dict(zip(tasks.CATEGORIES, scores.softmax(0).tolist()))


def servable(probabilities: Mapping[str, float], image) -> dict[str, float]:
    """The categories a request can be served in: without an image, not those whose tasks read one.
    Their probabilities stay as read (not renormalised), so soft α is unchanged and hard α takes the
    next reading."""
    if image is not None:
        return dict(probabilities)
    return {c: p for c, p in probabilities.items() if c not in tasks.IMAGE_CATEGORIES}


def alpha_from_probabilities(probabilities: Mapping[str, float], labels: Sequence[str],
                             mode: str = "hard") -> list[float]:
    """α per expert label for a category distribution; see the module docstring."""
    if mode not in MODES:
        raise PipelineError(f"unknown mode {mode!r}; choose from {MODES}")
    if mode == "hard":
        best = max(probabilities, key=probabilities.get)
        alpha = [1.0 if label == best else 0.0 for label in labels]
    else:
        alpha = [float(probabilities.get(label, 0.0)) for label in labels]
    return alpha


def check_alpha(alpha, n_experts: int, num_layers: int, bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """α as a float tensor of shape (K,) or (K, L), finite and inside bounds, or a PipelineError."""
    try:
        a = torch.as_tensor(alpha, dtype=torch.float32)
    except (TypeError, ValueError) as e:
        raise PipelineError(f"alpha must be numbers, got {alpha!r}") from e
    if a.shape not in ((n_experts,), (n_experts, num_layers)):
        raise PipelineError(f"alpha has shape {tuple(a.shape)}; expected ({n_experts},) (one per expert) "
                            f"or ({n_experts}, {num_layers}) (per expert and layer)")
    if not bool(torch.isfinite(a).all()):
        raise PipelineError("alpha holds non-finite values (NaN or inf)")
    lo, hi = bounds
    if bool((a < lo).any() or (a > hi).any()):
        raise PipelineError(f"alpha {a.tolist()} is outside the bounds [{lo}, {hi}]")
    return a

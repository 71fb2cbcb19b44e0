"""The two passes of Transformer² behind one object, for a text model or a LLaVA-Next model.

    adapter = Adapter(lm, experts=[math, code, reasoning], cls_expert=cls)
    first, stream = adapter.answer("What is 3 + 4?", strategy="prompt")
    print(first.category, first.alpha)        # the first pass, already done
    print("".join(stream))                    # the second pass, streamed as it is generated

The second pass is a request to the adapter's batching scheduler (serving.Scheduler): requests
that arrive together, from any thread, are answered in one batch, each row with its own z', under
the SVF lock for the batch; the caller only reads text. A reader that stops early (closes the
stream) ends its row at the next token and never keeps the lock.

Prompts longer than the context window are refused with a PipelineError, never truncated: cutting
the start of a prompt changes the question silently, and for the first pass it would cut the
classification instruction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from t2demo.adapt import cem
from t2demo.adapt.dispatch import Dispatch, InstructionCache, PipelineError, check_fits, check_image
from t2demo.adapt.registry import get_strategy
from t2demo.adapt.strategy import Request
from t2demo.experts import Expert, mixture_expert
from t2demo.generation import encode_prompts, stop_token_ids
from t2demo.models import LoadedModel
from t2demo.serving import Scheduler
from t2demo.svf import SVF


class Adapter:
    """A loaded model with its SVF engine, task experts and optional classification expert."""

    def __init__(self, lm: LoadedModel, experts: Sequence[Expert], cls_expert: Expert | None = None,
                 svf: SVF | None = None, alpha_bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        labels = [e.label for e in experts]
        if len(set(labels)) != len(labels):
            raise PipelineError(f"expert labels must be distinct, got {labels}")
        self.lm = lm
        self.svf = svf or SVF(lm.model)
        self.experts = list(experts)
        self.labels = labels
        self.cls_expert = cls_expert
        self.alpha_bounds = alpha_bounds
        self.instruction_cache = InstructionCache()  # the first pass's fixed opening, read once
        # the second pass, batched across requests; a row stops where generation.generate stops
        self.scheduler = Scheduler(self.svf, lm.tokenizer, stop_token_ids(lm))

    @property
    def model(self):
        return self.lm.model

    @property
    def vision(self) -> bool:
        return self.lm.vision

    def z_from_alpha(self, alpha) -> dict[str, Tensor] | None:
        """z' = svf.mix(experts, α), α of shape (K,) or (K, L); None (the base weights) when every α is 0."""
        alpha = torch.as_tensor(alpha, dtype=torch.float32)
        if not self.experts or not bool(alpha.any()):
            return None
        return self.svf.mix([e.z for e in self.experts], alpha)

    def mixture(self, alpha) -> Expert:
        """The experts mixed with α, as an expert file's contents (what few-shot answers with)."""
        return mixture_expert(self.svf, self.experts, alpha)

    def fit(self, examples, task, **cem_kwargs) -> cem.CEMResult:
        """CEM over α on the few-shot examples (see cem.fit_alpha for the options)."""
        return cem.fit_alpha(self, examples, task, **cem_kwargs)

    # --- the two passes --------------------------------------------------------------------

    def first_pass(self, prompt: str, image=None, strategy: str = "prompt", mode: str = "hard",
                   alpha=None, mixture: Expert | None = None) -> tuple[Dispatch, Mapping[str, Tensor] | None]:
        """The Dispatch of a strategy (adapt.registry, by name or title) and the z' it implies."""
        return get_strategy(strategy).first_pass(self, Request(prompt, image, mode, alpha, mixture))

    def encode(self, prompt: str, image=None, history: Sequence[tuple[str, str]] = (),
               max_new_tokens: int = 256) -> dict:
        """Model inputs for one turn after `history`, refused (PipelineError) if the model cannot take
        them: an image on a text model, or more tokens than the context window."""
        check_image(self.lm, image)
        enc = encode_prompts(self.lm, [prompt], [image] if image is not None else None, history)
        check_fits(self.model, enc["input_ids"].shape[1] + max_new_tokens,
                   f"the conversation plus max_new_tokens={max_new_tokens}")
        return enc

    def answer(self, prompt: str, image=None, strategy: str = "prompt", mode: str = "hard", alpha=None,
               max_new_tokens: int = 256, history: Sequence[tuple[str, str]] = (),
               mixture: Expert | None = None) -> tuple[Dispatch, Iterator[str]]:
        """Run the first pass now (on this message alone); return it with the second pass's text, which
        continues the conversation `history` of (user, assistant) turns, as a lazy stream (greedy,
        so the joined stream equals generation.generate with the same weights). The scheduler takes
        svf's lock in its own thread: do not read the stream while holding that lock (svf.adapted)."""
        enc = self.encode(prompt, image, history, max_new_tokens)
        d, z = self.first_pass(prompt, image, strategy, mode, alpha, mixture)
        return d, self.stream(enc, z, max_new_tokens)

    def stream(self, enc: dict, z: Mapping[str, Tensor] | None, max_new_tokens: int) -> Iterator[str]:
        """Greedy generation from encoded inputs with weights z' (None: base), as a stream of text:
        one row of a batch of the scheduler (see serving)."""
        return self.scheduler.stream(enc, z, max_new_tokens)

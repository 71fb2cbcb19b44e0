"""The two passes of Transformer² behind one call, for a text model or a LLaVA-Next model.

    adapter = Adapter(model, tok_or_proc, experts=[math, code, reasoning], cls_expert=cls)
    first, stream = adapter.answer("What is 3 + 4?", strategy="prompt")
    print(first.category, first.alpha)        # the first pass, already done
    print("".join(stream))                    # the second pass, streamed as it is generated

The second pass runs in a worker thread that holds the SVF lock from composing z' until generation
ends and then restores the base weights; the caller only reads a queue of text. So a consumer that
reads from several threads (as web frameworks do) is fine, and one that stops reading early does
not keep the lock: closing the stream stops generation at the next token.

Prompts longer than the context window are refused with a PipelineError, never truncated: cutting
the start of a prompt changes the question silently, and for the first pass it would cut the
classification instruction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from t2demo import cem
from t2demo.dispatch import STRATEGIES, Dispatch, InstructionCache, PipelineError, check_fits, check_image, dispatch
from t2demo.experts import Expert, load_expert, mixture_expert, save_expert
from t2demo.generation import encode_prompts, is_processor, tokenizer_of
from t2demo.svf import SVF


class _Stop(StoppingCriteria):
    """Ends generation when the reader closes the stream."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class Adapter:
    """A model with its SVF engine, experts, optional classification expert and fitted mixtures."""

    def __init__(self, model, tok_or_proc, experts: Sequence[Expert], cls_expert: Expert | None = None,
                 svf: SVF | None = None, alpha_bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        labels = [e.label for e in experts]
        if len(set(labels)) != len(labels):
            raise PipelineError(f"expert labels must be distinct, got {labels}")
        self.model, self.tok_or_proc = model, tok_or_proc
        self.svf = svf or SVF(model)
        self.experts = list(experts)
        self.labels = labels
        self.cls_expert = cls_expert
        self.alpha_bounds = alpha_bounds
        self.mixtures: dict[str, Expert] = {}  # task name -> z' fitted by few-shot CEM
        self.instruction_cache = InstructionCache()  # the first pass's fixed opening, read once

    @property
    def vision(self) -> bool:
        return is_processor(self.tok_or_proc)

    def z_for(self, d: Dispatch) -> dict[str, Tensor] | None:
        """z' for a first-pass result (None: the base weights)."""
        return self.z_from_alpha(d.alpha)

    def z_from_alpha(self, alpha) -> dict[str, Tensor] | None:
        """z' = svf.mix(experts, α), α of shape (K,) or (K, L); None (the base weights) when every α is 0."""
        alpha = torch.as_tensor(alpha, dtype=torch.float32)
        if not self.experts or not bool(alpha.any()):
            return None
        return self.svf.mix([e.z for e in self.experts], alpha)

    # --- few-shot --------------------------------------------------------------------------

    def fit(self, task_name: str, examples, task, **cem_kwargs) -> cem.CEMResult:
        """CEM over α on the examples (see cem.fit_alpha for the options); the result becomes the
        mixture used by strategy="fewshot" for task_name, unless the search was cancelled."""
        result = cem.fit_alpha(self.svf, self.model, self.tok_or_proc, self.experts, examples, task, **cem_kwargs)
        if not result.cancelled:
            self.mixtures[task_name] = mixture_expert(self.svf, self.experts, result.alpha)
        return result

    def save_mixture(self, task_name: str, path: str | Path) -> None:
        save_expert(self._mixture(task_name), path)

    def load_mixture(self, task_name: str, path: str | Path) -> Expert:
        """A mixture file saved earlier (experts.mixture_expert) as the task's few-shot weights."""
        self.mixtures[task_name] = load_expert(path, self.svf)
        return self.mixtures[task_name]

    def _mixture(self, task_name: str | None) -> Expert:
        if task_name not in self.mixtures:
            raise PipelineError(f"no few-shot mixture for task {task_name!r}; fit one first "
                                f"(fitted: {sorted(self.mixtures) or 'none'})")
        return self.mixtures[task_name]

    # --- the two passes --------------------------------------------------------------------

    def first_pass(self, prompt: str, image=None, strategy: str = "prompt", mode: str = "hard",
                   alpha=None, task: str | None = None,
                   mixture: Expert | None = None) -> tuple[Dispatch, dict[str, Tensor] | None]:
        """The Dispatch and the z' it implies. strategy="fewshot" uses `mixture` if given (a caller's
        own, e.g. one app session's), else the mixture fitted for `task`."""
        if strategy == "fewshot":
            start = time.perf_counter()
            mixture = mixture or self._mixture(task)
            d = Dispatch({}, task or mixture.label, mixture.notes.get("alpha", []), time.perf_counter() - start,
                         strategy, mixture.notes.get("experts", []))
            return d, mixture.z
        if strategy not in STRATEGIES:
            raise PipelineError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
        cls_z = self.cls_expert.z if self.cls_expert is not None else None
        d = dispatch(self.model, self.tok_or_proc, prompt, self.labels, strategy=strategy, mode=mode, image=image,
                     svf=self.svf, cls_z=cls_z, alpha=alpha, bounds=self.alpha_bounds, cache=self.instruction_cache)
        return d, self.z_for(d)

    def encode(self, prompt: str, image=None, history: Sequence[tuple[str, str]] = (),
               max_new_tokens: int = 256) -> dict:
        """Model inputs for one turn after `history`, refused (PipelineError) if the model cannot take
        them: an image on a text model, or more tokens than the context window."""
        check_image(self.tok_or_proc, image)
        enc = encode_prompts(self.tok_or_proc, [prompt], [image] if image is not None else None, history)
        check_fits(self.model, enc["input_ids"].shape[1] + max_new_tokens,
                   f"the conversation plus max_new_tokens={max_new_tokens}")
        return enc

    def answer(self, prompt: str, image=None, strategy: str = "prompt", mode: str = "hard", alpha=None,
               task: str | None = None, max_new_tokens: int = 256, history: Sequence[tuple[str, str]] = (),
               mixture: Expert | None = None) -> tuple[Dispatch, Iterator[str]]:
        """Run the first pass now (on this message alone); return it with the second pass's text, which
        continues the conversation `history` of (user, assistant) turns, as a lazy stream (greedy,
        so the joined stream equals generation.generate with the same weights). The stream takes
        svf's lock in its own thread: do not read it while holding that lock (svf.adapted)."""
        enc = self.encode(prompt, image, history, max_new_tokens)
        d, z = self.first_pass(prompt, image, strategy, mode, alpha, task, mixture)
        return d, self.stream(enc, z, max_new_tokens)

    def stream(self, enc: dict, z: Mapping[str, Tensor] | None, max_new_tokens: int) -> Iterator[str]:
        """Greedy generation from encoded inputs with weights z' (None: base), as a stream of text."""
        tokenizer = tokenizer_of(self.tok_or_proc)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop, failure = threading.Event(), []

        def work() -> None:
            try:
                with self.svf.adapted(z) as model:  # the lock is held until generation ends
                    model.generate(**{k: v.to(model.device) for k, v in enc.items()}, max_new_tokens=max_new_tokens,
                                   do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                   eos_token_id=tokenizer.eos_token_id, streamer=streamer,
                                   stopping_criteria=StoppingCriteriaList([_Stop(stop)]))
            except BaseException as e:  # handed to the reader, who would otherwise wait forever
                failure.append(e)
                streamer.end()

        worker = threading.Thread(target=work, name="t2demo-second-pass", daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            stop.set()
            worker.join()
        if failure:
            raise failure[0]

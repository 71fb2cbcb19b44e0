"""Many requests, one batch: a scheduler that answers concurrent requests in one generate() call,
each row with its own z' (factored.generate_rows), streaming every row to its own reader.

Why: the compose path (`svf.adapted`) writes one W' into the model and holds the engine's lock for
a whole generation, so requests are answered one after the other and two sessions never share a
batch. Here a background thread gathers the requests that arrive within a short window
(`window_s`), left-pads their prompts into one batch and runs one greedy generate() in which row b
is adapted by its own z' (None: the base model; a chat turn's base answer is one more row). A
streamer receives the batch's (B,) new tokens at every step and hands each row's new text, a piece
per token (_Emitter), to its request's queue, so each request streams token by token, and a row
ends on its own (eos, its max_new_tokens, or its reader gone) without waiting for the batch.

    scheduler = Scheduler(adapter.svf, adapter.lm.tokenizer)
    for row, text in scheduler.submit(enc, [z_adapted, None], max_new_tokens=160):
        ...                                     # row 0: the adapted answer, row 1: the base answer

A batch takes the engine's lock (`svf.adapted(None)`), factorizes the model (module swaps, about
2 ms on the default model; keep_dense=True, so nothing is copied), generates, and puts the dense
modules back. Everything that composes weights (the first pass with the cls expert, CEM, reports,
export) keeps working unchanged and waits for the lock as it waited for a second pass before; one
lock holding now serves every request of the batch. A batch whose rows all share one z (a lone
request, base rows only) composes that z instead: dense products per token are cheaper than the
factored ones (r·(m + n) multiply-adds against m·n).

Policies, kept simple on purpose:
- A request that arrives while a batch runs waits for the next batch (no joining a running one).
- A request's rows always share a batch; a batch takes whole requests up to `max_rows` rows.
- A reader that goes away (closes its stream) stops its rows at the next step: a stopping
  criterion marks them finished, and they ride along as padding until the batch ends.
- Inputs that cannot be served (longer than the context window) are refused at submission, in the
  submitter's thread. If a batch fails before any row produced text, each of its requests is run
  again alone, so an error reaches only the request that caused it; later failures reach all.
- Sampling is per row (a request's temperature, 0 = greedy): a logits processor draws the row's
  token and leaves only it possible, so greedy rows of the same batch keep their tokens.
- Greedy decoding in a left-padded batch gives each row the tokens it gets alone, up to float
  rounding (the tests check it on float32 models); bfloat16 rounds the factored product and W'
  differently (factored.py), so there a batched answer can differ from the composed one.

Considered and not used:
- Gradio's batching (`batch=True, max_batch_size=`): it batches calls of one event function, not
  streaming generators, and a chat turn and the /chat API are different endpoints.
- transformers' continuous batching (`generate_batch`, `ContinuousBatchingManager`, in 5.23): it
  packs all sequences into one ragged row (input_ids of shape (1, tokens)) over a paged cache, so
  a z per batch row has no row to follow (it would need a per-token map by request id); it runs
  its own thread, which the ContextVar rows of factored.py do not reach; it switches the shared
  model's attention implementation; and its requests are token ids only, no images.
- vLLM's multi-LoRA batching: not installable here (`export-lora` writes the adapter it would load).
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from t2demo.adapt.dispatch import check_fits
from t2demo.factored import RowZ, factorized, generate_rows
from t2demo.svf import SVF

BATCHABLE = {"input_ids", "attention_mask", "pixel_values", "image_sizes"}
MAX_TEMPERATURE = 2.0


def batch_inputs(encs: Sequence[Mapping[str, Tensor]], pad_token_id: int) -> dict[str, Tensor]:
    """One left-padded batch from one-row model inputs. Images (LLaVA-Next) stay in row order:
    pixel_values are zero-padded to the batch's most patches, as its processor pads a batch (the
    model reads only each image's own patches, from image_sizes)."""
    width = max(e["input_ids"].shape[1] for e in encs)

    def left(t: Tensor, value: int) -> Tensor:
        return F.pad(t, (width - t.shape[1], 0), value=value)

    out = {"input_ids": torch.cat([left(e["input_ids"], pad_token_id) for e in encs]),
           "attention_mask": torch.cat([left(e.get("attention_mask", torch.ones_like(e["input_ids"])), 0)
                                        for e in encs])}
    pixels = [e["pixel_values"] for e in encs if "pixel_values" in e]
    if pixels:
        most = max(p.shape[1] for p in pixels)
        out["pixel_values"] = torch.cat([F.pad(p, (0, 0) * (p.ndim - 2) + (0, most - p.shape[1])) for p in pixels])
        out["image_sizes"] = torch.cat([e["image_sizes"] for e in encs if "pixel_values" in e])
    return out


@dataclass(eq=False)
class _Request:
    """One submission: its one-row inputs answered once per z, and the queue its reader drains."""

    enc: Mapping[str, Tensor]
    zs: list[RowZ]
    max_new_tokens: int
    min_new_tokens: int
    temperature: float = 0.0  # 0: greedy; above: sampled from softmax(logits / temperature)
    events: queue.Queue = field(default_factory=queue.Queue)  # (row, text), (row, None) = row ended, or an error
    gone: threading.Event = field(default_factory=threading.Event)
    started: bool = False  # some text was handed to the reader


class _Emitter:
    """One row's text, a piece per generated token (the viewer sees the answer grow token by token).

    Incremental detokenization as text-generation servers do it: each new token is decoded together
    with the few tokens before it (from `prefix`), and the piece is what that text adds to the same
    window without the new token, so a tokenizer that joins tokens differently at a word start
    (SentencePiece's leading space) still yields pieces that add up to the decoded answer. A token
    that ends inside a multi-byte character (byte-level BPE: it decodes to U+FFFD) waits for the
    next one; special tokens add nothing. `end` hands over whatever is left."""

    def __init__(self, tokenizer, emit) -> None:
        self.tokenizer, self.emit = tokenizer, emit
        self.tokens: list[int] = []
        self.prefix = self.read = 0  # tokens[prefix:read] were handed out already (the context window)

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _flush(self, final: bool) -> None:
        before = self._decode(self.tokens[self.prefix:self.read])
        text = self._decode(self.tokens[self.prefix:])
        if len(text) > len(before) and (final or not text.endswith("\ufffd")):
            self.emit(text[len(before):])
            self.prefix, self.read = self.read, len(self.tokens)

    def put(self, token: int) -> None:
        self.tokens.append(token)
        self._flush(final=False)

    def end(self) -> None:
        if self.read < len(self.tokens):
            self._flush(final=True)


class _Decoding(BaseStreamer):
    """The rows of a running batch. generate() puts each step's (B,) new tokens here; each goes to
    its row's text, and a row ends (its reader is told) on eos, at its own max_new_tokens, or when
    its reader is gone. Tokens of ended rows (generate pads them) are ignored."""

    def __init__(self, rows: list[tuple[_Request, int]], tokenizer, eos: list[int], prompt_len: int) -> None:
        self.rows, self.eos, self.prompt_len = rows, eos, prompt_len
        self.text = [_Emitter(tokenizer, functools.partial(self._emit, b)) for b in range(len(rows))]
        self.count = [0] * len(rows)
        self.ended = [False] * len(rows)

    def put(self, value: Tensor) -> None:
        if value.ndim > 1:  # the prompt, put once before the first step
            return
        for b, token in enumerate(value.tolist()):
            if self.ended[b]:
                continue
            request = self.rows[b][0]
            if request.gone.is_set() or token in self.eos:
                self._end(b)
                continue
            self.text[b].put(token)
            self.count[b] += 1
            if self.count[b] >= request.max_new_tokens:
                self._end(b)

    def end(self) -> None:
        for b, ended in enumerate(self.ended):
            if not ended:
                self._end(b)

    def _end(self, b: int) -> None:
        self.ended[b] = True
        self.text[b].end()
        request, row = self.rows[b]
        request.events.put((row, None))

    def _emit(self, b: int, text: str) -> None:
        request, row = self.rows[b]
        request.started = True
        request.events.put((row, text))


class _RowsDone(StoppingCriteria):
    """Per row: finished once ended, its reader gone, or its own max_new_tokens reached."""

    def __init__(self, decoding: _Decoding) -> None:
        self.decoding = decoding
        self.limits = torch.tensor([r.max_new_tokens for r, _ in decoding.rows])

    def __call__(self, input_ids: Tensor, scores, **kwargs) -> Tensor:
        made = input_ids.shape[1] - self.decoding.prompt_len
        stopped = torch.tensor([e or r.gone.is_set() for e, (r, _) in zip(self.decoding.ended, self.decoding.rows)])
        return (stopped | (self.limits <= made)).to(input_ids.device)


class _MinNewTokens(LogitsProcessor):
    """Per row: no eos before the row's own min_new_tokens (benchmarks fix the answer length)."""

    def __init__(self, decoding: _Decoding) -> None:
        self.decoding = decoding
        self.minimum = torch.tensor([r.min_new_tokens for r, _ in decoding.rows])
        self.eos = decoding.eos

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        early = (self.minimum > input_ids.shape[1] - self.decoding.prompt_len).to(scores.device)
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask[:, self.eos] = True
        return scores.masked_fill(mask & early[:, None], float("-inf"))


class _RowSampling(LogitsProcessor):
    """Per row: a row with a temperature above 0 samples its next token from softmax(scores / T) and
    leaves only that token possible, so greedy decoding picks it; greedy rows are untouched."""

    def __init__(self, decoding: _Decoding) -> None:
        self.temperature = torch.tensor([r.temperature for r, _ in decoding.rows], dtype=torch.float32)

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        hot = (self.temperature > 0).to(scores.device)
        t = self.temperature.to(scores.device)[hot, None]
        picked = torch.multinomial(torch.softmax(scores[hot].float() / t, dim=-1), 1)
        only = torch.full_like(scores[hot], float("-inf")).scatter_(1, picked, 0.0)
        out = scores.clone()
        out[hot] = only
        return out


class Scheduler:
    """Gathers requests into batches and serves each batch with one factored generate().

    eos_token_id: where a row ends (an id or a list; default: the tokenizer's eos); window_s: how
    long the first request of a batch waits for others; max_rows: rows per batch; idle_s: the
    background thread ends after this long without requests (and restarts on demand). `batches`
    records the rows of each batch run (the latest 1000), for tests and benchmarks."""

    def __init__(self, svf: SVF, tokenizer, eos_token_id: int | Sequence[int] | None = None, window_s: float = 0.02,
                 max_rows: int = 32, idle_s: float = 30.0) -> None:
        eos = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
        self.svf, self.tokenizer = svf, tokenizer
        self.eos = [eos] if isinstance(eos, int) else list(eos)
        self.window_s, self.max_rows, self.idle_s = window_s, max_rows, idle_s
        self.batches: deque[int] = deque(maxlen=1000)
        self._pending: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, enc: Mapping[str, Tensor], zs: Sequence[RowZ], max_new_tokens: int,
               min_new_tokens: int = 0, temperature: float = 0.0) -> Iterator[tuple[int, str]]:
        """Answer the one-row inputs `enc` once per z of `zs` (None: the base model), all rows in one
        batch, greedily (temperature 0) or sampled at `temperature`. Returns a lazy stream (queued at its first read) of (row, new text), row
        indexing zs; closing it drops the request. Refused now (PipelineError) if it cannot fit."""
        if enc["input_ids"].shape[0] != 1 or not set(enc) <= BATCHABLE:
            raise ValueError(f"submit takes one row of {sorted(BATCHABLE)}; got {sorted(enc)}")
        if not 1 <= len(zs) <= self.max_rows:
            raise ValueError(f"a request has 1 to {self.max_rows} rows, got {len(zs)}")
        check_fits(self.svf.model, enc["input_ids"].shape[1] + max_new_tokens,
                   f"the prompt plus max_new_tokens={max_new_tokens}")
        if not 0 <= temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be in [0, {MAX_TEMPERATURE}], got {temperature}")
        return self._read(_Request(enc, list(zs), max_new_tokens, min_new_tokens, float(temperature)))

    def stream(self, enc: Mapping[str, Tensor], z: RowZ, max_new_tokens: int, min_new_tokens: int = 0) -> Iterator[str]:
        """One row's text as a lazy stream (see submit)."""
        with closing(self.submit(enc, [z], max_new_tokens, min_new_tokens)) as rows:
            for _, text in rows:
                yield text

    def _read(self, request: _Request) -> Iterator[tuple[int, str]]:
        with self._cond:
            self._pending.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="t2demo-scheduler", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            ended = 0
            while ended < len(request.zs):
                item = request.events.get()
                if isinstance(item, BaseException):
                    raise item
                row, text = item
                if text is None:
                    ended += 1
                else:
                    yield row, text
        finally:
            request.gone.set()

    # --- the scheduler thread --------------------------------------------------------------

    def _loop(self) -> None:
        while (batch := self._gather()) is not None:
            if batch:
                self._serve(batch)

    def _gather(self) -> list[_Request] | None:
        """The next batch: whole requests, in arrival order, that came within the window of the
        first (None when idle for idle_s: the thread ends)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending, timeout=self.idle_s):
                self._thread = None
                return None
            deadline = time.monotonic() + self.window_s
            while sum(len(r.zs) for r in self._pending) < self.max_rows and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            batch, rows = [], 0
            while self._pending and rows + len(self._pending[0].zs) <= self.max_rows:
                rows += len(self._pending[0].zs)
                batch.append(self._pending.popleft())
        return [r for r in batch if not r.gone.is_set()]

    def _serve(self, batch: list[_Request]) -> None:
        try:
            self._run(batch)
        except Exception as e:  # noqa: BLE001 - handed to the readers; the scheduler keeps serving
            if len(batch) > 1 and not any(r.started for r in batch):
                for request in batch:
                    self._serve([request])
            else:
                for request in batch:
                    request.events.put(e)

    def _run(self, batch: list[_Request]) -> None:
        rows = [(r, i) for r in batch for i in range(len(r.zs))]
        zs = [r.zs[i] for r, i in rows]
        tokenizer = self.tokenizer
        enc = batch_inputs([r.enc for r, _ in rows], tokenizer.pad_token_id)
        decoding = _Decoding(rows, tokenizer, self.eos, enc["input_ids"].shape[1])
        processors = [_MinNewTokens(decoding)] if any(r.min_new_tokens for r in batch) else []
        processors += [_RowSampling(decoding)] if any(r.temperature > 0 for r in batch) else []
        kwargs = {"max_new_tokens": max(r.max_new_tokens for r in batch), "do_sample": False,
                  "pad_token_id": tokenizer.pad_token_id, "eos_token_id": self.eos, "streamer": decoding,
                  "stopping_criteria": StoppingCriteriaList([_RowsDone(decoding)]),
                  "logits_processor": LogitsProcessorList(processors)}
        self.batches.append(len(rows))
        with self.svf.adapted(None):  # the engine's lock for the batch: nobody composes meanwhile
            if all(z is zs[0] for z in zs):  # one z for every row: W' once, and dense products per token
                with self.svf.adapted(zs[0]) as model:
                    model.generate(**{k: v.to(model.device) for k, v in enc.items()}, **kwargs)
                return
            with factorized(self.svf) as handle:
                generate_rows(handle, enc, zs, **kwargs)

"""Train one expert: SVF z-vectors (or a LoRA baseline) with REINFORCE or next-token prediction.

`python -m t2demo train-expert --model default --task math --out experts/math.safetensors`

One loop for every combination (Transformer², section 3 and its ablations):
  objective  rl  : sample answers with the adapted model, reward +1 / -1 from the task's checker,
                   loss = -reward · log p(answer) (+ kl_coef · KL(adapted || base) per token);
                   with rollouts K > 1, K answers per prompt and the reward minus the mean of
                   the other K-1 (a leave-one-out baseline: no signal from prompts every answer
                   gets right or every answer gets wrong);
             ntp : mean next-token loss on the reference answers (Example.response);
  method     svf : train one z per singular value of the target matrices (the SVD comes from the
                   engine's cache; nothing else is trained);
             lora: train a PEFT LoRA adapter on the same matrices, data, objective and schedule.

Every `eval_every` steps: greedy validation accuracy; the best state is kept and written as the
expert; a checkpoint (`<out>.ckpt/state.safetensors`: parameters, Adam moments, best state, and
the run's progress as JSON metadata) is written atomically, and a rerun resumes from it. Each
step reseeds from (seed, step) and draws its batch from (seed, step), so a resumed run takes the
same steps an uninterrupted one would.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn
from tqdm import tqdm

from t2demo import tasks
from t2demo.evaluate import score_task, summarise, write_json_atomic
from t2demo.experts import Expert, expert_dir, save_expert
from t2demo.generation import encode_prompts, images_of, tokenizer_of
from t2demo.svf import SVF, save_file_atomic, select_targets, weight_fingerprint

CHECKPOINT_VERSION = "1"


@dataclass
class ExpertConfig:
    """Hyper-parameters of one run; the defaults suit the ~6M-parameter default models on a CPU.

    lr 2e-3 and grad_clip 1e-3 are the authors' released values. Adam divides by the running
    gradient scale, so a clip this small does not slow learning: it makes every batch count about
    the same (no single batch with a large gradient dominates) and step sizes stay ≈ lr per value.
    grad_clip <= 0 turns clipping off.
    """

    objective: str = "rl"  # rl | ntp
    method: str = "svf"  # svf | lora
    targets: str = "mlp"  # mlp | attn | all (SVF presets; LoRA adapts the same matrices)
    steps: int = 100
    batch_size: int = 16
    lr: float = 2e-3
    grad_clip: float = 1e-3
    kl_coef: float = 0.0  # the paper describes the penalty; its released coefficient is 0
    normalize_rewards: bool = False  # advantages = (r - mean) / std over the batch
    rollouts: int = 1  # answers sampled per prompt; > 1: each is scored against its group's others
    temperature: float = 1.0
    eval_every: int = 10
    val_n: int = 64
    eval_batch_size: int = 32
    train_n: int = 2048  # training examples drawn from the task's train split (the data budget)
    lora_rank: int = 4
    lora_alpha: float = 8.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in ("rl", "ntp") or self.method not in ("svf", "lora"):
            raise ValueError(f"objective must be rl or ntp and method svf or lora, "
                             f"got {self.objective!r}, {self.method!r}")
        if self.rollouts < 1:
            raise ValueError(f"rollouts must be at least 1, got {self.rollouts}")


class TrainingDiverged(RuntimeError):
    """A step produced a non-finite loss, gradient or parameter; nothing of it was saved."""


class CheckpointMismatch(ValueError):
    """`<out>.ckpt/` holds a checkpoint of a different run (task, objective, targets, base model...)."""


def parameter_counts(model: nn.Module, targets: str | Sequence[str] = "mlp", lora_rank: int = 4) -> dict[str, int]:
    """Trainable parameters of an SVF expert (Σ min(m, n)) and of a LoRA adapter ((m + n)·rank)
    on the same target matrices, computed from the shapes alone."""
    shapes = [model.get_parameter(n).shape for n in select_targets(model, targets)]
    return {"matrices": len(shapes), "svf": sum(min(m, n) for m, n in shapes),
            "lora": sum((m + n) * lora_rank for m, n in shapes)}


# ----------------------------------------------------------------------------- the two methods

class _TrainedParams:
    """State handling shared by both policies: `params` maps names to the trained tensors."""

    params: dict[str, nn.Parameter]

    def state(self) -> dict[str, Tensor]:
        return {n: p.detach().clone() for n, p in self.params.items()}

    @torch.no_grad()
    def load_state(self, state: dict[str, Tensor]) -> None:
        for n, p in self.params.items():
            p.copy_(state[n])


class SVFPolicy(_TrainedParams):
    """Trains z itself, one unconstrained value per singular value, initialised at exactly 1.

    Why not the authors' sigmoid(p)·max_mult: z = p starts bit-exactly at the base model (the
    engine treats z = 1 as "use the base weights"), W' is linear in the trained value, nothing
    saturates, and the expert file stores z as trained with no conversion. Adam's steps of ≈ lr
    per step keep z near 1 for the few hundred steps used, which is the job the squashing did.
    """

    def __init__(self, model: nn.Module, targets: str | Sequence[str]) -> None:
        self.svf = SVF(model, targets)
        self.model = model
        self.params = {n: nn.Parameter(torch.ones(r, device=model.get_parameter(n).device))
                       for n, r in self.svf.ranks.items()}
        self.fingerprint = self.svf.fingerprint

    def sampling(self):
        """Context for no-grad generation: the composed weights are written into the model."""
        return self.svf.adapted({n: p.detach() for n, p in self.params.items()})

    def training(self):
        """Context for the differentiable forward: W'(z) is composed inside it."""
        return self.svf.differentiable(self.params)

    def base(self):
        return nullcontext(self.model)  # outside the two contexts the model holds its base weights

    def save(self, state: dict[str, Tensor], out: Path, label: str, notes: dict) -> None:
        save_expert(Expert.from_svf(self.svf, state, label, notes), out)


def lora_card(label: str, notes: dict) -> str:
    """The model card of a LoRA baseline folder: what it is, how it was trained, how it validated."""
    val = (f"Best validation accuracy {notes['best_val_accuracy']:.1f} % at step {notes['best_step']} (the base "
           f"model: {notes['base_val_accuracy']:.1f} %; {notes['val_n']} validation examples).\n\n"
           if "best_val_accuracy" in notes else "")
    return (f"# LoRA baseline: {label}\n\n"
            f"The LoRA baseline beside t2demo's SVF expert for the {notes['task']} task (`python -m t2demo report "
            f"table1`), saved with PEFT's save_pretrained: rank {notes['lora_rank']}, alpha {notes['lora_alpha']} on "
            f"the `{notes['targets']}` matrices, objective `{notes['objective']}`, {notes.get('steps_done', 0)} steps of "
            f"batch {notes['batch_size']} at lr {notes['lr']}.\n\n{val}"
            f"Trained by:\n\n    {notes.get('command', 'train.train_expert (no command line)')}\n\n"
            "Load it with `peft.PeftModel.from_pretrained(base_model, this_folder)`; `t2demo_training.json` holds "
            "every setting.\n")


class LoRAPolicy(_TrainedParams):
    """A PEFT LoRA adapter on the SVF targets' matrices (B = 0 at start, so also exactly the base)."""

    def __init__(self, model: nn.Module, targets: str | Sequence[str], rank: int, alpha: float) -> None:
        from peft import LoraConfig, get_peft_model

        names = select_targets(model, targets)
        self.fingerprint = weight_fingerprint(model, names)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                            target_modules=[n.removesuffix(".weight") for n in names])
        self.model = get_peft_model(model, config)
        self.params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def sampling(self):
        return nullcontext(self.model)

    def training(self):
        return nullcontext(self.model)

    @contextmanager
    def base(self) -> Iterator[nn.Module]:
        with self.model.disable_adapter():  # yields None, hence the wrapper
            yield self.model

    def save(self, state: dict[str, Tensor], out: Path, label: str, notes: dict) -> None:
        """save_pretrained of `state` into a fresh folder that then replaces `out`."""
        current = self.state()
        self.load_state(state)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
            self.model.save_pretrained(tmp)
            write_json_atomic(tmp / "t2demo_training.json", {"label": label, "notes": notes})
            (tmp / "README.md").write_text(lora_card(label, notes))  # instead of PEFT's empty template
            old = out.with_name(f".{out.name}.old")
            if out.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            self.load_state(current)


# ----------------------------------------------------------------------------- batches and losses

@dataclass
class Rollout:
    """Prompts (left-padded) followed by answers (right-padded), ready for one forward pass."""

    input_ids: Tensor  # (B, P + A)
    attention_mask: Tensor  # (B, P + A)
    answer_mask: Tensor  # (B, A): answer tokens up to and including the first eos
    extra: dict  # pixel_values, image_sizes for a vision model
    texts: list[str]  # decoded answers

    @property
    def answer_ids(self) -> Tensor:
        return self.input_ids[:, -self.answer_mask.shape[1]:]


def _prompt_batch(model: nn.Module, tok_or_proc, examples: Sequence[tasks.Example]) -> dict:
    enc = encode_prompts(tok_or_proc, [ex.prompt for ex in examples], images_of(examples))
    return {k: v.to(model.device) for k, v in enc.items()}


def _rollout(enc: dict, answers: Tensor, eos_id: int, tokenizer) -> Rollout:
    """Join prompts and answer tokens; mask everything after each answer's first eos."""
    is_eos = answers == eos_id
    answer_mask = (is_eos.long().cumsum(1) - is_eos.long()) == 0
    texts = [tokenizer.decode(a[m], skip_special_tokens=True) for a, m in zip(answers, answer_mask)]
    extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    return Rollout(torch.cat([enc["input_ids"], answers], 1),
                   torch.cat([enc["attention_mask"], answer_mask.long()], 1), answer_mask, extra, texts)


@torch.no_grad()
def sample_rollout(model: nn.Module, tok_or_proc, examples: Sequence[tasks.Example],
                   max_new_tokens: int, temperature: float = 1.0) -> Rollout:
    """Sample one answer per example from the full distribution (no top-k, top-p 1)."""
    tokenizer = tokenizer_of(tok_or_proc)
    enc = _prompt_batch(model, tok_or_proc, examples)
    out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                         max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return _rollout(enc, out[:, enc["input_ids"].shape[1]:], tokenizer.eos_token_id, tokenizer)


def reference_rollout(model: nn.Module, tok_or_proc, examples: Sequence[tasks.Example]) -> Rollout:
    """The reference responses (+ eos) after the same prompts generation sees, for ntp."""
    tokenizer = tokenizer_of(tok_or_proc)
    enc = _prompt_batch(model, tok_or_proc, examples)
    ids = [tokenizer(ex.response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for ex in examples]
    width = max(map(len, ids))
    answers = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    for row, seq in enumerate(ids):
        answers[row, :len(seq)] = torch.tensor(seq)
    return _rollout(enc, answers.to(model.device), tokenizer.eos_token_id, tokenizer)


def answer_logprobs(model: nn.Module, rollout: Rollout) -> Tensor:
    """log-softmax over the vocabulary at each answer position, (B, A, V), float32.

    Position ids are counted from the first real token, as generate() counts them, so the
    scored distribution is the sampled one.
    """
    mask = rollout.attention_mask
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    width = rollout.answer_mask.shape[1]
    logits = model(input_ids=rollout.input_ids, attention_mask=mask, position_ids=positions,
                   logits_to_keep=width + 1, **rollout.extra).logits[:, :-1]
    return logits.float().log_softmax(-1)


def answer_token_logp(logp: Tensor, rollout: Rollout) -> Tensor:
    """log p of each answer token actually in the rollout, (B, A)."""
    return logp.gather(-1, rollout.answer_ids[..., None]).squeeze(-1)


def rl_loss(logp: Tensor, rollout: Rollout, advantages: Tensor, base_logp: Tensor | None = None,
            kl_coef: float = 0.0) -> tuple[Tensor, float]:
    """REINFORCE: -mean(advantage · Σ log p(answer token)), plus kl_coef · the mean per-token
    KL(adapted || base) on the sampled answers. Returns (loss, mean KL)."""
    mask = rollout.answer_mask.float()
    token_logp = answer_token_logp(logp, rollout)
    loss = -(advantages.to(logp.device) * (token_logp * mask).sum(1)).mean()
    if base_logp is None:
        return loss, 0.0
    kl_token = (logp.exp() * (logp - base_logp)).sum(-1)
    kl = ((kl_token * mask).sum(1) / mask.sum(1).clamp_min(1)).mean()
    return loss + kl_coef * kl, kl.item()


def ntp_loss(logp: Tensor, rollout: Rollout) -> Tensor:
    """Mean next-token negative log-likelihood over the reference answers' tokens."""
    mask = rollout.answer_mask.float()
    return -(answer_token_logp(logp, rollout) * mask).sum() / mask.sum()


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """The training examples of one step: consecutive slices of a per-epoch shuffle of range(n)."""
    orders: dict[int, list[int]] = {}  # a step spans at most two epochs: shuffle each once
    out = []
    for i in range(step * batch_size, (step + 1) * batch_size):
        epoch, k = divmod(i, n)
        if epoch not in orders:
            orders[epoch] = list(range(n))
            random.Random(f"{seed}|epoch|{epoch}").shuffle(orders[epoch])
        out.append(orders[epoch][k])
    return out


# ----------------------------------------------------------------------------- checkpoints

def checkpoint_path(out: str | Path) -> Path:
    return Path(f"{out}.ckpt") / "state.safetensors"


def save_checkpoint(path: Path, policy, opt: torch.optim.Optimizer, best: dict[str, Tensor],
                    identity: dict, progress: dict) -> None:
    """Parameters, Adam moments and the best state in one safetensors file, written atomically."""
    tensors = {f"param/{n}": t for n, t in policy.state().items()}
    tensors |= {f"best/{n}": t for n, t in best.items()}
    for i, state in opt.state_dict()["state"].items():
        tensors |= {f"adam/{i}/{k}": torch.as_tensor(v) for k, v in state.items()}
    meta = {"format_version": CHECKPOINT_VERSION, "identity": json.dumps(identity, sort_keys=True),
            "progress": json.dumps(progress)}
    save_file_atomic(tensors, path, meta)


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict, dict]:
    """(tensors, identity, progress) of a checkpoint file."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("format_version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: not a t2demo training checkpoint (version {meta.get('format_version')!r})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, json.loads(meta["identity"]), json.loads(meta["progress"])


def _restore(tensors: dict[str, Tensor], policy, opt: torch.optim.Optimizer) -> dict[str, Tensor]:
    """Load parameters and Adam state into policy and opt; return the best state."""
    def part(prefix: str) -> dict[str, Tensor]:
        return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}

    device = next(iter(policy.params.values())).device
    policy.load_state({k: v.to(device) for k, v in part("param/").items()})
    adam: dict[int, dict] = {}
    for key, value in part("adam/").items():
        i, name = key.split("/")
        adam.setdefault(int(i), {})[name] = value if name == "step" else value.to(device)
    opt.load_state_dict({"state": adam, "param_groups": opt.state_dict()["param_groups"]})
    return {k: v.to(device) for k, v in part("best/").items()}


# ----------------------------------------------------------------------------- the loop

def validate(policy, tok_or_proc, task: tasks.Task, examples: list[tasks.Example], batch_size: int) -> float:
    """Greedy accuracy (percent) of the adapted model."""
    with policy.sampling() as model:
        return summarise(score_task(model, tok_or_proc, task, examples, batch_size, progress=False))["accuracy"]


def reward_advantages(rewards: Tensor, rollouts: int = 1, normalize: bool = False) -> Tensor:
    """REINFORCE's weights: the rewards; with `rollouts` consecutive answers per prompt, each
    reward minus the mean of its group's others; normalised: minus the mean, over the std."""
    advantages = rewards
    if rollouts > 1:
        groups = rewards.view(-1, rollouts)
        advantages = (groups - (groups.sum(1, keepdim=True) - groups) / (rollouts - 1)).flatten()
    if normalize and len(rewards) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-6)
    return advantages


def step_loss(policy, tok_or_proc, task: tasks.Task, examples: list[tasks.Example],
              cfg: ExpertConfig) -> tuple[Tensor, dict]:
    """The loss of one batch under cfg.objective, and what to log about it."""
    if cfg.objective == "ntp":
        rollout = reference_rollout(policy.model, tok_or_proc, examples)
        with policy.training() as m:
            return ntp_loss(answer_logprobs(m, rollout), rollout), {}
    examples = [ex for ex in examples for _ in range(cfg.rollouts)]
    with policy.sampling() as m:
        rollout = sample_rollout(m, tok_or_proc, examples, task.max_new_tokens, cfg.temperature)
    rewards = torch.tensor([1.0 if ok else -1.0 for ok in task.check_many(examples, rollout.texts)])
    advantages = reward_advantages(rewards, cfg.rollouts, cfg.normalize_rewards)
    base_logp = None
    if cfg.kl_coef > 0:
        with torch.no_grad(), policy.base() as m:
            base_logp = answer_logprobs(m, rollout)
    with policy.training() as m:
        logp = answer_logprobs(m, rollout)
    loss, kl = rl_loss(logp, rollout, advantages, base_logp, cfg.kl_coef)
    return loss, {"reward": rewards.mean().item(), "kl": kl}


def _diverged(what: str, step: int, ckpt: Path, progress: dict) -> TrainingDiverged:
    return TrainingDiverged(
        f"step {step + 1}: {what} is not finite (NaN or inf); nothing of this step was saved. The last good "
        f"checkpoint ({ckpt}, step {progress['step']}) is kept: rerun with a lower --lr (or --grad-clip) to resume from it.")


def train_expert(model: nn.Module, tok_or_proc, task: tasks.Task, cfg: ExpertConfig, out: str | Path, *,
                 command: str | None = None, fresh: bool = False, progress_bar: bool = True) -> dict:
    """Train, resuming from `<out>.ckpt/` when it holds a checkpoint of the same run.

    Writes the best state so far to `out` (an expert file for svf, a save_pretrained folder for
    lora) whenever validation improves, and once more at the end. Returns a summary: counts,
    best validation accuracy and step, and this call's per-step log.
    """
    out = Path(out)
    ckpt = checkpoint_path(out)
    model.eval()
    model.requires_grad_(False)
    counts = parameter_counts(model, cfg.targets, cfg.lora_rank)
    policy = SVFPolicy(model, cfg.targets) if cfg.method == "svf" else LoRAPolicy(model, cfg.targets, cfg.lora_rank, cfg.lora_alpha)
    params = list(policy.params.values())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    identity = {"task": task.name, "objective": cfg.objective, "method": cfg.method, "targets": cfg.targets,
                "lora_rank": cfg.lora_rank if cfg.method == "lora" else None, "seed": cfg.seed,
                "train_n": cfg.train_n, "batch_size": cfg.batch_size, "base_fingerprint": policy.fingerprint}
    if cfg.rollouts != 1:  # absent at 1, so checkpoints written before the option existed still resume
        identity["rollouts"] = cfg.rollouts
    if progress_bar:
        print(f"trainable parameters: {counts['svf'] if cfg.method == 'svf' else sum(p.numel() for p in params):,} "
              f"({cfg.method}, {counts['matrices']} matrices; svf would train {counts['svf']:,}, "
              f"lora rank {cfg.lora_rank} {counts['lora']:,})", file=sys.stderr)

    train = task.examples("train", cfg.train_n, cfg.seed)
    val = task.examples("validation", cfg.val_n, cfg.seed)
    notes_base = {"task": task.name, **asdict(cfg), "command": command or shlex.join(sys.argv)}

    def notes(p: dict) -> dict:
        return notes_base | {"steps_done": p["step"], "best_step": p["best_step"],
                             "best_val_accuracy": p["best_val_accuracy"], "base_val_accuracy": p["evals"][0]["val_accuracy"]}

    if fresh:
        shutil.rmtree(ckpt.parent, ignore_errors=True)
    if ckpt.exists():
        tensors, saved_identity, progress = load_checkpoint(ckpt)
        if saved_identity != identity:
            diff = {k: (saved_identity.get(k), v) for k, v in identity.items() if saved_identity.get(k) != v}
            raise CheckpointMismatch(f"{ckpt} is a checkpoint of another run (saved vs now: {diff}); "
                                     "pass --fresh to start over or choose another --out")
        best = _restore(tensors, policy, opt)
    else:
        accuracy = validate(policy, tok_or_proc, task, val, cfg.eval_batch_size)
        best = policy.state()
        progress = {"step": 0, "best_step": 0, "best_val_accuracy": accuracy, "evals": [{"step": 0, "val_accuracy": accuracy}]}
        save_checkpoint(ckpt, policy, opt, best, identity, progress)
        policy.save(best, out, task.name, notes(progress))

    log = []
    bar = tqdm(range(progress["step"], cfg.steps), initial=progress["step"], total=cfg.steps,
               desc=f"{task.name} {cfg.method} {cfg.objective}", disable=not progress_bar)
    for step in bar:
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        examples = [train[i] for i in batch_indices(step, cfg.batch_size, len(train), cfg.seed)]
        loss, stats = step_loss(policy, tok_or_proc, task, examples, cfg)
        if not torch.isfinite(loss):
            raise _diverged("the loss", step, ckpt, progress)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        if not torch.isfinite(grad_norm):
            raise _diverged("the gradient", step, ckpt, progress)
        opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise _diverged("a trained parameter", step, ckpt, progress)
        log.append({"step": step + 1, "loss": loss.item(), "grad_norm": grad_norm.item()} | stats)

        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            accuracy = validate(policy, tok_or_proc, task, val, cfg.eval_batch_size)
            progress["evals"].append({"step": done, "val_accuracy": accuracy})
            progress["step"] = done
            if accuracy >= progress["best_val_accuracy"]:  # ties: the later, more trained state
                best = policy.state()
                progress |= {"best_step": done, "best_val_accuracy": accuracy}
                policy.save(best, out, task.name, notes(progress))
            save_checkpoint(ckpt, policy, opt, best, identity, progress)
        shown = {"reward": f"{stats['reward']:+.2f}"} if "reward" in stats else {"loss": f"{loss.item():.3f}"}
        bar.set_postfix(shown | {"val": f"{progress['evals'][-1]['val_accuracy']:.1f}%"})

    policy.save(best, out, task.name, notes(progress))
    return {"out": str(out), "checkpoint": str(ckpt), "parameters": counts,
            "trainable": sum(p.numel() for p in params), "steps": progress["step"],
            "best_step": progress["best_step"], "best_val_accuracy": progress["best_val_accuracy"],
            "evals": progress["evals"], "log": log}


# The objective each shipped expert was trained with (experts/README.md): ntp, except the cls expert.
SHIPPED_OBJECTIVE = {"cls": "rl"}


def default_out(folder: Path, task_name: str, cfg: ExpertConfig) -> Path:
    """Where `report` looks for this run: <task>[-<objective>][-<targets>] in the model's expert
    folder, each suffix only where the run differs from the shipped expert (math-rl, math-attn),
    as .safetensors (SVF) or a -lora folder (LoRA)."""
    parts = [task_name]
    if cfg.objective != SHIPPED_OBJECTIVE.get(task_name, "ntp"):
        parts.append(cfg.objective)
    if cfg.targets != "mlp":
        parts.append(cfg.targets)
    name = "-".join(parts)
    return folder / (f"{name}.safetensors" if cfg.method == "svf" else f"{name}-lora")


def main(args) -> dict:
    """The `train-expert` command: load the model the task needs, train, print a summary."""
    from t2demo import models

    task = tasks.resolve_task(args.task)
    vision = getattr(task, "category", None) == "vqa"
    load = models.load_vision_model if vision else models.load_text_model
    try:
        cfg = ExpertConfig(**{k: getattr(args, k) for k in ExpertConfig.__dataclass_fields__})
    except ValueError as e:
        raise SystemExit(f"train-expert: {e}") from e
    model, tok_or_proc = load(args.model, args.device, args.dtype)
    out = args.out or default_out(expert_dir(models.resolve_model(args.model, vision)), task.name, cfg)
    command = "python -m t2demo " + shlex.join(sys.argv[1:])
    try:
        summary = train_expert(model, tok_or_proc, task, cfg, out, command=command, fresh=args.fresh)
    except (TrainingDiverged, CheckpointMismatch) as e:
        raise SystemExit(f"train-expert: {e}") from e
    print(json.dumps({k: v for k, v in summary.items() if k != "log"}, indent=2))
    return summary

"""Train one expert: SVF z-vectors (or a LoRA baseline) with REINFORCE or next-token prediction.

`python -m t2demo train-expert --model default --task math --out experts/math.safetensors`

One loop for every combination (Transformer², section 3 and its ablations):
  objective  rl  : sample answers with the adapted model, reward +1 / -1 from the task's checker,
                   loss = -advantage · log p(answer) + kl_coef · KL(adapted || base) of the answer
                   (summed over its tokens, the mode-decision token excluded: tasks/modes.py);
                   K = rollouts answers per prompt, each advantage its reward minus the mean of
                   the other K-1 (a leave-one-out baseline: no signal from prompts every answer
                   gets right or every answer gets wrong), divided by the group's std;
                   once most samples take the task's reliable mode, the lr is annealed;
                   after each step the change decays toward the base model (`decay`);
                   optionally, at the end the change is shrunk to the smallest size that keeps
                   the best validation accuracy (`shrink`, svf);
             ntp : mean next-token loss on the reference answers (Example.response);
  method     svf : train one z per singular value of the target matrices (the SVD comes from the
                   engine's cache; nothing else is trained);
             lora: train a PEFT LoRA adapter on the same matrices, data, objective and schedule.

Every `eval_every` steps: greedy validation accuracy; the best state is kept and written as the
expert; a checkpoint (`<out>.ckpt/state.safetensors`: parameters, Adam moments, best state, and
the run's progress as JSON metadata) is written atomically, and a rerun resumes from it. Each
step reseeds from (seed, step) and draws its batch from (seed, step), so a resumed run takes the
same steps an uninterrupted one would.

Data-parallel on several GPUs (or CPU processes): `accelerate launch [--num_processes N] -m t2demo
train-expert ...`. `run` reads the processes accelerate started (Processes.from_environment: accelerate's
PartialState, which sets up torch.distributed; one process, the default, imports nothing of it): each
process loads the model on its own device, takes its share of every step's prompts (the same global
batch, `batch_size` prompts, split round-robin; each prompt's rollouts stay together) and of the
validation examples, and the z gradients are summed across processes (torch.distributed all-reduce),
each process's loss weighted by its share of the examples (rl) or answer tokens (ntp), so the step is
that of the whole batch on one process. Every process then holds the same z; only the main process
writes the expert and the checkpoint (atomically, as with one). Differences from one process: each
process samples with its own seed (a run is reproducible for the same number of processes, which the
checkpoint records); with rollouts 1 and normalize_rewards, the batch's reward std is each process's.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn
from tqdm import tqdm

from t2demo import tasks
from t2demo.atomic import atomic_folder, save_safetensors_atomic, write_json_atomic, write_text_atomic
from t2demo.evaluate import score_task
from t2demo.experts import LORA_NOTES, Expert, expert_dir, load_expert, lora_notes, save_expert
from t2demo.models import LoadedModel
from t2demo.rollouts import Rollout, answer_logprobs, answer_token_logp, reference_rollout, sample_rollout
from t2demo.svf import SVF, select_targets, weight_fingerprint
from t2demo.tasks.modes import in_reliable_mode

CHECKPOINT_VERSION = "1"


@dataclass
class ExpertConfig:
    """Hyper-parameters of one run; the defaults are the recipe that flips the default world's answer
    mode (pilots/latent-modes: 6 of 6 seeds): 4 prompts × 16 samples, group-normalised leave-one-out
    advantages, KL 0.1 to the base except on the decision token, the lr × 0.3 once the sampled
    reliable-mode share (EMA 0.9) passes 0.45, 200 steps. Adam at lr 2e-2 with epsilon 1e-2, without
    clipping, and z pulled back toward 1 by lr × 1.0 of its distance after each step keep the expert
    small: the values the reward barely touches stay near 1 (pilots/expert-decay). The authors' released values are
    lr 2e-3 with grad_clip 1e-3, no KL, no decay and Adam's epsilon 1e-8; grad_clip <= 0 turns clipping off.
    """

    objective: str = field(default="rl", metadata={"help": "rl: REINFORCE; ntp: next-token prediction on the references",
                                                   "choices": ("rl", "ntp")})
    method: str = field(default="svf", metadata={"help": "svf: z-vectors; lora: a LoRA baseline on the same matrices",
                                                 "choices": ("svf", "lora")})
    targets: str = field(default="mlp", metadata={"help": "which matrices are adapted", "choices": ("mlp", "attn", "all")})
    steps: int = field(default=200, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=4, metadata={"help": "prompts per step"})
    lr: float = field(default=2e-2, metadata={"help": "Adam learning rate"})
    grad_clip: float = field(default=0.0, metadata={"help": "gradient-norm clip (<= 0: off)"})
    kl_coef: float = field(default=0.1, metadata={"help": "penalty on each answer's KL to the base model, summed over "
                                                          "its tokens but the mode decision (rl)"})
    normalize_rewards: bool = field(default=True, metadata={"help": "divide the advantages by their group's std "
                                                                   "(one prompt's answers; the batch's if rollouts is 1)"})
    rollouts: int = field(default=16, metadata={"help": "answers sampled per prompt, each scored against the mean "
                                                        "of the others (rl)"})
    anneal_at: float = field(default=0.45, metadata={"help": "multiply the lr by anneal_lr once the EMA of the "
                                                             "sampled reliable-mode share passes this (rl; 0: never)"})
    anneal_lr: float = field(default=0.3, metadata={"help": "the lr factor of that anneal"})
    decay: float = field(default=1.0, metadata={"help": "after each step, pull the change toward the base model by "
                                                        "lr * decay of it: z -= lr*decay*(z - 1) (svf), LoRA's B "
                                                        "likewise toward 0 (0: off)"})
    adam_eps: float = field(default=1e-2, metadata={"help": "Adam's epsilon: a value whose gradients stay well below "
                                                            "it moves less than lr a step, so a larger one leaves the "
                                                            "values the reward barely touches near their start"})
    shrink: bool = field(default=False, metadata={"help": "at the end, apply the best state's change z - 1 at "
                                                          "0.9, 0.8, ... of its size and keep the smallest size "
                                                          "whose validation accuracy, and that of every larger "
                                                          "one, stays at the best's (svf; off by default: the "
                                                          "kept expert sits at the edge of its flip)"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (rl)"})
    eval_every: int = field(default=25, metadata={"help": "steps between validations and checkpoints"})
    val_n: int = field(default=64, metadata={"help": "validation examples"})
    eval_batch_size: int = field(default=32, metadata={"help": "batch size of validation"})
    train_n: int = field(default=2048, metadata={"help": "training examples drawn from the train split (the data budget)"})
    lora_rank: int = field(default=4, metadata={"help": "LoRA rank (method lora)"})
    lora_alpha: float = field(default=8.0, metadata={"help": "LoRA alpha (method lora)"})
    seed: int = field(default=0, metadata={"help": "seed of the batches and the sampling"})

    def __post_init__(self) -> None:
        if self.objective not in ("rl", "ntp") or self.method not in ("svf", "lora"):
            raise ValueError(f"objective must be rl or ntp and method svf or lora, "
                             f"got {self.objective!r}, {self.method!r}")
        if self.rollouts < 1:
            raise ValueError(f"rollouts must be at least 1, got {self.rollouts}")
        if self.decay < 0:
            raise ValueError(f"decay must be at least 0, got {self.decay}")
        if self.adam_eps <= 0:
            raise ValueError(f"adam_eps must be above 0, got {self.adam_eps}")


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


# ----------------------------------------------------------------------------- processes

@dataclass
class Processes:
    """The processes one run spans: just this one (the default), or those `accelerate launch` (or torchrun)
    started, joined in torch.distributed. Every method is a no-op, or the identity, for one process."""

    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # where the reduced tensors live (the backend's device)

    @classmethod
    def from_environment(cls) -> Processes:
        """The launcher's processes (WORLD_SIZE > 1: `accelerate launch`, or torchrun): accelerate's
        PartialState joins the process group (nccl on GPUs; gloo for CPU processes, i.e. without CUDA or
        with ACCELERATE_USE_CPU) and says each process's device; otherwise one process."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        from accelerate import PartialState

        cpu = os.environ.get("ACCELERATE_USE_CPU", "false").lower() == "true" or not torch.cuda.is_available()
        state = PartialState(cpu=cpu)
        if state.num_processes != int(os.environ["WORLD_SIZE"]):
            raise RuntimeError(f"accelerate sees {state.num_processes} processes where the launcher started "
                               f"{os.environ['WORLD_SIZE']}")
        device = torch.device("cpu") if state.device.type == "cpu" else state.device
        return cls(state.process_index, state.num_processes, device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence) -> list:
        """This process's share: every world-th item from its rank (all of them for one process)."""
        return list(items[self.rank::self.world])

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def sum_gradients(self, params: Sequence[Tensor]) -> None:
        """Replace each parameter's gradient by its sum over the processes (one flat all-reduce)."""
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads]).to(self.device)
        torch.distributed.all_reduce(flat)
        for p, chunk in zip(params, flat.split([g.numel() for g in grads])):
            p.grad = chunk.view_as(p).to(p.device)

    def check_same(self, state: dict[str, Tensor]) -> None:
        """Raise if the processes hold different values (the all-reduced steps keep them bit-identical)."""
        if self.world == 1:
            return
        sums = torch.stack([t.detach().double().sum() for t in state.values()]).to(self.device)
        low, high = sums.clone(), sums.clone()
        torch.distributed.all_reduce(low, torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(high, torch.distributed.ReduceOp.MAX)
        if not torch.equal(low, high):
            raise RuntimeError("the processes' trained parameters differ; the run is not data-parallel")

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Wait for every process, then leave the process group."""
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


ONE = Processes()


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

    @torch.no_grad()
    def decay(self, rate: float) -> None:
        """Pull every z toward 1 by `rate` of its distance. Adam moves every value by about lr per step,
        so without this the values no reward keeps pushing (most sit on small singular values, where
        they change little) drift as far as the ones that matter; with it they return to the base and
        the expert keeps only the change the task needs (Table 1's shuffled control measures the rest)."""
        for p in self.params.values():
            p.sub_(rate * (p - 1))

    def save(self, state: dict[str, Tensor], out: Path, label: str, notes: dict) -> None:
        save_expert(Expert.from_svf(self.svf, state, label, notes), out)

    def scaled(self, state: dict[str, Tensor], scale: float) -> dict[str, Tensor]:
        """The state's change applied at `scale` of its size: z' = 1 + scale·(z − 1), the expert at α = scale."""
        return self.svf.mix([state], [scale])


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

    @torch.no_grad()
    def decay(self, rate: float) -> None:
        """Pull each B toward 0 (B = 0 is the base model; A is left as it is, random at start)."""
        for n, p in self.params.items():
            if "lora_B" in n:
                p.mul_(1 - rate)

    @contextmanager
    def base(self) -> Iterator[nn.Module]:
        with self.model.disable_adapter():  # yields None, hence the wrapper
            yield self.model

    def save(self, state: dict[str, Tensor], out: Path, label: str, notes: dict) -> None:
        """save_pretrained of `state` into a fresh folder that then replaces `out`."""
        current = self.state()
        self.load_state(state)
        try:
            with atomic_folder(out, replace=True) as tmp:
                self.model.save_pretrained(tmp)
                write_json_atomic(tmp / LORA_NOTES, {"label": label, "notes": notes})
                write_text_atomic(tmp / "README.md", lora_card(label, notes))  # instead of PEFT's empty template
        finally:
            self.load_state(current)


# ----------------------------------------------------------------------------- losses

def rl_loss(logp: Tensor, rollout: Rollout, advantages: Tensor, base_logp: Tensor | None = None,
            kl_coef: float = 0.0) -> tuple[Tensor, float]:
    """REINFORCE: -mean(advantage · Σ log p(answer token)), plus kl_coef · the answers' mean KL(adapted ||
    base), each summed over its tokens (a sequence's KL) except the first: the mode decision is free to
    move, the rest stays close to the base. Returns (loss, mean KL)."""
    mask = rollout.answer_mask.float()
    token_logp = answer_token_logp(logp, rollout)
    loss = -(advantages.to(logp.device) * (token_logp * mask).sum(1)).mean()
    if base_logp is None:
        return loss, 0.0
    kl_token = (logp.exp() * (logp - base_logp)).sum(-1)
    kl = (kl_token * mask)[:, 1:].sum(1).mean()
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
    save_safetensors_atomic(tensors, path, meta)


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

def validate(policy, lm: LoadedModel, task: tasks.Task, examples: list[tasks.Example], batch_size: int,
             processes: Processes = ONE) -> float:
    """Greedy accuracy (percent) of the adapted model; across processes, each scores its share."""
    with policy.sampling() as model:
        scores = score_task(replace(lm, model=model), task, processes.shard(examples), batch_size, progress=False)
    total, n = processes.sum([float(sum(scores)), float(len(scores))])
    return round(100 * total / n, 2) if n else 0.0  # summarise's accuracy, over every process's share


SHRINK_SCALES = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def shrink(policy: SVFPolicy, lm: LoadedModel, task: tasks.Task, examples: list[tasks.Example],
           state: dict[str, Tensor], accuracy: float, batch_size: int,
           processes: Processes = ONE) -> tuple[dict[str, Tensor], dict]:
    """The smallest change that does the job: `state` at each of SHRINK_SCALES in turn, down to the
    first whose validation accuracy falls below `accuracy` (the best's); returns the state at the last
    scale kept, with that scale and what each tried scored (for the expert's notes). Why: training
    overshoots the mode flip (the default experts keep it at 0.3 to 0.9 of their size), and Table 1's
    shuffled control turns the surplus into damage; but the surplus is also the margin that carries the
    flip to other wordings, mixtures and a low-rank export (pilots/expert-decay, seventh round), so the
    shrink is an option. Leaves the policy holding `state`."""
    kept, kept_scale, tried = state, 1.0, []
    for scale in SHRINK_SCALES:
        candidate = policy.scaled(state, scale)
        policy.load_state(candidate)
        scored = validate(policy, lm, task, examples, batch_size, processes)
        tried.append({"scale": scale, "val_accuracy": scored})
        if scored < accuracy:
            break
        kept, kept_scale = candidate, scale
    policy.load_state(state)
    return kept, {"shrunk_to": kept_scale, "shrink_tried": tried}


def reward_advantages(rewards: Tensor, rollouts: int = 1, normalize: bool = False) -> Tensor:
    """REINFORCE's weights: the rewards; with `rollouts` consecutive answers per prompt, each
    reward minus the mean of its group's others, normalised: divided by the group's reward std (a
    prompt most answers get right weighs as much as a hard one). With one answer per prompt,
    normalised: minus the batch mean, over the batch std."""
    if rollouts > 1:
        groups = rewards.view(-1, rollouts)
        advantages = groups - (groups.sum(1, keepdim=True) - groups) / (rollouts - 1)
        if normalize:
            advantages = advantages / (groups.std(1, keepdim=True) + 1e-6)
        return advantages.flatten()
    if normalize and len(rewards) > 1:
        return (rewards - rewards.mean()) / (rewards.std() + 1e-6)
    return rewards


def step_loss(policy, lm: LoadedModel, task: tasks.Task, examples: list[tasks.Example],
              cfg: ExpertConfig) -> tuple[Tensor, dict]:
    """The loss of one batch under cfg.objective, and what to log about it."""
    loss, stats, _ = weighted_step_loss(policy, lm, task, examples, cfg)
    return loss, stats


def weighted_step_loss(policy, lm: LoadedModel, task: tasks.Task, examples: list[tasks.Example],
                       cfg: ExpertConfig) -> tuple[Tensor, dict, float]:
    """step_loss, and what it is a mean over (rl: the sampled answers; ntp: the answer tokens): the
    weight of this process's loss when several processes share a batch."""
    if cfg.objective == "ntp":
        rollout = reference_rollout(replace(lm, model=policy.model), examples)
        with policy.training() as m:
            return ntp_loss(answer_logprobs(m, rollout), rollout), {}, float(rollout.answer_mask.sum())
    examples = [ex for ex in examples for _ in range(cfg.rollouts)]
    with policy.sampling() as m:
        rollout = sample_rollout(replace(lm, model=m), examples, task.max_new_tokens, cfg.temperature)
    # +1 right, -1 wrong; a fractional score (VQA soft accuracy, in [0, 1]) maps linearly in between
    rewards = torch.tensor([2.0 * float(score) - 1.0 for score in task.check_many(examples, rollout.texts)])
    advantages = reward_advantages(rewards, cfg.rollouts, cfg.normalize_rewards)
    base_logp = None
    if cfg.kl_coef > 0:
        with torch.no_grad(), policy.base() as m:
            base_logp = answer_logprobs(m, rollout)
    with policy.training() as m:
        logp = answer_logprobs(m, rollout)
    loss, kl = rl_loss(logp, rollout, advantages, base_logp, cfg.kl_coef)
    reliable = [in_reliable_mode(t, ex) for t, ex in zip(rollout.texts, examples)]
    share = None if None in reliable else sum(reliable) / len(reliable)
    return loss, {"reward": rewards.mean().item(), "kl": kl, "reliable_share": share}, float(len(examples))


def _diverged(what: str, step: int, ckpt: Path, progress: dict) -> TrainingDiverged:
    return TrainingDiverged(
        f"step {step + 1}: {what} is not finite (NaN or inf); nothing of this step was saved. The last good "
        f"checkpoint ({ckpt}, step {progress['step']}) is kept: rerun with a lower --lr (or --grad-clip) to resume from it.")


def resume(ckpt: Path, identity: dict, policy, opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """(best state, progress) of a checkpoint of this very run, loaded into policy and opt;
    a checkpoint of another run is a CheckpointMismatch that names what differs."""
    tensors, saved_identity, progress = load_checkpoint(ckpt)
    if saved_identity != identity:
        diff = {k: (saved_identity.get(k), v) for k, v in identity.items() if saved_identity.get(k) != v}
        raise CheckpointMismatch(f"{ckpt} is a checkpoint of another run (saved vs now: {diff}); "
                                 "pass --fresh to start over or choose another --out")
    return _restore(tensors, policy, opt), progress


def trainable_line(counts: dict[str, int], cfg: ExpertConfig, trained: int) -> str:
    """What this run trains, beside what the other method would on the same matrices."""
    return (f"trainable parameters: {counts['svf'] if cfg.method == 'svf' else trained:,} ({cfg.method}, "
            f"{counts['matrices']} matrices; svf would train {counts['svf']:,}, lora rank {cfg.lora_rank} {counts['lora']:,})")


def run_identity(task: tasks.Task, cfg: ExpertConfig, fingerprint: str) -> dict:
    """What a checkpoint must match to be resumed: the same task, settings and base weights."""
    identity = {"task": task.name, "objective": cfg.objective, "method": cfg.method, "targets": cfg.targets,
                "lora_rank": cfg.lora_rank if cfg.method == "lora" else None, "seed": cfg.seed,
                "train_n": cfg.train_n, "batch_size": cfg.batch_size, "base_fingerprint": fingerprint}
    if cfg.rollouts != 1:  # absent at 1, so checkpoints written before the option existed still resume
        identity["rollouts"] = cfg.rollouts
    if hasattr(task, "data_identity"):  # a benchmark: its data source and held-out slice
        identity |= task.data_identity()
    return identity


def optimizer_step(policy, opt: torch.optim.Optimizer, lm: LoadedModel, task: tasks.Task,
                   examples: list[tasks.Example], cfg: ExpertConfig, diverged, processes: Processes = ONE) -> dict:
    """One clipped Adam step on a batch; a non-finite loss, gradient or parameter raises
    diverged(what) before anything is saved. Returns the step's log entry. Across processes,
    `examples` is this process's share: the loss and the logged stats are the whole batch's (each
    process's weighted by its share), the gradients summed, so every process takes the same step."""
    params = list(policy.params.values())
    loss, stats, weight = weighted_step_loss(policy, lm, task, examples, cfg)
    scale = 1.0  # this process's share of the batch's gradient
    if processes.world > 1:
        loss, stats, scale = _reduced(loss, stats, weight, processes)
    if not torch.isfinite(loss):
        raise diverged("the loss")
    opt.zero_grad(set_to_none=True)
    (loss * scale).backward()
    processes.sum_gradients(params)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    if not torch.isfinite(grad_norm):
        raise diverged("the gradient")
    opt.step()
    if cfg.decay:
        policy.decay(min(1.0, opt.param_groups[0]["lr"] * cfg.decay))
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise diverged("a trained parameter")
    return {"loss": loss.item(), "grad_norm": grad_norm.item()} | stats


def _reduced(loss: Tensor, stats: dict, weight: float, processes: Processes) -> tuple[Tensor, dict, float]:
    """(the loss, the whole batch's stats, this process's gradient scale). The returned loss's value is
    the whole batch's; its gradient is this process's: the caller backpropagates loss · scale (weight
    over the total weight), so that the summed gradients are the whole batch's."""
    keys = [k for k in ("reward", "kl", "reliable_share") if stats.get(k) is not None]
    total, loss_sum, *sums = processes.sum([weight, loss.item() * weight, *(stats[k] * weight for k in keys)])
    whole = loss_sum / total
    # the value the log shows and the finiteness check reads is the whole batch's; autograd keeps this process's
    loss = loss + (whole - loss.detach())
    return loss, stats | {k: v / total for k, v in zip(keys, sums)}, weight / total


def anneal(opt: torch.optim.Optimizer, progress: dict, share: float | None, cfg: ExpertConfig, step: int) -> None:
    """Track the EMA (0.9) of the sampled reliable-mode share in `progress`; the first time it passes
    cfg.anneal_at, multiply the lr by cfg.anneal_lr (the mode has flipped: consolidate, do not overshoot)."""
    if share is None or cfg.anneal_at <= 0:
        return
    ema = progress.get("reliable_ema")
    progress["reliable_ema"] = share if ema is None else 0.9 * ema + 0.1 * share
    if progress["reliable_ema"] > cfg.anneal_at and "annealed_at" not in progress:
        progress["annealed_at"] = step
        set_lr(opt, progress, cfg)


def set_lr(opt: torch.optim.Optimizer, progress: dict, cfg: ExpertConfig) -> None:
    """The lr the run's progress calls for: cfg.lr, × cfg.anneal_lr once it has annealed."""
    for group in opt.param_groups:
        group["lr"] = cfg.lr * (cfg.anneal_lr if "annealed_at" in progress else 1.0)


def train_expert(lm: LoadedModel, task: tasks.Task, cfg: ExpertConfig, out: str | Path, *,
                 command: str | None = None, fresh: bool = False, progress_bar: bool = True,
                 processes: Processes = ONE) -> dict:
    """Train, resuming from `<out>.ckpt/` when it holds a checkpoint of the same run.

    Writes the best state so far to `out` (an expert file for svf, a save_pretrained folder for
    lora) whenever validation improves, and once more at the end. Returns a summary: counts,
    best validation accuracy and step, and this call's per-step log. With several `processes`
    (data-parallel, see the module docstring) every process calls this with its own copy of the
    model; only the main one writes.
    """
    out, ckpt = Path(out), checkpoint_path(Path(out))
    if processes.world > cfg.batch_size:
        raise ValueError(f"{processes.world} processes need a batch of at least as many prompts, got "
                         f"batch_size {cfg.batch_size}")
    main = processes.main
    lm.model.eval().requires_grad_(False)
    counts = parameter_counts(lm.model, cfg.targets, cfg.lora_rank)
    policy = (SVFPolicy(lm.model, cfg.targets) if cfg.method == "svf"
              else LoRAPolicy(lm.model, cfg.targets, cfg.lora_rank, cfg.lora_alpha))
    opt = torch.optim.Adam(params := list(policy.params.values()), lr=cfg.lr, eps=cfg.adam_eps)
    identity = run_identity(task, cfg, policy.fingerprint)
    if processes.world > 1:  # absent for one process, so its checkpoints are unchanged
        identity["processes"] = processes.world
    if progress_bar and main:
        print(trainable_line(counts, cfg, sum(p.numel() for p in params)), file=sys.stderr)
    train, val = task.examples("train", cfg.train_n, cfg.seed), task.examples("validation", cfg.val_n, cfg.seed)
    notes_base = {"task": task.name, **asdict(cfg), "command": command or shlex.join(sys.argv)}
    if hasattr(task, "training_notes"):  # a benchmark: which one, its source, the splits read (never test)
        notes_base |= task.training_notes()
    if processes.world > 1:
        notes_base["processes"] = processes.world
    notes = lambda p: notes_base | {  # noqa: E731  (what the expert file records about the run so far)
        "steps_done": p["step"], "best_step": p["best_step"], "best_val_accuracy": p["best_val_accuracy"],
        "base_val_accuracy": p["evals"][0]["val_accuracy"]} | p.get("shrunk", {})

    if fresh and main:
        shutil.rmtree(ckpt.parent, ignore_errors=True)
    processes.barrier()  # every process sees the checkpoint folder as the main one left it
    if ckpt.exists():
        best, progress = resume(ckpt, identity, policy, opt)
        set_lr(opt, progress, cfg)
    else:
        accuracy = validate(policy, lm, task, val, cfg.eval_batch_size, processes)
        best = policy.state()
        progress = {"step": 0, "best_step": 0, "best_val_accuracy": accuracy, "evals": [{"step": 0, "val_accuracy": accuracy}]}
        if main:
            save_checkpoint(ckpt, policy, opt, best, identity, progress)
            policy.save(best, out, task.name, notes(progress))

    log = []
    bar = tqdm(range(progress["step"], cfg.steps), initial=progress["step"], total=cfg.steps,
               desc=f"{task.name} {cfg.method} {cfg.objective}", disable=not (progress_bar and main))
    for step in bar:
        torch.manual_seed(cfg.seed * 1_000_003 + step + processes.rank * 1_000_000_007)  # rank 0: as one process
        examples = [train[i] for i in processes.shard(batch_indices(step, cfg.batch_size, len(train), cfg.seed))]
        stats = optimizer_step(policy, opt, lm, task, examples, cfg, lambda what: _diverged(what, step, ckpt, progress),
                               processes)
        log.append({"step": step + 1} | stats)
        anneal(opt, progress, stats.get("reliable_share"), cfg, step + 1)

        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            accuracy = validate(policy, lm, task, val, cfg.eval_batch_size, processes)
            progress["evals"].append({"step": done, "val_accuracy": accuracy})
            progress["step"] = done
            if progress["evals"][-1]["val_accuracy"] >= progress["best_val_accuracy"]:  # ties: the later state
                best = policy.state()
                progress |= {"best_step": done, "best_val_accuracy": progress["evals"][-1]["val_accuracy"]}
                if main:
                    policy.save(best, out, task.name, notes(progress))
            if main:
                save_checkpoint(ckpt, policy, opt, best, identity, progress)
        shown = {"reward": f"{stats['reward']:+.2f}"} if "reward" in stats else {"loss": f"{stats['loss']:.3f}"}
        bar.set_postfix(shown | {"val": f"{progress['evals'][-1]['val_accuracy']:.1f}%"})

    processes.check_same(policy.state() | {f"best/{n}": t for n, t in best.items()})
    if cfg.shrink and cfg.method == "svf":  # not checkpointed: a rerun of a finished run shrinks the best again
        best, progress["shrunk"] = shrink(policy, lm, task, val, best, progress["best_val_accuracy"],
                                          cfg.eval_batch_size, processes)
    if main:
        policy.save(best, out, task.name, notes(progress))
    processes.barrier()  # the expert is written before any process returns
    summary = {"out": str(out), "checkpoint": str(ckpt), "parameters": counts,
               "trainable": sum(p.numel() for p in params), "steps": progress["step"],
               "best_step": progress["best_step"], "best_val_accuracy": progress["best_val_accuracy"],
               "evals": progress["evals"], "log": log} | progress.get("shrunk", {})
    return summary | ({"processes": processes.world, "rank": processes.rank} if processes.world > 1 else {})


def default_out(folder: Path, task_name: str, cfg: ExpertConfig) -> Path:
    """Where `report` looks for this run: <task>[-<objective>][-<targets>] in the model's expert
    folder, each suffix only where the run differs from the shipped experts (REINFORCE on the MLP:
    math-ntp, math-attn), as .safetensors (SVF) or a -lora folder (LoRA)."""
    parts = [task_name]
    if cfg.objective != "rl":
        parts.append(cfg.objective)
    if cfg.targets != "mlp":
        parts.append(cfg.targets)
    name = "-".join(parts)
    return folder / (f"{name}.safetensors" if cfg.method == "svf" else f"{name}-lora")


def trained_task(out: Path) -> str | None:
    """The task the expert (or LoRA folder) at `out` was trained on, as its notes say (None: not recorded)."""
    try:
        return (lora_notes(out) if out.is_dir() else load_expert(out).notes).get("task")
    except (OSError, ValueError, KeyError):  # unreadable: nothing recorded
        return None


def run(task_name: str, model: str, cfg: ExpertConfig, out: str | Path | None = None, *, device: str | None = None,
        dtype: str | None = None, command: str | None = None, fresh: bool = False, data: Sequence[str] = ()) -> dict:
    """Load the model the task needs (the vision model for vqa, textvqa, okvqa) and train an expert into `out`
    (default: the name report reads, beside the model's other experts; a benchmark's is its category's,
    gsm8k -> math). The task is a synthetic training task, cls, or a benchmark with a train split read from
    the hub or its `data` copy (tasks/benchmarks/selection.training_task, the selection eval uses). A default
    `out` that holds an expert of another task is refused (name --out to replace it). Under `accelerate
    launch` with several processes the run is data-parallel (module docstring): each process loads the
    model on the device accelerate gives it (--device is then ignored) and only the main one writes."""
    from t2demo import models
    from t2demo.tasks.benchmarks.selection import training_task

    task = training_task(task_name, data, cfg.objective, cfg.val_n)
    kind = "vision" if task.vision else "text"
    processes = Processes.from_environment()
    if processes.world > 1:
        device = str(processes.device)
    lm = models.load_model(model, kind, device, dtype)
    if out is None:
        out = default_out(expert_dir(lm.path), getattr(task, "expert_name", task.name), cfg)
        occupant = trained_task(out) if out.exists() else task.name
        if occupant != task.name and (occupant is not None or hasattr(task, "training_notes")):
            raise CheckpointMismatch(f"{out} holds an expert trained on {occupant or 'an unrecorded task'}, not "
                                     f"{task.name}; pass --out {out} to replace it, or another --out")
    summary = train_expert(lm, task, cfg, out, command=command, fresh=fresh, processes=processes)
    processes.close()  # after an error the launcher ends the other processes: no barrier to wait at
    return summary

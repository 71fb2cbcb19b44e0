"""Data-parallel expert training (train.Processes) with two CPU processes under `accelerate launch`.

On a machine without CUDA, `accelerate launch --multi_gpu --num_processes 2` starts two CPU processes
through torchrun (its `--cpu` alone starts one, or needs mpirun), and train.Processes joins them with gloo.

One launch runs this file as a script (the worker at the bottom) in two processes: a next-token run and a
REINFORCE run on a toy reward through train.train_expert, then the documented recipe, `train-expert`
through the CLI (REINFORCE, the default objective, on math). The test then checks that both processes end with bit-identical z, that only one
expert file is written (by the main process), and that the next-token run equals the same run on one
process (the all-reduced gradients are the whole batch's).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# PyTorch's Adam epsilon: a random model's gradients are tiny, and the recipe's 1e-2 would barely move z in 2 steps
NTP = dict(objective="ntp", steps=2, batch_size=4, lr=0.05, grad_clip=0.0, eval_every=2, val_n=4, train_n=8,
           eval_batch_size=4, rollouts=1, kl_coef=0.0, normalize_rewards=False, anneal_at=0.0, adam_eps=1e-8)
TOY_RL = dict(objective="rl", steps=2, batch_size=4, rollouts=4, lr=0.05, grad_clip=0.0, eval_every=2, val_n=4,
              train_n=8, eval_batch_size=4, kl_coef=0.1, normalize_rewards=True, anneal_at=0.0, adam_eps=1e-8)
RL_FLAGS = ["--steps", "2", "--batch-size", "2", "--rollouts", "2", "--eval-every", "2", "--val-n", "4",
            "--train-n", "4", "--eval-batch-size", "4", "--lr", "0.05", "--adam-eps", "1e-8"]


def tiny_model_dir(path: Path) -> Path:
    from conftest import save_model_dir, tiny_chat_model

    from t2demo import pretrain, tasks

    texts = [ex.prompt + "\n" + ex.response for ex in tasks.TASKS["math"].examples("train", 40)]
    tokenizer = pretrain.train_tokenizer(texts, vocab_size=200)
    return save_model_dir(tiny_chat_model(tokenizer, num_hidden_layers=2), tokenizer, path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_expert_with_identical_z(tmp_path):
    from safetensors.torch import load_file

    from t2demo import models, tasks, train
    from t2demo.experts import load_expert

    model_dir = tiny_model_dir(tmp_path / "model")
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu", "--main_process_port", str(free_port()),
              __file__, str(model_dir), str(tmp_path)]
    done = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    # the CLI run: one summary printed (the main process's), one expert written, z identical on both processes
    summary = json.loads(done.stdout[done.stdout.index("{"):done.stdout.rindex("}") + 1])
    assert summary["processes"] == 2 and summary["rank"] == 0 and summary["steps"] == 2
    rl = [load_file(tmp_path / f"rl.rank{r}.safetensors") for r in (0, 1)]
    assert rl[0].keys() == rl[1].keys() and all(torch.equal(rl[0][k], rl[1][k]) for k in rl[0])
    assert any(not torch.equal(v, torch.ones_like(v)) for v in rl[0].values())  # it did train
    assert sorted(p.name for p in (tmp_path / "experts").iterdir()) == ["math.safetensors", "math.safetensors.ckpt"]
    expert = load_expert(tmp_path / "experts" / "math.safetensors")
    assert expert.notes["processes"] == 2 and expert.notes["steps_done"] == 2
    tensors, identity, _ = train.load_checkpoint(train.checkpoint_path(tmp_path / "experts" / "math.safetensors"))
    assert identity["processes"] == 2
    assert all(torch.equal(tensors[f"param/{k}"], rl[0][k]) for k in rl[0])  # the checkpoint is the processes' z
    assert all(torch.equal(expert.z[k], tensors[f"best/{k}"]) for k in expert.z)

    # REINFORCE with a reward the random model earns a third of the time (test_train.ToyTask): the same z and
    # the same logged stats (the whole batch's) on both processes, and z moved
    toy = [load_file(tmp_path / f"toy.rank{r}.safetensors") for r in (0, 1)]
    assert all(torch.equal(toy[0][k], toy[1][k]) for k in toy[0])
    assert max((v - 1).abs().max().item() for v in toy[0].values()) > 0.02
    logs = [json.loads((tmp_path / f"toy.rank{r}.json").read_text()) for r in (0, 1)]
    assert logs[0] == logs[1] and {"reward", "kl", "loss", "grad_norm"} <= logs[0][0].keys()
    assert len({round(entry["reward"], 6) for entry in logs[0]} | {-1.0, 1.0}) > 2  # mixed rewards: a real signal

    # the next-token run: identical on both processes, and the one-process run's z
    ntp = [load_file(tmp_path / f"ntp.rank{r}.safetensors") for r in (0, 1)]
    assert all(torch.equal(ntp[0][k], ntp[1][k]) for k in ntp[0])
    assert (tmp_path / "ntp.safetensors").exists()
    one = train.train_expert(models.load_model(model_dir, "text", "cpu"), tasks.TASKS["math"],
                             train.ExpertConfig(**NTP), tmp_path / "one.safetensors", progress_bar=False)
    tensors, _, _ = train.load_checkpoint(train.checkpoint_path(tmp_path / "one.safetensors"))
    assert one["steps"] == 2 and ntp[0].keys() == {k.removeprefix("param/") for k in tensors if k.startswith("param/")}
    assert max((v - 1).abs().max().item() for v in ntp[0].values()) > 0.05  # two Adam steps of lr 0.05 moved z
    for name, value in ntp[0].items():
        torch.testing.assert_close(value, tensors[f"param/{name}"], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- the worker

def _worker(model_dir: str, out: str) -> None:
    """Run in each process by `accelerate launch` (see the test above)."""
    from safetensors.torch import save_file

    from t2demo import cli, models, tasks, train

    torch.set_num_threads(1)
    policies = []
    real_init = train.SVFPolicy.__init__

    def capture(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        policies.append(self)

    train.SVFPolicy.__init__ = capture
    out = Path(out)
    rank = int(os.environ["RANK"])

    processes = train.Processes.from_environment()
    assert (processes.world, processes.rank) == (2, rank)
    lm = models.load_model(model_dir, "text", str(processes.device))
    train.train_expert(lm, tasks.TASKS["math"], train.ExpertConfig(**NTP), out / "ntp.safetensors",
                       progress_bar=False, processes=processes)
    save_file(policies[-1].state(), str(out / f"ntp.rank{rank}.safetensors"))

    from test_train import ToyTask

    toy = train.train_expert(lm, ToyTask(), train.ExpertConfig(**TOY_RL), out / "toy.safetensors", progress_bar=False,
                             processes=processes)
    save_file(policies[-1].state(), str(out / f"toy.rank{rank}.safetensors"))
    (out / f"toy.rank{rank}.json").write_text(json.dumps(toy["log"]))

    cli.main(["train-expert", "--task", "math", "--model", model_dir, *RL_FLAGS,
              "--out", str(out / "experts" / "math.safetensors")])
    save_file(policies[-1].state(), str(out / f"rl.rank{rank}.safetensors"))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    _worker(*sys.argv[1:3])

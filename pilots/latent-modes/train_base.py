"""Base model: next-token on the mixed world. usage: python train_base.py OUTDIR [--minutes 13] [--p_work 0.4]"""
import argparse, json, os, random, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from common import *

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--minutes", type=float, default=13)
ap.add_argument("--steps", type=int, default=4000)
ap.add_argument("--bs", type=int, default=64)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--p_work", type=float, default=0.4)
ap.add_argument("--p_direct_ok", type=float, default=0.5)
ap.add_argument("--hidden", type=int, default=128)
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--inter", type=int, default=512)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
arch = dict(hidden=args.hidden, layers=args.layers, heads=4, inter=args.inter)
model = make_model(**arch, seed=args.seed)
print("params", sum(p.numel() for p in model.parameters()), flush=True)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
rng = random.Random(args.seed)
# digit mix: 2-digit 25 %, 3-digit 45 %, 4-digit 30 %; ops 50/50
ND = [2] * 25 + [3] * 45 + [4] * 30


def sample_batch(bs):
    """two sub-batches (work / direct) so short direct examples are not padded to work length."""
    parts = {True: ([], []), False: ([], [])}
    for _ in range(bs):
        op = rng.choice("+-")
        a, b = make_problem(rng, op, rng.choice(ND))
        w = rng.random() < args.p_work
        parts[w][0].append(prompt_text(a, b, op))
        parts[w][1].append(work_text(a, b, op) if w else direct_text(a, b, op, rng, args.p_direct_ok))
    return [batch_from(P, C) for P, C in parts.values() if P]


t0 = time.time()
start = 0
ck_path = os.path.join(args.out, "ckpt.pt")
if os.path.exists(ck_path):
    ck = torch.load(ck_path, weights_only=False)
    model.load_state_dict(ck["state"]); opt.load_state_dict(ck["opt"]); start = ck["step"]
    t0 -= ck["elapsed"]
warm = 150
budget = args.minutes * 60
model.train()
ema = None
for step in range(start, args.steps):
    el = time.time() - t0
    frac = max(step / args.steps, el / budget)  # cosine on whichever runs out first
    if frac >= 1:
        break
    lr = args.lr * min(1, (step + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
    for g in opt.param_groups:
        g["lr"] = lr
    subs = sample_batch(args.bs)
    ntok = sum((lab != -100).sum() for _, _, lab in subs)
    loss = 0
    for ids, att, lab in subs:  # token-weighted mean over both sub-batches
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
        loss = loss + F.cross_entropy(logits.reshape(-1, VOCAB), lab[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
    loss = loss / ntok
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
    if step % 100 == 0:
        print(f"step {step} loss {ema:.4f} lr {lr:.2e} t {el:.0f}s", flush=True)
    if step % 500 == 499:
        torch.save({"state": model.state_dict(), "opt": opt.state_dict(), "step": step + 1, "elapsed": time.time() - t0,
                    "arch": arch}, ck_path)
el = time.time() - t0
torch.save({"state": model.state_dict(), "arch": arch, "args": vars(args), "steps": step, "minutes": el / 60},
           os.path.join(args.out, "base.pt"))
print(f"done steps {step} in {el/60:.1f} min", flush=True)
model.eval()
res = evaluate(model, ["add2", "sub2", "add3", "sub3", "add4", "sub4"], n=200, n_vote=100)
json.dump(res, open(os.path.join(args.out, "eval.json"), "w"), indent=1)
print(show(res, f"base {args.out}"), flush=True)

"""SVF expert: z over the MLP matrices, REINFORCE (LOO advantage / group std, exact KL to base) or next-token.
usage: python rl.py BASE.pt OUTDIR --tasks add3,sub3 --seed 0 [--method rl|sft] [--steps 150] [--lr 2e-2] [--kl 0.1]
        [--anneal_at 0.45 --anneal_lr 0.3 --anneal_kl 0.0] [--kl_skip_first]
"""
import argparse, copy, json, os, random, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from common import *

ap = argparse.ArgumentParser()
ap.add_argument("base"); ap.add_argument("out")
ap.add_argument("--tasks", default="add3")
ap.add_argument("--method", default="rl")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--steps", type=int, default=150)
ap.add_argument("--minutes", type=float, default=5.0)
ap.add_argument("--lr", type=float, default=2e-2)
ap.add_argument("--kl", type=float, default=0.1)
ap.add_argument("--prompts", type=int, default=4)
ap.add_argument("--k", type=int, default=16)
ap.add_argument("--temp", type=float, default=1.0)
ap.add_argument("--anneal_at", type=float, default=2.0)  # >1: never
ap.add_argument("--anneal_lr", type=float, default=0.3)
ap.add_argument("--anneal_kl", type=float, default=1.0)
ap.add_argument("--kl_skip_first", action="store_true", help="no KL on the mode-decision token")
ap.add_argument("--no_std", action="store_true")
ap.add_argument("--stop_w", type=float, default=2.0, help="early stop once the EMA of the Work fraction reaches this")
ap.add_argument("--l2", type=float, default=0.0, help="penalty l2 * sum (z-1)^2")
ap.add_argument("--eval_tasks", default="add2,sub2,add3,sub3,add4,sub4")
ap.add_argument("--vote_tasks", default="add3,add4")
ap.add_argument("--n_eval", type=int, default=200)
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
torch.manual_seed(args.seed)
rng = random.Random(1000 + args.seed)
model = load_model(args.base)
for p in model.parameters():
    p.requires_grad_(False)
base = copy.deepcopy(model)
svf = SVF(model)
z = {n: torch.nn.Parameter(v) for n, v in svf.ones().items()}
opt = torch.optim.Adam(z.values(), lr=args.lr)
tasks = args.tasks.split(",")
kl_coef, annealed = args.kl, False
ema_w = None
log = open(os.path.join(args.out, "log.txt"), "a")
t0 = time.time()
print("z values", sum(v.numel() for v in z.values()), "targets", len(z), flush=True)
for step in range(args.steps):
    if time.time() - t0 > args.minutes * 60:
        break
    probs = []
    for _ in range(args.prompts):
        op, nd = TASKS[rng.choice(tasks)]
        probs.append(make_problem(rng, op, nd) + (op,))
    prompts = [prompt_text(a, b, op) for a, b, op in probs]
    gold = [answer(a, b, op) for a, b, op in probs]
    if args.method == "rl":
        restore = svf.set_weights({n: v.detach() for n, v in z.items()})
        comps = generate(model, [p for p in prompts for _ in range(args.k)], args.temp, seed=args.seed * 100000 + step)
        restore()
        R = torch.tensor([float(parse_answer(c) == gold[i // args.k]) for i, c in enumerate(comps)]).view(args.prompts, args.k)
        loo = (R.sum(1, keepdim=True) - R) / (args.k - 1)
        adv = R - loo
        if not args.no_std:
            adv = adv / (R.std(1, keepdim=True) + 1e-6)
        adv = adv.view(-1)
        P = [p for p in prompts for _ in range(args.k)]
        wfrac = sum(c.startswith("W") for c in comps) / len(comps)
        acc = R.mean().item()
    else:  # next-token on reliable-mode (Work) references
        P, comps = prompts, [work_text(a, b, op) for a, b, op in probs]
        adv = None
        wfrac = acc = float("nan")
    ids, att, lab = batch_from(P, comps)
    mask = (lab[:, 1:] != -100).float()
    logits = svf.forward(z, input_ids=ids, attention_mask=att).logits[:, :-1].float()
    logp_all = torch.log_softmax(logits, -1)
    tgt = lab[:, 1:].clamp(min=0)
    logp = logp_all.gather(-1, tgt[..., None]).squeeze(-1) * mask
    if args.method == "rl":
        with torch.no_grad():
            blogp = torch.log_softmax(base(input_ids=ids, attention_mask=att).logits[:, :-1].float(), -1)
        kl_tok = (logp_all.exp() * (logp_all - blogp)).sum(-1) * mask
        if args.kl_skip_first:
            first = mask.cumsum(1) == 1
            kl_tok = kl_tok * (~first).float()
        pg = -(adv * logp.sum(1)).mean()
        kl = kl_tok.sum(1).mean()
        loss = pg + kl_coef * kl
    else:
        kl = torch.tensor(0.0)
        loss = -logp.sum() / mask.sum()
    if args.l2:
        loss = loss + args.l2 * sum(((v - 1) ** 2).sum() for v in z.values())
    opt.zero_grad(); loss.backward(); opt.step()
    if args.method == "rl":
        ema_w = wfrac if ema_w is None else 0.9 * ema_w + 0.1 * wfrac
        if not annealed and ema_w > args.anneal_at:
            annealed = True
            kl_coef *= args.anneal_kl
            for g in opt.param_groups:
                g["lr"] *= args.anneal_lr
            print(f"annealed at step {step}: lr {opt.param_groups[0]['lr']:.2e} kl {kl_coef}", flush=True)
    msg = f"step {step} loss {loss.item():.3f} kl {kl.item():.3f} acc {acc:.3f} Wfrac {wfrac:.3f} emaW {ema_w} t {time.time()-t0:.0f}s"
    if step % 10 == 0:
        print(msg, flush=True)
    log.write(msg + "\n")
    if args.method == "rl" and ema_w >= args.stop_w:
        print(f"early stop at step {step}: emaW {ema_w:.3f}", flush=True)
        break
    if step % 50 == 49:
        torch.save({n: v.detach() for n, v in z.items()}, os.path.join(args.out, "z.pt"))
train_min = (time.time() - t0) / 60
zf = {n: v.detach() for n, v in z.items()}
torch.save(zf, os.path.join(args.out, "z.pt"))
dz = torch.cat([(v - 1).abs() for v in zf.values()])
print(f"trained {step+1} steps in {train_min:.1f} min; mean|z-1| {dz.mean():.3f} max {dz.max():.3f}", flush=True)
out = {"args": vars(args), "steps": step + 1, "train_min": train_min, "mean_abs_dz": dz.mean().item()}
ev = args.eval_tasks.split(",")
vt = args.vote_tasks.split(",") if args.vote_tasks else []
for name, zz in [("expert", zf), ("shuffled", shuffled(zf, args.seed))]:
    restore = svf.set_weights(zz)
    res = evaluate(model, ev, n=args.n_eval, do_steps=False, do_vote=False)
    for t in vt:
        if name == "expert":
            res[t] = evaluate(model, [t], n=args.n_eval, n_vote=100, do_steps=False)[t]
    restore()
    out[name] = res
    print(show(res, f"{name} {args.out}"), flush=True)
json.dump(out, open(os.path.join(args.out, "eval.json"), "w"), indent=1)
print(f"total {(time.time()-t0)/60:.1f} min", flush=True)

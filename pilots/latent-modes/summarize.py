"""Collect runs/*/eval.json into markdown tables. usage: python summarize.py > results.md"""
import glob, json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
from common import fmt, show

for base in sorted(glob.glob("runs/base*/eval.json")):
    print(show(json.load(open(base)), f"base {os.path.dirname(base)}"), "\n")
rows = ["| run | steps | train min | mean abs(z-1) | " + " | ".join(f"{t} greedy" for t in ["add2", "sub2", "add3", "sub3", "add4", "sub4"])
        + " | add3 P(W) | add3 maj@16 | add4 maj@16 |", "|" + "---|" * 13]
ctrl = list(rows)
for f in sorted(glob.glob("runs/*/eval.json")):
    if "/base" in f:
        continue
    d = json.load(open(f))
    name = os.path.basename(os.path.dirname(f))
    if "mean_abs_dz" not in d:
        import torch
        zz = torch.load(os.path.join(os.path.dirname(f), "z.pt"))
        d["mean_abs_dz"] = torch.cat([(v - 1).abs() for v in zz.values()]).mean().item()
    for kind, tab in [("expert", rows), ("shuffled", ctrl)]:
        e = d[kind]
        r = [name, str(d["steps"]), f"{d['train_min']:.1f}", f"{d.get('mean_abs_dz', float('nan')):.3f}"]
        r += [fmt(e[t]["greedy"], e[t]["n"]) for t in ["add2", "sub2", "add3", "sub3", "add4", "sub4"]]
        r += [f"{e['add3']['p_work']:.2f}"]
        r += [fmt(e[t]["vote"], e[t]["n_vote"]) if "vote" in e[t] else "-" for t in ["add3", "add4"]]
        tab.append("| " + " | ".join(r) + " |")
print("### experts (greedy accuracy, z as trained)\n" + "\n".join(rows) + "\n")
print("### shuffled-z control (z permuted within each matrix)\n" + "\n".join(ctrl))

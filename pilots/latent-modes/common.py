"""Pilot 14: tiny arithmetic world with two answer modes, tiny Llama, minimal SVF, sampling, eval.

Format (char level):  prompt  "347+285="
  Work mode  (reliable): "W7+5+0=12 4+8+1=13 3+2+1=06 A632."   (column steps, carry/borrow in, then answer)
  Direct mode (shortcut): "A632."   in the data the direct answer is right only with prob P_DIRECT_OK,
                          otherwise one digit is perturbed -> unmemorisable, often-wrong shortcut.
Sub steps: "7-5-0=02" = a_i - b_i - borrow_in = (borrow_out)(digit).
"""
import math, os, random, time, json
import torch, torch.nn.functional as F
from torch.func import functional_call

torch.set_num_threads(1)
CHARS = "0123456789+-= WA."
PAD, BOS = 0, 1
STOI = {c: i + 2 for i, c in enumerate(CHARS)}
ITOS = {i: c for c, i in STOI.items()}
VOCAB = len(CHARS) + 2
EOS_ID = STOI["."]
W_ID, A_ID = STOI["W"], STOI["A"]


def enc(s):
    return [STOI[c] for c in s]


def dec(ids):
    out = []
    for i in ids:
        if i in ITOS:
            out.append(ITOS[i])
            if ITOS[i] == ".":
                break
    return "".join(out)


# ---------------------------------------------------------------- world
def make_problem(rng, op, nd):
    lo, hi = (10 ** (nd - 1), 10 ** nd - 1)
    a, b = rng.randint(lo, hi), rng.randint(lo, hi)
    if op == "-" and b > a:
        a, b = b, a
    return a, b


def answer(a, b, op):
    return a + b if op == "+" else a - b


def work_steps(a, b, op):
    nd = max(len(str(a)), len(str(b)))
    sa, sb = str(a).zfill(nd)[::-1], str(b).zfill(nd)[::-1]
    steps, c = [], 0
    for i in range(nd):
        x, y = int(sa[i]), int(sb[i])
        if op == "+":
            s = x + y + c
            out, c2 = s % 10, s // 10
        else:
            s = x - y - c
            c2 = 1 if s < 0 else 0
            out = s + 10 * c2
        steps.append(f"{x}{op}{y}{op}{c}={c2}{out}")
        c = c2
    return steps


def work_text(a, b, op):
    return "W" + " ".join(work_steps(a, b, op)) + f" A{answer(a, b, op)}."


def noisy(ans, rng):
    s = list(str(ans))
    i = rng.randrange(len(s))
    choices = [d for d in "0123456789" if d != s[i] and not (i == 0 and d == "0" and len(s) > 1)]
    s[i] = rng.choice(choices)
    return int("".join(s))


def direct_text(a, b, op, rng, p_ok):
    ans = answer(a, b, op)
    return f"A{ans if rng.random() < p_ok else noisy(ans, rng)}."


TASKS = {  # name -> (op, ndigits)
    "add2": ("+", 2), "sub2": ("-", 2), "add3": ("+", 3), "sub3": ("-", 3),
    "add4": ("+", 4), "sub4": ("-", 4),
}


def prompt_text(a, b, op):
    return f"{a}{op}{b}="


def parse_answer(text):
    """text after the last 'A' up to '.'; None if malformed."""
    if "A" not in text or not text.endswith("."):
        return None
    t = text.rsplit("A", 1)[1][:-1]
    return int(t) if t.isdigit() else None


# ---------------------------------------------------------------- model
def make_model(hidden=128, layers=4, heads=4, inter=512, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=96,
                      pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS_ID, tie_word_embeddings=True,
                      rope_theta=10000.0)
    m = LlamaForCausalLM(cfg)
    return m


def load_model(path):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    m = make_model(**ck["arch"])
    m.load_state_dict(ck["state"])
    m.eval()
    return m


def batch_from(prompts, completions):
    """left-aligned (right padded) batch; labels only on completion tokens."""
    seqs, labs = [], []
    for p, c in zip(prompts, completions):
        pi, ci = [BOS] + enc(p), enc(c)
        seqs.append(pi + ci)
        labs.append([-100] * len(pi) + ci)
    L = max(map(len, seqs))
    ids = torch.full((len(seqs), L), PAD)
    lab = torch.full((len(seqs), L), -100)
    att = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labs)):
        ids[i, :len(s)] = torch.tensor(s)
        lab[i, :len(l)] = torch.tensor(l)
        att[i, :len(s)] = 1
    return ids, att, lab


# ---------------------------------------------------------------- minimal SVF
class SVF:
    def __init__(self, model, pattern=("gate_proj", "up_proj", "down_proj")):
        self.model = model
        self.names = [n for n, p in model.named_parameters() if n.endswith(".weight") and any(k in n for k in pattern)]
        self.fac = {}
        for n in self.names:
            W = dict(model.named_parameters())[n].detach().double()
            U, S, Vh = torch.linalg.svd(W, full_matrices=False)
            self.fac[n] = (U.float(), S.float(), Vh.float())

    def ones(self):
        return {n: torch.ones_like(self.fac[n][1]) for n in self.names}

    def weights(self, z):
        out = {}
        for n in self.names:
            U, S, Vh = self.fac[n]
            out[n] = (U * (S * z[n])) @ Vh
        return out

    def forward(self, z, **kw):
        return functional_call(self.model, self.weights(z), args=(), kwargs=kw, strict=False)

    def set_weights(self, z):
        """write W'(z) into the model in place (no grad) for fast sampling; returns a restore fn."""
        params = dict(self.model.named_parameters())
        saved = {n: params[n].detach().clone() for n in self.names}
        with torch.no_grad():
            for n, w in self.weights(z).items():
                params[n].copy_(w)

        def restore():
            with torch.no_grad():
                for n in self.names:
                    params[n].copy_(saved[n])
        return restore


def shuffled(z, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: v[torch.randperm(len(v), generator=g)] for n, v in z.items()}


# ---------------------------------------------------------------- generation (left padding, kv cache)
@torch.no_grad()
def generate(model, prompts, temperature=0.0, max_new=48, force_prefix="", seed=None):
    """returns list of completion strings (including force_prefix)."""
    from transformers import DynamicCache
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    toks = [[BOS] + enc(p) + enc(force_prefix) for p in prompts]
    L = max(map(len, toks))
    B = len(toks)
    ids = torch.full((B, L), PAD)
    att = torch.zeros((B, L), dtype=torch.long)
    for i, t in enumerate(toks):
        ids[i, L - len(t):] = torch.tensor(t)
        att[i, L - len(t):] = 1
    pos = (att.cumsum(1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = model(input_ids=ids, attention_mask=att, position_ids=pos, past_key_values=cache, use_cache=True)
    logits = out.logits[:, -1]
    done = torch.zeros(B, dtype=torch.bool)
    res = [[] for _ in range(B)]
    last_pos = pos[:, -1]
    for step in range(max_new):
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        for i in range(B):
            if not done[i]:
                res[i].append(int(nxt[i]))
        done = done | (nxt == EOS_ID)
        if bool(done.all()):
            break
        att = torch.cat([att, (~done).long()[:, None] | 1], 1)
        last_pos = last_pos + 1
        out = model(input_ids=nxt[:, None], attention_mask=att, position_ids=last_pos[:, None],
                    past_key_values=cache, use_cache=True)
        logits = out.logits[:, -1]
    return [force_prefix + dec(r) for r in res]


@torch.no_grad()
def p_work_first(model, prompts):
    ids, att, _ = batch_from(prompts, [""] * len(prompts))
    lens = att.sum(1)
    logits = model(input_ids=ids, attention_mask=att).logits
    last = logits[torch.arange(len(prompts)), lens - 1]
    p = torch.softmax(last.float(), -1)
    return p[:, W_ID].mean().item(), p[:, A_ID].mean().item()


# ---------------------------------------------------------------- eval
def wilson(k, n, z=1.96):
    if n == 0:
        return (0, 0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def fmt(k, n):
    lo, hi = wilson(k, n)
    return f"{100*k/n:.1f}% [{100*lo:.0f},{100*hi:.0f}] (n={n})"


def eval_problems(task, n, seed=1234):
    op, nd = TASKS[task]
    rng = random.Random(hash((task, seed)) % (2 ** 31))
    return [make_problem(rng, op, nd) + (op,) for _ in range(n)]


def evaluate(model, tasks, n=200, k=16, n_vote=100, do_vote=True, do_steps=True, seed=7, bs=400):
    res = {}
    for t in tasks:
        probs = eval_problems(t, n)
        prompts = [prompt_text(a, b, op) for a, b, op in probs]
        gold = [answer(a, b, op) for a, b, op in probs]
        r = {"n": n}
        r["p_work"], r["p_direct"] = p_work_first(model, prompts)
        g = generate(model, prompts, 0.0)
        r["greedy"] = sum(parse_answer(x) == y for x, y in zip(g, gold))
        r["greedy_work_frac"] = sum(x.startswith("W") for x in g)
        if do_steps:
            gw = generate(model, prompts, 0.0, force_prefix="W")
            r["work_forced"] = sum(parse_answer(x) == y for x, y in zip(gw, gold))
            ok = tot = 0
            for x, (a, b, op) in zip(gw, probs):
                steps = work_steps(a, b, op)
                got = x[1:].split(" ")
                for i, s in enumerate(steps):
                    tot += 1
                    ok += (i < len(got) and got[i] == s)
            r["step_ok"], r["step_n"] = ok, tot
            gd = generate(model, prompts, 0.0, force_prefix="A")
            r["direct_forced"] = sum(parse_answer(x) == y for x, y in zip(gd, gold))
        if do_vote:
            vp = prompts[:n_vote] * k
            vs = []
            for i in range(0, len(vp), bs):
                vs += generate(model, vp[i:i + bs], 1.0, seed=seed + i)
            vote = at_least = work_s = 0
            for j in range(n_vote):
                outs = [parse_answer(vs[j + n_vote * s]) for s in range(k)]
                work_s += sum(vs[j + n_vote * s].startswith("W") for s in range(k))
                cnt = {}
                for o in outs:
                    if o is not None:
                        cnt[o] = cnt.get(o, 0) + 1
                if cnt and max(cnt, key=cnt.get) == gold[j]:
                    vote += 1
                at_least += gold[j] in outs
            r["vote"], r["pass"], r["n_vote"] = vote, at_least, n_vote
            r["sample_work_frac"] = work_s / (n_vote * k)
        res[t] = r
    return res


def show(res, title=""):
    lines = [f"### {title}", "| task | P(W first) | greedy acc | W-forced acc | per-step (W) | A-forced acc | maj@16 | pass@16 |",
             "|---|---|---|---|---|---|---|---|"]
    for t, r in res.items():
        n = r["n"]
        row = [t, f"{r['p_work']:.2f}", fmt(r["greedy"], n)]
        row.append(fmt(r["work_forced"], n) if "work_forced" in r else "-")
        row.append(fmt(r["step_ok"], r["step_n"]) if "step_ok" in r else "-")
        row.append(fmt(r["direct_forced"], n) if "direct_forced" in r else "-")
        row.append(fmt(r["vote"], r["n_vote"]) if "vote" in r else "-")
        row.append(fmt(r["pass"], r["n_vote"]) if "pass" in r else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)

"""Per-digit accuracy of the operand copies in math's worked replies (teacher-forced, 96 validation
questions): a[k] / b[k] is the k-th digit of the first / second operand, col1 the first column.

    python pilots/operand-copy/copy_probe.py assets/t2demo-llama-tiny [threads]
    python pilots/operand-copy/copy_probe.py <out>.partial/checkpoint.pt      # a pretraining checkpoint

README ("Base models and evaluation") quotes it for the base before and after the number-copy drill
(before: the model of commit b0a1766, `git show b0a1766:assets/t2demo-llama-tiny/model.safetensors`).
"""
import sys, torch
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
from transformers import AutoTokenizer, AutoModelForCausalLM
from t2demo.tasks import registry
from t2demo.generation import format_chat
path = sys.argv[1]
import os
if os.path.isfile(path):  # a pretraining checkpoint: the shipped model's shapes, these weights
    tok = AutoTokenizer.from_pretrained("assets/t2demo-llama-tiny")
    m = AutoModelForCausalLM.from_pretrained("assets/t2demo-llama-tiny")
    m.load_state_dict(torch.load(path, weights_only=True)["model"]); m.eval()
else:
    tok = AutoTokenizer.from_pretrained(path); m = AutoModelForCausalLM.from_pretrained(path).eval()
task = registry.REGISTRY.get("math")
exs = task.examples("validation", 96)
from collections import defaultdict
acc = defaultdict(lambda: [0, 0])
with torch.inference_mode():
    for s in range(0, len(exs), 32):
        chunk = exs[s:s+32]
        heads = [format_chat(tok, e.prompt) for e in chunk]
        texts = [format_chat(tok, e.prompt, e.response) for e in chunk]
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False, return_offsets_mapping=True)
        off = enc.pop("offset_mapping")
        pred = m(**enc).logits.argmax(-1)
        for r, (e, h) in enumerate(zip(chunk, heads)):
            steps = e.meta["steps"]
            for k, (o, t) in enumerate(steps[:2] + steps[2:3]):
                label = ["a", "b", "col1"][k]
                lo = len(h) + o
                for i in range(1, off.shape[1]):
                    st, en = off[r, i].tolist()
                    if lo <= st < lo + len(t) and en > st:
                        d = st - lo
                        acc[f"{label}[{d}]"][0] += int(pred[r, i-1] == enc["input_ids"][r, i]); acc[f"{label}[{d}]"][1] += 1
print(path, " ".join(f"{k}:{100*v[0]/v[1]:.0f}%" for k, v in sorted(acc.items())))

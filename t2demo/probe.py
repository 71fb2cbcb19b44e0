"""The default world's premise, measured: skills the base model has, and answer modes that hide them.

`python -m t2demo probe` prints, per task (the vqa tasks on the vision model):
  - per-step accuracy in the reliable mode: the reliable reply teacher-forced, and each step (a column's
    carry and digit, a line of code read and the list after it, a recalled fact, a word read from the
    image) counted right when every one of its tokens is the model's greedy choice (target: ≥ 95 %);
  - the answer modes: greedy accuracy and how often greedy starts in the reliable mode; greedy with the
    reply opened by the reliable marker (what an expert that flips the first decision can reach); over k
    samples at temperature 1, the reliable-mode share, the majority vote's accuracy (maj@k) and pass@k.
    Latent skill, not luck, shows as maj@k clearly above greedy.
With --mix (e.g. math=1) the same is measured with experts applied (the mode they flip).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import torch
from tqdm import tqdm

from t2demo import tasks
from t2demo.evaluate import summarise
from t2demo.generation import format_chat, generate, images_of, tokenize_chat
from t2demo.models import LoadedModel
from t2demo.rollouts import answer_logprobs, reference_rollout, sample_rollout
from t2demo.tasks.checkers import chosen_letter, final_answer, last_number, normalize, options_of
from t2demo.tasks.modes import ANSWER, WORK, in_reliable_mode, modes_of
from t2demo.tasks.programs import last_list

# What a reply answers, for the majority vote (the checkers' own parsers).
ANSWER_OF: dict[str, Callable[[tasks.Example, str], str | None]] = {
    "math": lambda ex, reply: last_number(reply),
    "code": lambda ex, reply: last_list(reply),
    "reasoning": lambda ex, reply: chosen_letter(reply, options_of(ex.prompt)),
    "vqa": lambda ex, reply: normalize(final_answer(reply)) or None,
}


@torch.inference_mode()
def step_accuracy(lm: LoadedModel, examples: Sequence[tasks.Example], batch_size: int = 32) -> list[bool]:
    """Each step of each example's reliable reply (meta["steps"]): right when the model, teacher-forced
    on the reply, predicts every token of the step's text greedily.

    Steps are located in the text's own tokens; a vision model's processor expands the one image
    token into many, all before the reply, so each row's positions shift by the length it adds."""
    hits = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        images = images_of(chunk)
        heads = [format_chat(lm.preprocessor, ex.prompt, image=images is not None) for ex in chunk]
        texts = [format_chat(lm.preprocessor, ex.prompt, ex.response, image=images is not None) for ex in chunk]
        text_only = tokenize_chat(lm, texts, padding=True, padding_side="right", return_offsets_mapping=True)
        offsets = text_only.pop("offset_mapping")
        inputs = tokenize_chat(lm, texts, images, padding=True, padding_side="right") if images else text_only
        shifts = inputs["attention_mask"].sum(1) - text_only["attention_mask"].sum(1)
        predicted = lm.model(**{k: v.to(lm.device) for k, v in inputs.items()}).logits.argmax(-1).cpu()
        for row, (ex, head) in enumerate(zip(chunk, heads)):
            ends, shift, ids = offsets[row, :, 1], int(shifts[row]), text_only["input_ids"][row]
            for offset, text in ex.meta["steps"]:
                lo, hi = len(head) + offset, len(head) + offset + len(text)
                positions = [i for i in range(1, len(ends)) if lo < ends[i] <= hi and ends[i] > offsets[row, i, 0]]
                hits.append(bool(positions) and all(predicted[row, i - 1 + shift] == ids[i] for i in positions))
    return hits


def first_modes(lm: LoadedModel, task: tasks.Task, examples: Sequence[tasks.Example]) -> tuple[Counter, dict]:
    """Greedy replies under the model's current weights: how many start with each mode marker ("none":
    no marker) and their accuracy. Tells whether weights (an expert, a control) take the reliable mode or
    change answers some other way (scripts/expert_modes.py, scripts/shuffled_modes.py)."""
    replies = generate(lm, [ex.prompt for ex in examples], images_of(examples), task.max_new_tokens)
    first = Counter((modes_of(r) or ["none"])[0] for r in replies)
    return first, summarise(task.check_many(examples, replies))


@torch.inference_mode()
def decision_shares(lm: LoadedModel, examples: Sequence[tasks.Example], batch_size: int = 32) -> list[list[float]]:
    """Per example, at each mode decision of its reliable reply (each `Work:` / `Answer:` marker, in
    order), the probability the model gives the reliable marker against the other one, the reply
    teacher-forced up to there. Where the two markers are the likeliest tokens, greedy takes the reliable
    mode when its share is above 0.5, so this shows which decision a set of weights moves, and by how
    much (a two-skill reply makes two). Markers are read by their first token, with or without a
    leading space."""
    tokenizer = lm.tokenizer
    other = {}
    for space in ("", " "):
        work, answer = (tokenizer(space + marker.rstrip(":"), add_special_tokens=False)["input_ids"][0]
                        for marker in (WORK, ANSWER))
        other |= {work: answer, answer: work}
    shares = []
    for start in range(0, len(examples), batch_size):
        rollout = reference_rollout(lm, examples[start:start + batch_size])
        logp = answer_logprobs(lm.model, rollout).cpu()
        for row, ids in enumerate(rollout.answer_ids.cpu().tolist()):
            at = [i for i, t in enumerate(ids) if t in other and rollout.answer_mask[row, i]]
            shares.append([torch.softmax(logp[row, i, [ids[i], other[ids[i]]]], 0)[0].item() for i in at])
    return shares


def forced_reliable(lm: LoadedModel, task: tasks.Task, examples: Sequence[tasks.Example],
                    batch_size: int = 32) -> list[bool]:
    """Greedy replies opened with the reliable reply's first mode marker, right or not: what weights that
    flip the first decision and change nothing else would score (the ceiling of an expert's flip; a
    two-skill reply still makes its second decision itself), in the examples' order; those without modes
    (small talk) are left out."""
    first = {i: modes_of(ex.response)[0] for i, ex in enumerate(examples) if modes_of(ex.response)}
    right = {}
    for marker in dict.fromkeys(first.values()):  # one opening per batch
        rows = [i for i, m in first.items() if m == marker]
        chosen = [examples[i] for i in rows]
        right |= dict(zip(rows, task.check_many(chosen, greedy_replies(lm, task, chosen, batch_size, marker))))
    return [right[i] for i in sorted(right)]


def greedy_replies(lm: LoadedModel, task: tasks.Task, examples: Sequence[tasks.Example], batch_size: int = 32,
                   opening: str = "") -> list[str]:
    """Greedy replies to the examples' prompts, `batch_size` at a time, each begun with `opening`."""
    replies = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        replies += generate(lm, [ex.prompt for ex in chunk], images_of(chunk), task.max_new_tokens, opening=opening)
    return replies


def mode_stats(lm: LoadedModel, task: tasks.Task, examples: Sequence[tasks.Example], samples: int = 16,
               batch_size: int = 32, progress: bool = True, seed: int = 0) -> dict:
    """Greedy accuracy and reliable-mode share; over `samples` answers at T = 1 (torch seeded with `seed`
    first, so a rerun draws the same samples whatever ran before): reliable share, mean accuracy,
    majority-vote accuracy and pass@k."""
    answer_of = ANSWER_OF[task.category]
    greedy = greedy_replies(lm, task, examples, batch_size)
    forced = forced_reliable(lm, task, examples, batch_size)
    torch.manual_seed(seed)
    votes, any_right, sampled_right, sampled_reliable = [], [], [], []
    per_batch = max(1, batch_size * 2 // samples)
    for start in tqdm(range(0, len(examples), per_batch), desc=f"{task.name} samples", disable=not progress):
        chunk = examples[start:start + per_batch]
        texts = sample_rollout(lm, [ex for ex in chunk for _ in range(samples)], task.max_new_tokens).texts
        for i, ex in enumerate(chunk):
            replies = texts[i * samples:(i + 1) * samples]
            right = task.check_many([ex] * samples, replies)
            parsed = [answer_of(ex, r) for r in replies]
            top = Counter(a for a in parsed if a is not None).most_common(1)
            votes.append(bool(top) and right[parsed.index(top[0][0])])  # the vote is right iff its answer's replies are
            any_right.append(any(right))
            sampled_right += right
            sampled_reliable += [in_reliable_mode(r, ex) for r in replies]
    return {"greedy": summarise(task.check_many(list(examples), greedy)),
            "greedy_reliable_share": round(100 * sum(in_reliable_mode(r, ex) for r, ex in zip(greedy, examples))
                                           / len(greedy), 1),
            "forced": summarise(forced) if forced else None,
            "samples": samples,
            "sampled_reliable_share": round(100 * sum(sampled_reliable) / len(sampled_reliable), 1),
            "sampled": summarise(sampled_right), "majority": summarise(votes), "pass_at_k": summarise(any_right)}


def probe(lm: LoadedModel, task_names: Sequence[str], limit: int = 200, vote_limit: int = 100, samples: int = 16,
          batch_size: int = 32, progress: bool = True) -> dict:
    """Per task: step accuracy on `limit` test examples, mode statistics on the first `vote_limit`."""
    result = {}
    for name in task_names:
        task = tasks.TASKS[name]
        examples = task.examples("test", max(limit, vote_limit))
        result[name] = {"steps": summarise(step_accuracy(lm, examples[:limit], batch_size))}
        result[name] |= mode_stats(lm, task, examples[:vote_limit], samples, batch_size, progress)
    return result


def format_probe(result: dict, title: str) -> str:
    """One line per task: step accuracy, then greedy against the sampled modes."""
    def pct(r: dict) -> str:
        return f"{r['accuracy']:5.1f} [{r['ci95'][0]:.0f}, {r['ci95'][1]:.0f}]"
    lines = [title, f"{'task':<16}{'steps right (n)':>24}{'greedy':>17}{'greedy rel.':>12}{'forced rel.':>17}"
             f"{'sampled rel.':>13}{'maj@k':>17}{'pass@k':>17}{'n':>5}"]
    for name, r in result.items():
        forced = pct(r["forced"]) if r.get("forced") else "-"
        lines.append(f"{name:<16}{pct(r['steps']):>17} ({r['steps']['n']}){pct(r['greedy']):>17}"
                     f"{r['greedy_reliable_share']:>11.1f}%{forced:>17}{r['sampled_reliable_share']:>12.1f}%"
                     f"{pct(r['majority']):>17}{pct(r['pass_at_k']):>17}{r['greedy']['n']:>5}")
    lines.append(f"k = {next(iter(result.values()))['samples']} samples at temperature 1; 'rel.' = replies taking the reliable mode(s) "
                 "of the task (tasks/modes.py); 'forced rel.' = greedy with the reply opened by the reliable mode's first marker "
                 "(what a perfect flip of the first decision scores); accuracies in % with 95 % Wilson intervals.")
    return "\n".join(lines)

"""Train the shipped default models from scratch: a tiny Llama chat model and a tiny LLaVA-Next on it.

Same recipe for every task (an honest generalist): one mixture of the training tasks, the drills
that teach their steps (never the unseen tasks), the classification data, small talk and the
synthetic world's facts, trained with next-token loss on the assistant's last reply. Each reply
is drawn in its latent answer modes (tasks/modes.py), the reliable one in the minority, and a
quarter of the chats have earlier turns. The vision model starts from the text model's weights,
as Llama3-LLaVA-Next-8B starts from Llama 3, so text experts can be applied to it.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm import tqdm
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil,
    LlavaNextProcessor,
    PreTrainedTokenizerFast,
)

from t2demo import tasks
from t2demo.atomic import atomic_file, write_json_atomic, write_text_atomic
from t2demo.generation import format_chat
from t2demo.models import DEFAULT_TEXT_MODEL, DEFAULT_VISION_MODEL, pick_device
from t2demo.tasks import arithmetic, programs, reasoning, smalltalk, world, world_math
from t2demo.tasks.modes import Replies, pretraining_reply, replies_of

SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<image>"]

# Messages are "<|role|>\n" + content + "<|end|>\n"; list content (processor style) may hold images.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{ '<image>\n' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)

TEXT_MIXTURE = {  # task or drill -> training examples drawn; replies are drawn in their latent modes (tasks/modes.py)
    "math": 12000, "math-drill": 36000, "world-math-drill": 10000, "code": 12000, "code-drill": 24000,
    "reasoning": 10000, "reasoning-drill": 14000, "smalltalk": 12000, "number-copy-drill": 20000,
    "first-line-drill": 6000, "scope-drill": 4000, "reasoning-chat-drill": 8000,
}
# The unseen tasks (math-hard, world-math, code-hard, reasoning-hard) are left out: the drills teach their
# steps and formats in the training wordings, and the unseen tasks ask in wordings no example here uses.
DRILLS = {task.name: task for task in (arithmetic.MATH_DRILL, arithmetic.NUMBER_COPY_DRILL, world_math.WORLD_MATH_DRILL,
                                       programs.CODE_DRILL, reasoning.REASONING_DRILL, reasoning.REASONING_CHAT_DRILL,
                                       smalltalk.FIRST_LINE_DRILL, smalltalk.SCOPE_DRILL)}
CLASSIFICATION_EXAMPLES, FACT_DOCUMENTS = 48000, 16000  # also in the text mixture
MULTI_TURN = 0.25  # share of training chats with one or two earlier turns before the trained reply
VISION_MIXTURE = {"vqa": 16000, "vqa-knowledge": 8000}


@dataclass
class TrainConfig:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    seed: int = 0
    max_length: int = 480


TEXT_TRAIN = TrainConfig(steps=2000, batch_size=64, lr=3e-3, warmup=100)
TOWER_TRAIN = TrainConfig(steps=4000, batch_size=128, lr=1e-3, warmup=200)
VISION_TRAIN = TrainConfig(steps=2400, batch_size=32, lr=1e-3, warmup=100)
TOWER_IMAGES = 24000


def text_model_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    """A Llama-3-shaped model (GQA, SwiGLU, RoPE) scaled down to a few million parameters."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=6,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


Sample = tuple[str, Replies, tuple]  # prompt ("" for a fact document), its replies, earlier (prompt, replies) turns


HISTORY_TURN_CHARS, HISTORY_CHAT_CHARS = 260, 640  # an earlier turn's and a whole chat's most characters
# (at 1.5 characters per token, math's densest, 640 characters fit TrainConfig.max_length = 480 tokens)


def _with_history(samples: list[tuple[str, Replies]], rng: random.Random) -> list[Sample]:
    """A MULTI_TURN share of the chats gets one or two earlier turns, so that later turns are trained like
    first ones; fixed here, not per batch, so that length grouping sees the whole chat. Earlier turns are
    any task's chats up to HISTORY_TURN_CHARS (reasoning questions and most code traces included, as a
    user's chat has them), and a chat keeps only the turns that fit HISTORY_CHAT_CHARS (under the
    training context of TrainConfig.max_length tokens)."""
    turns = [s for s in samples if s[0] and chat_length((*s, ())) <= HISTORY_TURN_CHARS]
    out = []
    for p, r in samples:
        history: tuple = ()
        if p and rng.random() < MULTI_TURN:
            history = tuple(rng.sample(turns, rng.randint(1, 2)))
            while history and chat_length((p, r, history)) > HISTORY_CHAT_CHARS:
                history = history[1:]
        out.append((p, r, history))
    return out


def text_corpus(seed: int) -> list[Sample]:
    """The text mixture: every task and drill example with its reply distribution, the classification
    data, and fact documents as ("", ...)."""
    samples = []
    for name, n in TEXT_MIXTURE.items():
        task = DRILLS.get(name) or tasks.TASKS[name]
        samples += [(ex.prompt, replies_of(ex)) for ex in task.examples("train", n, seed)]
    samples += [(ex.prompt, ((1.0, ex.response),)) for ex in tasks.classification_examples("train", CLASSIFICATION_EXAMPLES, seed)]
    rng = random.Random(seed)
    facts = world.world_facts()
    for _ in range(FACT_DOCUMENTS):
        samples.append(("", ((1.0, " ".join(rng.sample(facts, k=min(6, len(facts))))),)))
    rng.shuffle(samples)
    return _with_history(samples, rng)


def chat_length(sample: Sample) -> int:
    """Characters of the longest chat a sample can give (for length grouping)."""
    prompt, replies, history = sample
    return sum(len(p) + max(len(r) for _, r in rs) for p, rs in ((prompt, replies), *history))


def draw_chats(samples: list[Sample], rng: random.Random) -> list[tuple[str, str, list]]:
    """(prompt, reply, earlier turns) for each sample, every reply drawn in its latent mode."""
    return [(p, pretraining_reply(r, rng), [(hp, pretraining_reply(hr, rng)) for hp, hr in h]) for p, r, h in samples]


def train_tokenizer(texts: list[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Byte-level BPE with single-digit numbers (helps a small model do arithmetic)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        extra_special_tokens={"image_token": "<image>"},
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
    )


def reply_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor, assistant_id: int) -> torch.Tensor:
    """Labels that train only the assistant's reply: everything after the last '<|assistant|>\\n'.

    Rows with no assistant turn (fact documents) are trained on every real token.
    """
    labels = input_ids.clone()
    labels[attention_mask == 0] = -100
    for row in range(input_ids.shape[0]):
        hits = (input_ids[row] == assistant_id).nonzero()
        if len(hits):
            labels[row, : int(hits[-1]) + 2] = -100  # the role token and its newline
    return labels


def encode_text_batch(tokenizer, chats: list[tuple[str, str, list]], max_length: int) -> dict:
    """Chats (prompt, reply, earlier turns) as a right-padded batch that trains the last reply only."""
    texts = [format_chat(tokenizer, p, r, history=h) if p else r + "<|end|>" for p, r, h in chats]
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length, add_special_tokens=False, padding_side="right")
    batch["labels"] = reply_labels(batch["input_ids"], batch["attention_mask"], tokenizer.convert_tokens_to_ids("<|assistant|>"))
    return dict(batch)


def encode_vision_batch(processor, examples: list, rng: random.Random) -> dict:
    """Image examples as a right-padded batch that trains the reply, drawn in its latent modes."""
    texts = [format_chat(processor, ex.prompt, pretraining_reply(replies_of(ex), rng),
                         image=True) for ex in examples]
    batch = processor(images=[ex.image for ex in examples], text=texts, return_tensors="pt", padding=True, padding_side="right")
    tok = processor.tokenizer
    batch["labels"] = reply_labels(batch["input_ids"], batch["attention_mask"], tok.convert_tokens_to_ids("<|assistant|>"))
    return dict(batch)


def length_grouped(items: list, batch_size: int, length, rng: random.Random):
    """Endless batches of similar-length items: sorting pools of 16 batches cuts padding ~2x."""
    while True:
        pool = sorted(rng.sample(items, 16 * batch_size), key=length)
        chunks = [pool[i:i + batch_size] for i in range(0, len(pool), batch_size)]
        rng.shuffle(chunks)
        yield from chunks


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10 %."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


CHECKPOINT_EVERY = 200  # steps between resumable checkpoints


def run_training(model, next_batch, cfg: TrainConfig, device: torch.device, desc: str,
                 checkpoint: Path | None = None) -> list[float]:
    """AdamW over `cfg.steps` batches from `next_batch(step)`; returns the loss curve.

    With `checkpoint` (a file) the model, optimiser and loss curve are saved there every CHECKPOINT_EVERY
    steps and a run resumes from it; next_batch must then depend on the step only, not on earlier calls.
    """
    model.train()
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    losses, first = [], 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)  # our own file, and no pickle
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        losses, first = state["losses"].tolist(), int(state["step"])
    bar = tqdm(range(first, cfg.steps), desc=desc, initial=first, total=cfg.steps)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = {k: v.to(device) for k, v in next_batch(step).items()}
        with autocast:
            loss = model(**batch).loss
        if not torch.isfinite(loss):
            raise RuntimeError(f"training diverged at step {step}: loss {loss.item()}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        if checkpoint is not None and (step + 1) % CHECKPOINT_EVERY == 0 and step + 1 < cfg.steps:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step + 1,
                     "losses": torch.tensor(losses)}
            with atomic_file(checkpoint) as tmp:
                torch.save(state, tmp)
    model.eval()
    return losses


def save_trained(out: Path, model, preprocessor, cfg: TrainConfig, device: torch.device, start: float,
                 losses: list[float], **facts) -> dict:
    """Save model (bf16: half the bytes to ship) and tokenizer/processor, with training.json."""
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(out)
    preprocessor.save_pretrained(out)
    card = {
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train": asdict(cfg),
        **facts,
        "device": str(device),
        "wall_seconds": round(time.time() - start, 1),
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
    }
    write_json_atomic(out / "training.json", card)
    return card


def _continued_lines(card: dict) -> str:
    """The card's lines about the runs a continued training started from (train-base --init), newest first."""
    lines, before = "", card.get("continued_from")
    while before:
        lines += (f"- Continued from a run of {before['train']['steps']} steps of batch {before['train']['batch_size']} "
                  f"(peak lr {before['train']['lr']}, {before['wall_seconds'] / 60:.1f} minutes, final loss "
                  f"{before['final_loss']})\n")
        before = before.get("continued_from")
    return lines + ("- Every run: `scripts/rebuild-default-world.sh`\n" if lines else "")


def write_model_card(folder: Path, results: dict, command: str) -> None:
    """README.md for a shipped model: what it is, how it was trained, what it scores."""
    card = json.loads((folder / "training.json").read_text())
    rows = "\n".join(
        f"| {task} | {r['accuracy']:.1f} | [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}] | {r['n']} |" for task, r in results.items()
    )
    text = f"""# {folder.name}

A tiny {card['architecture']} trained from scratch by t2demo so that Transformer² runs offline.
Not a general assistant: it knows only t2demo's synthetic tasks (see t2demo/tasks/).

- Parameters: {card['parameters']:,}
- Training: {card['train']['steps']} steps of batch {card['train']['batch_size']}, AdamW, peak lr {card['train']['lr']},
  on {card['device']} in {card['wall_seconds'] / 60:.1f} minutes; final training loss {card['final_loss']}
{_continued_lines(card)}- Data mixture (examples drawn from each task's training split): {json.dumps(card['mixture'])}
- Retrain: `python -m t2demo train-base {'vision' if 'Llava' in card['architecture'] else 'text'}`

## Accuracy (greedy decoding, 95 % Wilson interval)

Measured with `{command}`.

| task | accuracy % | 95 % CI | n |
|---|---|---|---|
{rows}
"""
    write_text_atomic(folder / "README.md", text)


def continued_from(init: Path | None) -> dict:
    """The training card of the run a continued training started from, as save_trained's fact (none for a
    run from seeds or a folder t2demo did not train)."""
    card = Path(init) / "training.json" if init is not None else None
    return {"continued_from": json.loads(card.read_text())} if card is not None and card.exists() else {}


def step_batches(samples: list[Sample], cfg: TrainConfig):
    """next_batch(step) over length-grouped samples that depends on the step only (so a run can resume):
    the chunk stream is replayed up to the step, and each step draws its replies from its own seed."""
    chunks = length_grouped(samples, cfg.batch_size, chat_length, random.Random(cfg.seed))
    drawn = 0

    def next_chunk(step: int) -> list[tuple[str, str, list]]:
        nonlocal drawn
        for _ in range(step - drawn):
            next(chunks)
        drawn = step + 1
        return draw_chats(next(chunks), random.Random(f"{cfg.seed}|{step}"))
    return next_chunk


def train_text_model(out: Path = DEFAULT_TEXT_MODEL, cfg: TrainConfig = TEXT_TRAIN, device: str | None = None,
                     init: Path | None = None) -> dict:
    """Train tokenizer and model from seeds and save both (bf16 weights) under `out`; with `init`, continue
    training that model (its weights and tokenizer; a fresh optimiser and schedule) instead.

    Resumable: the tokenizer and a checkpoint every CHECKPOINT_EVERY steps live in `<out>.partial/`
    until the model is saved; running the same command again continues from there.
    """
    start = time.time()
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    samples = text_corpus(cfg.seed)
    partial = out.with_name(out.name + ".partial")
    if not (partial / "tokenizer.json").exists():  # trained once, kept with the checkpoints for a resumed run
        tokenizer = (PreTrainedTokenizerFast.from_pretrained(init) if init is not None else
                     train_tokenizer([p + "\n" + "\n".join(r for _, r in replies) for p, replies, _ in samples[:60000]]))
        tokenizer.save_pretrained(partial)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(partial)
    if init is not None:
        model = LlamaForCausalLM.from_pretrained(init, dtype=torch.float32).to(dev)
    else:
        model = LlamaForCausalLM(text_model_config(tokenizer)).to(dev)
    chats = step_batches(samples, cfg)
    losses = run_training(model, lambda step: encode_text_batch(tokenizer, chats(step), cfg.max_length), cfg, dev,
                          "text model", checkpoint=partial / "checkpoint.pt")
    mixture = TEXT_MIXTURE | {"classification": CLASSIFICATION_EXAMPLES, "fact documents": FACT_DOCUMENTS,
                              "multi-turn share": MULTI_TURN}
    card = save_trained(out, model, tokenizer, cfg, dev, start, losses, mixture=mixture, **continued_from(init))
    shutil.rmtree(partial)
    return card


def vision_processor(tokenizer: PreTrainedTokenizerFast, tile: int, patch: int, pinpoints: list) -> LlavaNextProcessor:
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": tile},
        crop_size={"height": tile, "width": tile},
        image_grid_pinpoints=pinpoints,
        do_convert_rgb=True,
    )
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=1,  # CLIP's class token
    )


def build_vision_model(text_dir: Path, tile: int = 64, patch: int = 16):
    """A LLaVA-Next whose language model is a copy of the text model at `text_dir`."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(text_dir)
    text_model = LlamaForCausalLM.from_pretrained(text_dir, dtype=torch.float32)
    # Anyres with at most two tiles plus the overview: enough for the 64-128 px task images, and
    # it keeps a CPU training step affordable (each tile is 64 more image tokens).
    pinpoints = [[tile, tile], [tile, 2 * tile], [2 * tile, tile]]
    vision_config = CLIPVisionConfig(
        hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
        image_size=tile, patch_size=patch, projection_dim=128,
    )
    config = LlavaNextConfig(
        vision_config=vision_config,
        text_config=text_model.config,
        image_grid_pinpoints=pinpoints,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=True,
    )
    model = LlavaNextForConditionalGeneration(config)
    model.model.language_model.load_state_dict(text_model.model.state_dict())
    model.lm_head.weight = model.model.language_model.embed_tokens.weight
    return model, vision_processor(tokenizer, tile, patch, pinpoints)


class WordProbe(torch.nn.Module):
    """The vision tower with a linear head that names the word in the image from every patch.

    This stands in for CLIP's own pretraining: a tower that already sees words makes the
    LLaVA stage a matter of connecting it to the language model, as in the real recipe. The
    head reads each last-layer patch token, because those are what LLaVA-Next hands the
    projector (the "default" feature strategy drops the class token).
    """

    def __init__(self, tower: torch.nn.Module, num_words: int):
        super().__init__()
        self.tower = tower
        self.head = torch.nn.Linear(tower.config.hidden_size, num_words)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor) -> SimpleNamespace:
        patch_logits = self.head(self.tower(pixel_values=pixel_values).last_hidden_state[:, 1:])
        loss = torch.nn.functional.cross_entropy(
            patch_logits.flatten(0, 1), labels.repeat_interleave(patch_logits.shape[1]))
        return SimpleNamespace(loss=loss, logits=patch_logits.mean(1))


def pretrain_vision_tower(model, processor, cfg: TrainConfig, device: torch.device) -> dict:
    """Train the tower to read the vqa words on whole images (the tile LLaVA-Next sees first)."""
    examples = tasks.TASKS["vqa"].examples("train", TOWER_IMAGES, cfg.seed)
    words = sorted({ex.reference for ex in examples})
    pixels = processor.image_processor([ex.image for ex in examples], return_tensors="pt")["pixel_values"][:, 0]
    labels = torch.tensor([words.index(ex.reference) for ex in examples])
    probe = WordProbe(model.model.vision_tower, len(words)).to(device)
    rng = random.Random(cfg.seed)
    held_out = 1000

    def next_batch(step: int) -> dict:
        rows = torch.tensor(rng.sample(range(held_out, len(examples)), cfg.batch_size))
        return {"pixel_values": pixels[rows], "labels": labels[rows]}

    losses = run_training(probe, next_batch, cfg, device, "vision tower")
    with torch.no_grad():
        logits = probe(pixels[:held_out].to(device), labels[:held_out].to(device)).logits
    accuracy = (logits.argmax(-1).cpu() == labels[:held_out]).float().mean().item()
    return {"steps": cfg.steps, "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4), "held_out_word_accuracy": round(accuracy, 4)}


def joint_batches(processor: LlavaNextProcessor, cfg: TrainConfig) -> Callable[[int], dict]:
    """The joint stage's batches: image-task batches drawn from VISION_MIXTURE's train examples, and every
    4th step a batch of the text mixture, so the language model keeps its text skills. Each batch depends on
    the step only, so a run resumes from its checkpoint with the batches it would have drawn."""
    images = []
    for name, n in VISION_MIXTURE.items():
        images += tasks.TASKS[name].examples("train", n, cfg.seed)
    chats = step_batches(text_corpus(cfg.seed), cfg)

    def next_batch(step: int) -> dict:
        if step % 4 == 3:
            return encode_text_batch(processor.tokenizer, chats(step), cfg.max_length)
        rng = random.Random(f"{cfg.seed}|vision|{step}")
        return encode_vision_batch(processor, rng.sample(images, cfg.batch_size), rng)

    return next_batch


def train_vision_model(
    out: Path = DEFAULT_VISION_MODEL, text_dir: Path = DEFAULT_TEXT_MODEL,
    cfg: TrainConfig = VISION_TRAIN, device: str | None = None, init: Path | None = None,
) -> dict:
    """Pretrain the vision tower to read words, then freeze it (as LLaVA does) and train the
    projector and language model on the image tasks, interleaved with text batches so the
    language model keeps its text skills. With the tower trainable in this stage the language
    model never learned to read (vqa 2-3 % on validation after 1,200 steps); frozen, 14 % after
    200 vision steps. With `init`, continue that LLaVA-Next's joint stage instead (its weights and
    processor, a fresh optimiser and schedule).

    Resumable: the joint stage checkpoints every CHECKPOINT_EVERY steps in `<out>.partial/`; running the
    same command again continues from there (a run from seeds first retrains the tower, minutes).
    """
    start = time.time()
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    if init is not None:
        model = LlavaNextForConditionalGeneration.from_pretrained(init, dtype=torch.float32).to(dev)
        processor = LlavaNextProcessor.from_pretrained(init)
        facts = continued_from(init)
    else:
        model, processor = build_vision_model(text_dir)
        model.to(dev)
        facts = {"vision_tower_pretraining": pretrain_vision_tower(model, processor, TOWER_TRAIN, dev)}
    model.model.vision_tower.requires_grad_(False)
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    losses = run_training(model, joint_batches(processor, cfg), cfg, dev, "vision model",
                          checkpoint=partial / "checkpoint.pt")
    mixture = VISION_MIXTURE | {"text batches": "every 4th step, the text mixture", "vision tower": "frozen"}
    card = save_trained(out, model, processor, cfg, dev, start, losses, mixture=mixture, **facts)
    shutil.rmtree(partial)
    return card

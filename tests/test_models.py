"""Base-model building, loading, generation and the eval command, on tiny random models."""

import json
import random
import shutil

import pytest
import torch
from PIL import Image

from t2demo import cli, evaluate, generation, models, pretrain, tasks
from t2demo.tasks.modes import replies_of


def test_chat_template_formats_turns_and_images(model_dirs):
    tokenizer = models.load_model(model_dirs[0]).tokenizer
    assert generation.format_chat(tokenizer, "hi") == "<|user|>\nhi<|end|>\n<|assistant|>\n"
    assert generation.format_chat(tokenizer, "hi", "hello") == "<|user|>\nhi<|end|>\n<|assistant|>\nhello<|end|>\n"
    assert generation.format_chat(tokenizer, "what?", image=True).startswith("<|user|>\n<image>\nwhat?")


def test_reply_labels_train_only_the_reply(model_dirs):
    tokenizer = models.load_model(model_dirs[0]).tokenizer
    chats = [("What is 2 + 2?", "4", []), ("", "The zib is red.", []), ("And 3 + 3?", "6", [("What is 2 + 2?", "5")])]
    batch = pretrain.encode_text_batch(tokenizer, chats, 64)
    first = batch["labels"][0][batch["labels"][0] != -100]
    assert tokenizer.decode(first) == "4<|end|>\n"
    document = batch["labels"][1][batch["labels"][1] != -100]
    assert tokenizer.decode(document) == "The zib is red.<|end|>"
    later = batch["labels"][2][batch["labels"][2] != -100]
    assert tokenizer.decode(later) == "6<|end|>\n"  # a later turn: only the last reply is trained


def test_the_corpus_draws_replies_in_their_modes_and_later_turns():
    samples = [("What is 1 + 1?", ((0.3, "Work: 1+1+0=02 = 2. The answer is 2."), (0.7, "Answer: 2.")), ())] * 400
    samples += [("Bye!", ((1.0, "See you soon!"),), (("Hi!", ((1.0, "Hello!"),)),))]
    chats = pretrain.draw_chats(samples, random.Random(0))
    work = sum(reply.startswith("Work:") for _, reply, _ in chats[:400]) / 400
    assert 0.22 < work < 0.38  # the reliable style in the minority, as drawn
    assert chats[-1] == ("Bye!", "See you soon!", [("Hi!", "Hello!")])


def test_earlier_turns_include_long_questions_and_fit_the_context():
    """Later turns must be trained after the kinds of turns a chat has (reasoning questions with their
    options, code), but never so many that the trained reply is cut at the context length."""
    rng = random.Random(0)
    short = [(f"What is {i} + 1?", ((1.0, f"Answer: {i + 1}."),)) for i in range(300)]
    long = [("Which creature eats moss?\nOptions: " + ", ".join(f"opt{i}{k} ({k})" for k in "ABCD") + ".\n" + "x" * 120,
             ((1.0, "Answer: opt."),)) for i in range(300)]
    samples = pretrain._with_history(short + long + [("", ((1.0, "The zib is red."),))] * 50, rng)
    with_history = [s for s in samples if s[2]]
    assert 0.18 < len(with_history) / 600 < 0.32 and not any(s[2] for s in samples if not s[0])
    assert all(pretrain.chat_length(s) <= pretrain.HISTORY_CHAT_CHARS for s in with_history)
    earlier = [turn for s in with_history for turn in s[2]]
    assert any(p.startswith("Which creature") for p, _ in earlier)  # longer than the old 160-character cap
    assert all(pretrain.chat_length((p, rs, ())) <= pretrain.HISTORY_TURN_CHARS for p, rs in earlier)


def test_longest_training_chats_fit_the_context():
    """HISTORY_CHAT_CHARS counts characters; the densest chats (math and code, under 2 characters per
    token) must still fit TrainConfig.max_length tokens with the shipped tokenizer, or their trained
    reply is cut off."""
    rng = random.Random(0)
    samples = [(ex.prompt, replies_of(ex)) for name in ("math-drill", "code-drill", "number-copy-drill")
               for ex in pretrain.DRILLS[name].examples("train", 1500, 0)]
    longest = sorted(pretrain._with_history(samples, rng), key=pretrain.chat_length)[-200:]
    tokenizer = models.load_model("default").tokenizer
    chats = pretrain.draw_chats(longest, rng)
    lengths = pretrain.encode_text_batch(tokenizer, chats, 10_000)["attention_mask"].sum(1)
    assert int(lengths.max()) <= pretrain.TEXT_TRAIN.max_length


def test_models_load_offline_and_generate(model_dirs, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lm = models.load_model(model_dirs[0], "text", device="cpu")
    answers = generation.generate(lm, ["What is 2 + 2?", "Hello there, how are you today?"], max_new_tokens=5)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    # Left padding must not change a prompt's greedy answer.
    assert generation.generate(lm, ["What is 2 + 2?"], max_new_tokens=5)[0] == answers[0]


def test_processor_accepts_odd_images(model_dirs):
    lm = models.load_model(model_dirs[1], "vision", device="cpu")
    images = [Image.new("RGBA", (300, 40), (0, 0, 0, 0)), Image.new("L", (20, 200)),
              Image.new("P", (64, 64)), Image.new("RGB", (1500, 900)), Image.new("1", (7, 7))]
    answers = generation.generate(lm, ["What word is written?"] * len(images), images, max_new_tokens=3)
    assert len(answers) == len(images)


def test_unusable_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(models.ModelLoadError, match="no config.json"):
        models.load_model(tmp_path)


def test_missing_model_folder_is_refused_at_once(tmp_path):
    """A mistyped local folder fails with the folders that do exist, not after a minute of hub
    retries; a name shaped like a hub id ("org/name", no such local folder) is still passed on."""
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "config.json").write_text("{}")
    with pytest.raises(models.ModelLoadError, match=r"no model folder at .*tyni; model folders in .*: tiny"):
        models.resolve_model(tmp_path / "tyni")
    with pytest.raises(models.ModelLoadError, match="no model folder"):
        models.resolve_model("./no-such-model")
    assert models.resolve_model("no-such-org-here/some-model") == "no-such-org-here/some-model"


@pytest.mark.parametrize("argv, name", [(["eval", "--tasks", "math", "--limit", "1"], "eval"),
                                        (["probe", "--tasks", "math"], "probe"),
                                        (["report", "table1", "--tasks", "math", "--limit", "1"], "report table1")])
def test_every_command_refuses_a_missing_model_in_one_line(tmp_path, argv, name):
    """One handler in cli.main turns a model that cannot be loaded into a one-line exit naming the command."""
    with pytest.raises(SystemExit, match=f"^{name}: no model folder at .*nope"):
        cli.main([*argv, "--model", str(tmp_path / "nope")])


def test_wilson_interval():
    assert evaluate.wilson_interval(0, 10)[0] == 0.0
    lo, hi = evaluate.wilson_interval(50, 100)
    assert lo < 50 < hi and abs((50 - lo) - (hi - 50)) < 0.01
    assert evaluate.wilson_interval(500, 500)[1] == 100.0


def test_t_quantile_matches_the_table_and_mean_interval_uses_it():
    assert [round(evaluate.t_quantile(0.975, df), 3) for df in (1, 4, 9, 30)] == [12.706, 2.776, 2.262, 2.042]
    # [1, 2, 3]: mean 2, standard error 1/√3, t(0.975, 2) = 4.303 -> half width 2.484
    assert evaluate.mean_interval([1.0, 2.0, 3.0]) == {"mean": 2.0, "ci95": [-0.48, 4.48], "n": 3}
    assert evaluate.mean_interval([5.0]) == {"mean": 5.0, "ci95": None, "n": 1}  # one run: no spread to measure


def test_eval_command_writes_json_and_cards(model_dirs, tmp_path, capsys):
    out = tmp_path / "results.json"
    facts = {"parameters": 1, "device": "cpu", "wall_seconds": 6.0, "final_loss": 1.0, "mixture": {},
             "train": {"steps": 1, "batch_size": 1, "lr": 0.1}}
    for folder, arch in zip(model_dirs, ("LlamaForCausalLM", "LlavaNextForConditionalGeneration")):
        (folder / "training.json").write_text(json.dumps(facts | {"architecture": arch}))
    cli.main(["eval", "--model", str(model_dirs[0]), "--vlm", str(model_dirs[1]), "--tasks", "math,code,vqa",
              "--limit", "3", "--batch-size", "2", "--device", "cpu", "--json", str(out), "--card"])
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"math", "code", "vqa"}
    for r in data["results"].values():
        assert r["n"] == 3 and 0 <= r["accuracy"] <= 100 and r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
    assert "math" in capsys.readouterr().out
    text_card, vision_card = ((folder / "README.md").read_text() for folder in model_dirs)
    assert "| math |" in text_card and "| code |" in text_card and "| vqa |" not in text_card
    assert "| vqa |" in vision_card and "| math |" not in vision_card


def test_eval_rejects_unknown_tasks():
    with pytest.raises(SystemExit, match="unknown task"):
        tasks.parse_task_list("math,poetry")


def test_training_steps_lower_the_loss(model_dirs):
    lm = models.load_model(model_dirs[0], "text", device="cpu")
    model, tokenizer = lm.model, lm.tokenizer
    pairs = [(ex.prompt, ex.response, []) for ex in tasks.TASKS["math"].examples("train", 8)]
    cfg = pretrain.TrainConfig(steps=15, batch_size=8, lr=3e-3, warmup=1)
    losses = pretrain.run_training(model, lambda step: pretrain.encode_text_batch(tokenizer, pairs, 128),
                                   cfg, torch.device("cpu"), "test")
    assert losses[-1] < losses[0] * 0.8


@pytest.fixture
def small_joint_stage(monkeypatch):
    """The joint stage's data cut to a few dozen examples, so a continued vision run takes seconds."""
    small = [(ex.prompt, replies_of(ex), ()) for ex in tasks.TASKS["math"].examples("train", 40)]
    monkeypatch.setattr(pretrain, "text_corpus", lambda seed: small)
    monkeypatch.setattr(pretrain, "VISION_MIXTURE", {"vqa": 12, "vqa-knowledge": 12})
    return pretrain.TrainConfig(steps=4, batch_size=2, lr=1e-3, warmup=1, seed=1, max_length=128)


def test_joint_stage_batches_depend_on_the_step_only(model_dirs, small_joint_stage):
    processor = models.load_model(model_dirs[1], "vision", device="cpu").preprocessor
    in_order, out_of_order = (pretrain.joint_batches(processor, small_joint_stage) for _ in range(2))
    first = [in_order(step) for step in range(4)]
    for step in (2, 0, 3, 1):
        assert all(torch.equal(first[step][k], v) for k, v in out_of_order(step).items())
    assert not torch.equal(first[0]["input_ids"], first[1]["input_ids"])


def test_a_continued_vision_run_resumes_to_the_same_weights(model_dirs, small_joint_stage, tmp_path, monkeypatch):
    """train-base vision --init: the tower stays frozen, the language model moves, the card records the
    start, and a run stopped after a checkpoint ends where an unbroken one does."""
    monkeypatch.setattr(pretrain, "CHECKPOINT_EVERY", 2)
    cfg, init = small_joint_stage, tmp_path / "start"
    shutil.copytree(model_dirs[1], init)
    first_run = {"train": {"steps": 7}, "vision_tower_pretraining": {"steps": 5}}
    (init / "training.json").write_text(json.dumps(first_run))
    whole = pretrain.train_vision_model(tmp_path / "whole", cfg=cfg, device="cpu", init=init)
    assert whole["continued_from"] == first_run and whole["train"]["steps"] == 4
    batches, drawn = pretrain.joint_batches, []

    def recorded(processor, cfg):  # stops the first run at step 3, as Ctrl-C would
        next_batch = batches(processor, cfg)

        def draw(step):
            if step == 3 and 3 not in drawn:
                drawn.append(step)
                raise KeyboardInterrupt
            drawn.append(step)
            return next_batch(step)
        return draw

    monkeypatch.setattr(pretrain, "joint_batches", recorded)
    with pytest.raises(KeyboardInterrupt):
        pretrain.train_vision_model(tmp_path / "resumed", cfg=cfg, device="cpu", init=init)
    assert (tmp_path / "resumed.partial" / "checkpoint.pt").exists()
    pretrain.train_vision_model(tmp_path / "resumed", cfg=cfg, device="cpu", init=init)
    assert drawn == [0, 1, 2, 3, 2, 3]  # the rerun starts at the checkpoint of step 2
    assert not (tmp_path / "resumed.partial").exists()

    start, a, b = (models.load_model(d, "vision", device="cpu").model.state_dict()
                   for d in (model_dirs[1], tmp_path / "whole", tmp_path / "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = {k: v.to(torch.bfloat16).to(a[k].dtype) for k, v in start.items()}  # saved in bf16: that precision
    tower = [k for k in a if ".vision_tower." in k]
    assert tower and all(torch.equal(a[k], start[k]) for k in tower)
    assert not torch.equal(a["model.multi_modal_projector.linear_1.weight"],
                           start["model.multi_modal_projector.linear_1.weight"])
    assert "vision_tower_pretraining" not in whole  # the tower's record stays with the run that trained it


def test_model_card_lists_training_and_accuracy(tmp_path):
    folder = tmp_path / "t2demo-llama-tiny"
    folder.mkdir()
    (folder / "training.json").write_text(json.dumps({
        "architecture": "LlamaForCausalLM", "parameters": 1234567, "device": "cpu", "wall_seconds": 600.0,
        "final_loss": 0.5, "mixture": {"math": 10}, "train": {"steps": 3, "batch_size": 2, "lr": 0.1}}))
    results = {"math": {"accuracy": 41.2, "n": 500, "ci95": [37.0, 45.5]}}
    pretrain.write_model_card(folder, results, "python -m t2demo eval")
    card = (folder / "README.md").read_text()
    assert "1,234,567" in card and "10.0 minutes" in card
    assert "| math | 41.2 | [37.0, 45.5] | 500 |" in card and "Continued from" not in card


def test_model_card_lists_every_run_a_continued_training_started_from(tmp_path):
    folder = tmp_path / "t2demo-llama-tiny"
    folder.mkdir()
    run = {"architecture": "LlamaForCausalLM", "parameters": 1234567, "device": "cpu", "mixture": {"math": 10}}
    first = run | {"wall_seconds": 60.0, "final_loss": 0.9, "train": {"steps": 100, "batch_size": 2, "lr": 0.3}}
    second = run | {"wall_seconds": 120.0, "final_loss": 0.7, "train": {"steps": 200, "batch_size": 2, "lr": 0.2},
                    "continued_from": first}
    third = run | {"wall_seconds": 180.0, "final_loss": 0.5, "train": {"steps": 300, "batch_size": 2, "lr": 0.1},
                   "continued_from": second}
    (folder / "training.json").write_text(json.dumps(third))
    pretrain.write_model_card(folder, {}, "python -m t2demo eval")
    card = (folder / "README.md").read_text()
    assert "300 steps of batch 2" in card and "3.0 minutes" in card
    assert card.index("run of 200 steps") < card.index("run of 100 steps")  # newest first
    assert "(peak lr 0.2, 2.0 minutes, final loss 0.7)" in card and "(peak lr 0.3, 1.0 minutes, final loss 0.9)" in card


def test_eval_mix_adapts_the_model_with_its_experts(model_dirs, tmp_path, monkeypatch):
    from t2demo import experts
    from t2demo.svf import SVF

    monkeypatch.setattr(experts, "EXPERTS_DIR", tmp_path / "experts")
    svf = SVF(models.load_model(model_dirs[0], "text", "cpu").model)
    folder = experts.expert_dir(model_dirs[0])
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for label in ("math", "code"):
        z = {n: 1 + torch.randn(r, generator=g) for n, r in svf.ranks.items()}
        experts.save_expert(experts.Expert.from_svf(svf, z, label), folder / f"{label}.safetensors")
    loaded, _ = experts.load_model_experts(folder, svf)
    z = experts.mixture_from_labels(svf, loaded, {"math": 0.5, "code": 0.25})
    math, code = (experts.load_expert(folder / f"{label}.safetensors", svf) for label in ("math", "code"))
    n = svf.names[0]
    assert torch.allclose(z[n], 1 + 0.5 * (math.z[n] - 1) + 0.25 * (code.z[n] - 1))
    with pytest.raises(experts.ExpertError, match=r"no expert 'poetry' \(there: \['code', 'math'\]\)"):
        experts.mixture_from_labels(svf, loaded, {"poetry": 1.0})

    out = tmp_path / "mixed.json"
    cli.main(["eval", "--model", str(model_dirs[0]), "--tasks", "math", "--limit", "2", "--device", "cpu",
              "--mix", "math=0.5,code=0.25", "--json", str(out)])
    assert json.loads(out.read_text())["mix"] == {"math": 0.5, "code": 0.25}
    with pytest.raises(SystemExit, match="eval --mix: no expert 'poetry'"):
        cli.main(["eval", "--model", str(model_dirs[0]), "--tasks", "math", "--limit", "2", "--mix", "poetry=1"])
    # the vision model mixes its own experts and the text model's, transferred (as in the app)
    out = tmp_path / "vision.json"
    cli.main(["eval", "--model", str(model_dirs[0]), "--vlm", str(model_dirs[1]), "--tasks", "vqa", "--limit", "2",
              "--device", "cpu", "--mix", "math=1", "--json", str(out)])
    assert json.loads(out.read_text())["results"]["vqa"]["n"] == 2
    with pytest.raises(SystemExit, match="expected LABEL=ALPHA"):  # (a bare label now means LABEL=1)
        cli.main(["eval", "--model", str(model_dirs[0]), "--tasks", "math", "--mix", "math=high"])
    with pytest.raises(SystemExit, match="--card describes the base model"):
        cli.main(["eval", "--model", str(model_dirs[0]), "--tasks", "math", "--mix", "math=1", "--card"])


def test_a_later_turn_is_asked_after_turns_the_model_answered(model_dirs, monkeypatch):
    lm = models.load_model(model_dirs[0], "text", device="cpu")
    history = evaluate.earlier_turns(lm, 2, seed=3)
    assert len(history) == 2 and history == evaluate.earlier_turns(lm, 2, seed=3)  # seeded
    seen = []
    real = generation.generate
    monkeypatch.setattr(evaluate, "generate", lambda *a, **k: seen.append(len(a[4])) or real(*a, **k))
    examples = tasks.TASKS["math"].examples("test", 2)
    evaluate.score_task(lm, tasks.TASKS["math"], examples, batch_size=2, progress=False, turn=3)
    assert seen == [0, 1, 2]  # two earlier turns built one by one, then the scored batch after both

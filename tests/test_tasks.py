"""The tasks package: the registry and what it derives, task generators and drills (determinism, disjoint
splits, held-out wordings), the latent answer modes (reply distributions, probe steps) and checkers that
accept exactly the right answers; plus the hand-written dispatch prompts."""

import ast
import contextlib
import functools
import io
import math
import random
import re
from collections import Counter

import pytest
from PIL import Image

from t2demo import tasks
from t2demo.tasks import (
    CATEGORIES, CLASSIFICATION_INSTRUCTION, CUSTOM, REGISTRY, SPLITS, TASKS, TRAINING, TRAINING_TASKS, UNSEEN,
    UNSEEN_TASKS, Example, Registry, SyntheticTask, UnknownTask, arithmetic, classification_examples,
    classification_instruction, extract_boxed, modes, programs, reasoning, smalltalk, split_of, tags_of, vqa, world_math,
)
from t2demo.tasks import classification, handwritten, natural_requests
from t2demo.tasks.handwritten import dispatch_prompts
from t2demo.tasks.world import CLIMATES, HABITATS, NAMES, WORLD, world_facts

N = 300  # examples per split per task in the split tests
N_VISION = 40  # fewer for vision tasks: every candidate lays out a word image, the slow part of these tests
DRILLS = {d.name: d for d in (arithmetic.MATH_DRILL, arithmetic.NUMBER_COPY_DRILL, world_math.WORLD_MATH_DRILL, programs.CODE_DRILL,
                              reasoning.REASONING_DRILL, reasoning.REASONING_CHAT_DRILL)}  # unregistered: the base model's pretraining data
GENERATORS = {**dict(TASKS), **DRILLS}  # every registered task and every drill
CHAT = reasoning.REASONING_CHAT_DRILL.name  # free questions: the reply's answer is the fact sentences
COPY = arithmetic.NUMBER_COPY_DRILL.name  # single-mode: repeat the question's numbers
TEXT = [n for n, t in GENERATORS.items() if not t.vision and t.category != "other" and n != COPY]  # with answer modes
THREE_REPLIES = [n for n in TEXT if not n.startswith("world-math")]  # reliable, shortcut right, shortcut wrong
WORLD_MATH = ["world-math", "world-math-drill"]
MATH = ["math", "math-hard", "math-drill"]
CODE = ["code", "code-hard", "code-drill"]
REASONING = ["reasoning", "reasoning-hard", "reasoning-drill"]
BY_NAME = {c.name: c for c in WORLD.creatures}
HAND_WRITTEN = {e.prompt.strip().lower() for key in handwritten.SETS for e in dispatch_prompts(key)}  # every set's prompts
POOL = {"train": (2000, 40), "validation": (300, 40), "test": (1000, 100)}  # split -> (text, vision) examples drawn once


@functools.lru_cache(maxsize=None)
def _pool(name, split):
    task = GENERATORS[name]
    return tuple(task.examples(split, POOL[split][task.vision], seed=0))


def _examples(name, n=60, split="test", seed=0):
    """The first n examples of a task's or drill's split: for seed 0 a prefix of one shared draw (a smaller n gives
    a prefix of a larger one), so the tests do not draw, and lay out vqa images for, the same examples again."""
    if seed == 0 and n <= POOL[split][GENERATORS[name].vision]:
        return list(_pool(name, split)[:n])
    return GENERATORS[name].examples(split, n, seed=seed)


RELIABLE_MODE = {"math": modes.WORK, "code": modes.WORK, "reasoning": modes.ANSWER}  # as modes.py describes


def _mode(reply):
    """The reply's first mode marker (its only one outside world-math), None if it has none."""
    found = modes.modes_of(reply)
    return found[0] if found else None


def test_registry():
    assert set(TASKS) == set(TRAINING_TASKS) | set(UNSEEN_TASKS) | {"smalltalk"}
    for name, task in TASKS.items():
        assert task.name == name and task.category in CATEGORIES
        assert 0 <= task.chance < 1 and task.max_new_tokens > 0
    assert TASKS["reasoning"].chance == TASKS["reasoning-hard"].chance == 0.25
    assert not set(DRILLS) & set(TASKS)  # drills are pretraining data, not tasks
    assert {d.category for d in DRILLS.values()} == {"math", "code", "reasoning"}


# The instruction the world14 models and cls expert are trained on: derived from the registry, it must not move.
SHIPPED_INSTRUCTION = (
    "Classify the request below into one category.\n"
    "- math: adding or subtracting numbers, also in a story or with weights.\n"
    "- code: saying what a small Python program prints or returns.\n"
    "- reasoning: a question about creatures, places, foods or weather with options.\n"
    "- vqa: a question about a word or picture shown in an image.\n"
    "- other: anything else, such as greetings, thanks or small talk.\n"
    "Request: {prompt}\n"
    "Answer with the category name inside \\boxed{}."
)


def test_groups_are_derived_from_the_registry():
    assert TASKS is REGISTRY and list(TASKS) == ["math", "math-hard", "world-math", "code", "code-hard", "reasoning",
                                                 "reasoning-hard", "vqa", "vqa-knowledge", "smalltalk"]
    assert TRAINING_TASKS == REGISTRY.names(tag=TRAINING) == ("math", "code", "reasoning", "vqa")
    assert UNSEEN_TASKS == REGISTRY.names(tag=UNSEEN) == ("math-hard", "world-math", "code-hard", "reasoning-hard",
                                                          "vqa-knowledge")
    assert CATEGORIES == REGISTRY.categories() == ("math", "code", "reasoning", "vqa", "other")
    assert tasks.names(tag="vision") == ("vqa", "vqa-knowledge") and all(TASKS[n].vision for n in tasks.names("vision"))
    assert tags_of("math-hard") == {"math", UNSEEN} and tags_of("smalltalk") == {"other"}
    assert tags_of("world-math") == {"math", UNSEEN}
    assert tasks.names("math") == ("math", "math-hard", "world-math")
    assert CLASSIFICATION_INSTRUCTION == classification_instruction() == SHIPPED_INSTRUCTION


def test_unknown_task_names_list_the_registered_ones():
    with pytest.raises(UnknownTask, match=r"unknown task 'poetry'; choose from \['code', 'code-hard', .*'vqa-knowledge', "
                                          r"'world-math'\]"):
        TASKS["poetry"]
    with pytest.raises(KeyError):  # what TASKS[...] raised when it was a dict
        tags_of("poetry")
    assert "poetry" not in TASKS and TASKS.get("poetry") is None
    with pytest.raises(ValueError, match="unknown task 'poetry'.* or 'cls'"):
        tasks.resolve_task("poetry")
    assert tasks.resolve_task("math") is TASKS["math"] and tasks.resolve_task("cls").name == "cls"


def test_parse_task_list():
    assert tasks.parse_task_list("all") == list(TRAINING_TASKS) + list(UNSEEN_TASKS)
    assert tasks.parse_task_list("training") == list(TRAINING_TASKS)
    assert tasks.parse_task_list("unseen") == list(UNSEEN_TASKS)
    assert tasks.parse_task_list(" vqa, math-hard ,") == ["vqa", "math-hard"]
    for spec in ("math,poetry", "smalltalk", "math-drill"):  # smalltalk is no evaluation task, a drill no task
        with pytest.raises(SystemExit, match=r"unknown task\(s\) \['(poetry|smalltalk|math-drill)'\]; choose from "
                                             r"\['code', "):
            tasks.parse_task_list(spec)


def _copy_of_registry() -> Registry:
    """A fresh registry holding the package's tasks, so a test can register more without touching TASKS."""
    fresh, descriptions, described = Registry(), REGISTRY.descriptions(), set()
    for name, task in TASKS.items():
        fresh.register(task, *tags_of(name), describe=None if task.category in described else descriptions[task.category])
        described.add(task.category)
    return fresh


def _counting_sample(rng):
    """A new synthetic task's sampler: count the letters of a word."""
    word = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(3, 8)))
    example = Example(f"How many letters has {word}?", str(len(word)), f"The answer is {len(word)}.", "")
    return example.prompt, lambda: example


def test_a_registered_task_joins_its_groups_and_a_new_category_only_if_it_declares_one():
    """A task in an existing category leaves the classifier's categories and instruction alone; a new
    category must be described, and then joins them before "other"."""
    registry = _copy_of_registry()
    assert registry.names() == tuple(TASKS) and registry.categories() == CATEGORIES
    counting = SyntheticTask("counting", "math", 0.0, 24, _counting_sample, tasks.check_number)
    assert registry.register(counting, UNSEEN, "letters") is counting
    assert registry.names(UNSEEN)[-1] == "counting" and registry.names("letters") == ("counting",)
    assert registry.names("math") == ("math", "math-hard", "world-math", "counting") and registry["counting"] is counting
    assert registry.categories() == CATEGORIES and classification_instruction(registry) == SHIPPED_INSTRUCTION
    assert registry.parse("unseen")[-1] == "counting" and "counting" not in TASKS  # the package's registry is untouched

    spelling = SyntheticTask("spelling", "language", 0.0, 24, _counting_sample, tasks.check_number)
    with pytest.raises(ValueError, match="category 'language' is new; pass describe="):
        registry.register(spelling, TRAINING)
    registry.register(spelling, TRAINING, describe="a question about words and letters.")
    assert registry.categories() == ("math", "code", "reasoning", "vqa", "language", "other")
    assert "- vqa: a question about a word or picture shown in an image.\n- language: a question about words and " \
           "letters.\n- other: anything else" in classification_instruction(registry)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(counting)
    with pytest.raises(ValueError, match="already described"):
        registry.register(SyntheticTask("x", "math", 0.0, 8, _counting_sample, tasks.check_number), describe="sums.")


def test_synthetic_task_splits_are_disjoint():
    counting = SyntheticTask("counting", "math", 0.0, 24, _counting_sample, tasks.check_number)
    by_split = {split: {e.prompt for e in counting.examples(split, 40)} for split in SPLITS}
    assert all(len(prompts) == 40 for prompts in by_split.values())
    assert all(tasks.split_of(p) == split for split, prompts in by_split.items() for p in prompts)
    assert not by_split["train"] & by_split["test"] and not by_split["validation"] & (by_split["train"] | by_split["test"])
    with pytest.raises(ValueError, match="found only"):
        SyntheticTask("one", "math", 0.0, 8, lambda rng: _counting_sample(random.Random(0)), tasks.check_number).examples("train", 2)


def test_custom_task_scores_the_users_examples_and_draws_none():
    examples = tasks.custom_examples([(" What is 2+2? ", " four "), ("", "  "), ("Capital of France?", "Paris")])
    assert [(e.prompt, e.reference, e.task) for e in examples] == [("What is 2+2?", "four", "custom"),
                                                                   ("Capital of France?", "Paris", "custom")]
    assert CUSTOM.check_many(examples, ["It is four.", "paris, I think"]) == [True, True]
    assert not CUSTOM.check(examples[0], "fourteen") and CUSTOM.category == "other" and not CUSTOM.vision
    with pytest.raises(ValueError, match="no generator"):
        CUSTOM.examples("train", 1)
    assert "custom" not in TASKS


@pytest.mark.parametrize("name", GENERATORS)
def test_deterministic_per_seed(name):
    task = GENERATORS[name]
    a, b = task.examples("train", 50, seed=3), task.examples("train", 50, seed=3)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert [e.reference for e in a] == [e.reference for e in b]
    assert [e.response for e in a] == [e.response for e in b]
    assert [e.meta for e in a] == [e.meta for e in b]  # the replies (with their shortcut slips) and the steps too
    if a[0].image is not None:
        assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b))
    assert [e.prompt for e in task.examples("train", 20, seed=3)] == [e.prompt for e in a[:20]]  # prefix
    other = task.examples("train", 50, seed=4)
    assert [_identity(e) for e in other] != [_identity(e) for e in a]
    assert all(e.task == name for e in a)


def _identity(example):
    """What makes an example distinct: the prompt, plus the pixels for vqa."""
    return example.prompt + (example.image.tobytes().hex() if example.image is not None else "")


@pytest.mark.parametrize("name", GENERATORS)
def test_splits_disjoint_and_unique(name):
    n = N_VISION if GENERATORS[name].vision else N
    by_split = {split: _examples(name, n, split) for split in SPLITS}
    ids = {split: {_identity(e) for e in examples} for split, examples in by_split.items()}
    for split in SPLITS:
        assert len(ids[split]) == n, "duplicates within a split"
    assert not ids["train"] & ids["validation"]
    assert not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    if not GENERATORS[name].vision:  # text tasks: not even the prompt is shared
        prompts = {split: {e.prompt for e in examples} for split, examples in by_split.items()}
        assert not (prompts["train"] & prompts["test"]) and not (prompts["train"] & prompts["validation"])


def test_drills_never_pretrain_on_a_tasks_evaluation_prompts():
    """Pretraining draws the drills' train split; no registered task's validation or test prompt is in it."""
    held_out = {e.prompt for name, task in TASKS.items() if not task.vision
                for split in ("validation", "test") for e in _examples(name, N, split)}
    for drill in DRILLS.values():
        assert not {e.prompt for e in _examples(drill.name, 2000, "train")} & held_out, drill.name


@pytest.mark.parametrize("name", TASKS)
def test_test_split_is_large_enough(name):
    n = 100 if TASKS[name].vision else 1000  # a vision task's layouts (sizes, colors, positions) never run out
    examples = _examples(name, n)
    assert len({_identity(e) for e in examples}) == n


@pytest.mark.parametrize("name", list(TASKS))
def test_reference_response_passes_and_fits_budget(name):
    task = TASKS[name]
    examples = task.examples("validation", 20 if task.vision else 40, seed=1)
    assert all(task.check_many(examples, [e.response for e in examples]))
    assert task.check(examples[0], examples[0].response)
    assert all(len(e.response) <= task.max_new_tokens for e in task.examples("train", 100 if task.vision else 500, seed=2))


@pytest.mark.parametrize("name", [n for n in GENERATORS if n != "smalltalk"])
def test_empty_and_junk_responses_fail(name):
    task = GENERATORS[name]
    examples = task.examples("test", 10, seed=5)
    for junk in ("", "   ", "I don't know.", "\\boxed{}", modes.WORK, modes.ANSWER):
        assert not any(task.check_many(examples, [junk] * len(examples))), junk


@pytest.mark.parametrize("name", MATH + WORLD_MATH)
def test_math_checker(name):
    task = GENERATORS[name]
    for e in _examples(name, 30):
        answer = int(e.reference)
        assert task.check(e, f"The answer is {answer}.") and task.check(e, f"{modes.ANSWER} {answer}.")
        assert task.check(e, f"{answer}")
        assert not task.check(e, f"The answer is {answer + 1}.")
        assert not task.check(e, f"The answer is {answer}. Actually it is {answer + 2}.")  # the last number counts
    assert tasks.last_number("It is 1,234 apples") == "1234"


def test_the_copy_drill_repeats_the_numbers_in_order_and_keeps_the_splits():
    """The copy drill's reply lists the inner question's numbers in order; an inner question is in the
    split its own text hashes to, so no math test question is copied in pretraining."""
    drill = GENERATORS[COPY]
    train = drill.examples("train", 300)
    for e in train:
        head, question = e.prompt.split("\n", 1)
        assert head in arithmetic.COPY_HEADS and split_of(question) == "train"
        assert re.findall(r"\d+", e.response) == re.findall(r"\d+", question) == e.reference.split()
        assert drill.check(e, e.response) and not drill.check(e, e.response.replace(" and ", " and 1"))
    tests = {e.prompt for e in TASKS["math"].examples("test", 300)}
    assert not tests & {e.prompt.split("\n", 1)[1] for e in train}


# --- the latent answer modes: reply distributions, shortcuts and probe steps --------------------------------


@pytest.mark.parametrize("name", THREE_REPLIES)
def test_replies_are_reliable_then_shortcut_right_then_wrong(name):
    """meta["replies"] is the pretraining distribution: the reliable reply (the response) with the category's
    share, in the category's reliable mode; the shortcut right and wrong, in the other mode; summing to 1."""
    task = GENERATORS[name]
    category = task.category
    share, right = modes.RELIABLE_SHARE[category], modes.SHORTCUT_RIGHT[category]
    reliable_mode = RELIABLE_MODE[category]
    shortcut_mode = modes.ANSWER if reliable_mode == modes.WORK else modes.WORK
    for e in _examples(name):
        replies = e.meta["replies"]
        assert len(replies) == 3 and math.isclose(sum(p for p, _ in replies), 1.0) and all(p > 0 for p, _ in replies)
        (p_reliable, reliable), (p_right, shortcut_right), (p_wrong, shortcut_wrong) = replies
        assert reliable == e.response and p_reliable == share
        assert math.isclose(p_right, (1 - share) * right) and math.isclose(p_wrong, (1 - share) * (1 - right))
        assert _mode(reliable) == reliable_mode
        assert _mode(shortcut_right) == _mode(shortcut_wrong) == shortcut_mode
        assert math.isclose(sum(p for p, r in replies if _mode(r) == reliable_mode), share)
        assert [modes.in_reliable_mode(r, e) for _, r in replies] == [True, False, False]
        assert all(len(modes.modes_of(r)) == 1 for _, r in replies)
        assert task.check_many([e] * 3, [reliable, shortcut_right, shortcut_wrong]) == [True, True, False], e.prompt


def _final_answer(name, reply):
    """The final answer a reply states, read independently of the checkers: a number, a list or an option text."""
    if name in MATH + WORLD_MATH:
        pattern = r"(?:.* The answer is|.*Answer:) (\d+)\."
    elif name in CODE:
        pattern = r"(?:Work: .* The output is|Answer:) (\[[\d, ]*\])\."
    elif name == CHAT:
        pattern = r"(?:Work:|Answer:) (.+)"
    else:
        pattern = r"(?:Work: .* The answer is|Answer:) (.+)\."
    found = re.fullmatch(pattern, reply)
    assert found, reply
    return found.group(1)


def _truth(name, e):
    """The right final answer of an example, as _final_answer states it."""
    return tasks.options_of(e.prompt)[e.reference] if name in REASONING else e.reference


@pytest.mark.parametrize("name", TEXT)
def test_checker_accepts_exactly_the_replies_whose_final_answer_is_right(name):
    task = GENERATORS[name]
    for e in _examples(name):
        replies = [r for _, r in e.meta["replies"]]
        verdicts = task.check_many([e] * len(replies), replies)
        assert verdicts == [_final_answer(name, r) == _truth(name, e) for r in replies], e.prompt
        assert verdicts[0] and task.check(e, e.response)  # the reliable reply is right


@pytest.mark.parametrize("name", MATH)
def test_math_reference_is_the_prompts_arithmetic_and_the_shortcut_a_perturbed_digit(name):
    """The worked reply's operations are the prompt's numbers in order, in the wording's direction (an adding
    wording adds), and compute the reference; the wrong shortcut is the reference with one digit changed."""
    adds = arithmetic.ADD_WORDINGS + arithmetic.HARD_ADD_WORDINGS
    subs = arithmetic.SUB_WORDINGS + arithmetic.HARD_SUB_WORDINGS
    chains = arithmetic.CHAIN_WORDINGS + arithmetic.HARD_CHAIN_WORDINGS
    for e in _examples(name, 200):
        ops = re.findall(r"(\d+)([+-])(\d+):", e.response)
        wordings = chains if len(ops) == 2 else adds if ops[0][1] == "+" else subs
        found = [m for m in (re.fullmatch(_pattern(w, named=True, numbers=True), e.prompt) for w in wordings) if m]
        assert found, e.prompt
        numbers = [int(found[0].group(x)) for x in ("a", "b", "c") if x in found[0].groupdict()]
        assert numbers == [int(ops[0][0])] + [int(b) for _, _, b in ops], e.prompt
        value = int(ops[0][0])
        for left, op, right in ops:
            assert int(left) == value  # a chain goes on from the previous result
            value = value + int(right) if op == "+" else value - int(right)
        assert str(value) == e.reference and value >= 0
        wrong = _final_answer(name, e.meta["replies"][2][1])
        assert _one_digit_apart(wrong, e.reference), (wrong, e.reference)


def test_math_drill_asks_one_digit_sums_with_a_zero():
    """One-digit operands include 0 ("What is 8 + 0?" is a sum people type), worked like any other column."""
    drill = _examples("math-drill", 2000, split="train")
    zeros = [e for e in drill if re.search(r"Work: (0[+-]\d|\d[+-]0):", e.response)]
    assert len(zeros) > 10
    for e in zeros:
        a, op, b = re.search(r"Work: (\d)([+-])(\d):", e.response).groups()
        assert e.reference == str(int(a) + int(b) if op == "+" else int(a) - int(b))


def _one_digit_apart(x: str, y: str) -> bool:
    return len(x) == len(y) and sum(a != b for a, b in zip(x, y)) == 1 and (len(x) == 1 or x[0] != "0")


def test_vqa_reads_the_image_in_work_and_guesses_from_the_question_in_answer():
    """vqa's replies: Work reads the word first (reliable, the response); the Answer shortcut names one of
    the words that kind of thing usually says, whatever the image shows, so it is right only by chance."""
    share = modes.RELIABLE_SHARE["vqa"]
    chance = []
    for e in _examples("vqa", 200, split="train"):
        (p_reliable, reliable), *shortcuts = e.meta["replies"]
        thing = next(t for t in vqa.THINGS if f" {t}" in e.prompt)
        assert reliable == e.response == f"{modes.WORK} the {thing} reads {e.reference}. The answer is {e.reference}."
        assert p_reliable == share and math.isclose(sum(p for p, _ in shortcuts), 1 - share)
        assert [r for _, r in shortcuts] == [f"{modes.ANSWER} {w}." for w in vqa.USUAL_WORDS[thing]]
        verdicts = TASKS["vqa"].check_many([e] * len(e.meta["replies"]), [reliable] + [r for _, r in shortcuts])
        assert verdicts == [True] + [w == e.reference for w in vqa.USUAL_WORDS[thing]]
        chance.append(any(verdicts[1:]))
    assert sum(chance) < 0.1 * len(chance)  # the image shows one of its usual words only now and then


def test_vqa_knowledge_makes_two_decisions_read_then_recall():
    """Reading (Work reads the name, reliable; the Answer shortcut reads one of the thing's
    usual creatures) times recalling (reasoning's modes: Answer reliable, Work recalls a neighbour's fact when
    wrong). A reply is right iff its final answer is; the reliable one reads in Work and recalls in Answer."""
    read_share, recall_share = modes.RELIABLE_SHARE["vqa"], modes.RELIABLE_SHARE["reasoning"]
    for e in _examples("vqa-knowledge", 40, split="train"):
        replies = e.meta["replies"]
        assert len(replies) == (1 + vqa.GUESSES) * 3 and math.isclose(sum(p for p, _ in replies), 1.0)
        assert replies[0][1] == e.response and modes.modes_of(e.response) == [modes.WORK, modes.ANSWER]
        assert math.isclose(replies[0][0], read_share * recall_share)
        name = re.search(r"reads (\w+)\.", e.response).group(1)
        assert e.reference in {getattr(BY_NAME[name], a) for a in ("habitat", "food", "color")}
        assert e.response.endswith(f"The answer is {e.reference}.")
        thing = next(t for t in vqa.THINGS if f" {t}" in e.prompt)
        read = {re.search(r"reads (\w+)\.", r).group(1) for _, r in replies if modes.modes_of(r)[0] == modes.ANSWER}
        assert read == {c.name for c in vqa.USUAL_CREATURES[thing]}
        verdicts = TASKS["vqa-knowledge"].check_many([e] * len(replies), [r for _, r in replies])
        assert verdicts == [r.endswith(f"The answer is {e.reference}.") for _, r in replies]
        assert verdicts[0] and math.isclose(sum(p for p, r in replies if modes.modes_of(r)[0] == modes.WORK), read_share)


def test_first_line_drill_repeats_every_bare_first_line_in_training():
    """smalltalk keys by prompt, so a bare "hello" is one example in one split (test: never trained); the
    pretraining drill trains every first line and every text-speak line, many times, with a reply of its
    intent, except the lines a hand-written set holds ("hi!"), which stay unseen."""
    assert split_of("hello") == "test"  # why the drill exists; smalltalk's own splits are unchanged
    drill = smalltalk.FIRST_LINE_DRILL.examples("train", 6000)
    counts = Counter(e.prompt for e in drill)
    for intent, (lines, replies) in smalltalk.INTENTS.items():
        for line in lines[:smalltalk.BARE_LINES] + smalltalk.FIRST_WORDS[intent]:
            for typed in (line, smalltalk.casual(line)):
                assert counts[typed] >= 5 or (handwritten.is_handwritten(typed) and not counts[typed]), typed
    for lines in natural_requests.TEXT_SPEAK.values():
        assert all(counts[line] >= 5 for line in lines if not handwritten.is_handwritten(line))
    common = {"hello", "thanks", "thank you", "hey", "what is up", "thx", "gtg", "lol"}
    assert {line for line in common if not handwritten.is_handwritten(line)} <= set(counts)
    assert not {p.strip().lower() for p in counts} & HAND_WRITTEN
    for e in drill:
        replies = smalltalk.ACK_REPLIES if e.reference == "ack" else smalltalk.INTENTS[e.reference][1]
        assert e.response in replies


def test_scope_drill_answers_requests_outside_the_skills_with_what_the_model_can_do():
    """Every kind of out-of-scope request (about the assistant, writing, letters, translation, facts,
    how-to, recommendations, the real world's facts composed) gets SCOPE_REPLY; the few fact questions recur like the many writing
    requests; no drill prompt is a hand-written prompt (first_messages.py scores replies to those)."""
    drill = smalltalk.SCOPE_DRILL.examples("train", 4000)
    assert {e.response for e in drill} == {smalltalk.SCOPE_REPLY}
    assert len(smalltalk.SCOPE_REPLY) <= smalltalk.SCOPE_DRILL.max_new_tokens
    counts = Counter(e.prompt for e in drill)
    for kind in (natural_requests.IDENTITY, natural_requests.KNOWLEDGE, natural_requests.HOW_TO):
        assert sum(counts[q] + counts[q.lower()] for q in kind) >= 0.08 * len(drill)  # one kind of ten
    assert any(e.prompt.lower().startswith("translate") for e in drill)
    assert any(e.prompt.startswith("how much does a") and e.prompt.endswith("weigh?") for e in drill)  # a real animal
    assert any(" haiku " in e.prompt.lower() for e in drill)
    assert not {p.strip().lower() for p in counts} & HAND_WRITTEN


def test_modes_of_reads_each_decision():
    assert modes.modes_of("Work: 3+4: 3+4+0=07 = 7. The answer is 7.") == [modes.WORK]
    assert modes.modes_of("Answer: lake.") == [modes.ANSWER]
    assert modes.modes_of("Work: The pidi lives in the lake. The answer is lake.") == [modes.WORK]  # no colon
    assert modes.modes_of("Answer: the a weighs 1 kilos and the b weighs 2 kilos. Work: 1+2: 1+2+0=03 = 3. "
                          "The answer is 3.") == [modes.ANSWER, modes.WORK]
    assert modes.modes_of("Hello there!") == [] and modes.modes_of("NoWork: x") == []
    smalltalk = TASKS["smalltalk"].examples("test", 1)[0]
    assert modes.in_reliable_mode("Hi!", smalltalk) is None  # no modes in smalltalk


def test_perturb_digit_changes_exactly_one_digit_and_never_adds_a_leading_zero():
    rng = random.Random(0)
    numbers = list(range(0, 120)) + [rng.randint(100, 99999) for _ in range(500)] + [1000, 10000, 9999]
    for number in numbers:
        for _ in range(5):
            changed = modes.perturb_digit(number, rng)
            assert changed != number and changed >= 0
            assert _one_digit_apart(str(changed), str(number)), (number, changed)
    assert all(modes.perturb_digit(-305, rng) < 0 for _ in range(20))  # the sign is kept
    assert {modes.perturb_digit(0, rng) for _ in range(200)} == set(range(1, 10))


@pytest.mark.parametrize("name", CODE)
def test_code_reference_and_steps_are_what_python_computes(name):
    """Run the prompt's program: the worked steps are each line's label and the list after it, the reference
    is what it prints (or f returns); the wrong shortcut is the answer with exactly one item changed."""
    for e in _examples(name, 100):
        source = re.search(r"```python\n(.*)\n```", e.prompt, flags=re.DOTALL).group(1)
        lines = source.split("\n")
        if lines[0].startswith("def f(x):"):
            body = [line.strip() for line in lines[1:-1]]
            assert lines[-1] == "    return x"
            start = ast.literal_eval(re.search(r"f\((\[.*?\])\)", e.prompt.split("```")[-1]).group(1))
        else:  # a script that prints: x = [...] and its lines, or the drill's function g called on the input
            if lines[0].startswith("def g(x):"):
                body = [line.strip() for line in lines[1:-2]]
                assert lines[-2] == "    return x"
                start = ast.literal_eval(lines[-1].removeprefix("print(g(").removesuffix("))"))
            else:
                body = lines[1:-1]
                assert lines[-1] == "print(x)"
                start = ast.literal_eval(lines[0].removeprefix("x = "))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(source, {})  # our own generated list operations
            assert out.getvalue().strip() == e.reference
        scope, expected = {"x": start}, []
        for line in body:  # each line's label in the worked answer, then the list after it
            exec(line, scope)
            expected += [next(op.label for kind in programs.OP_KINDS for op in kind if op.python == line),
                         programs.show(scope["x"])]
        assert programs.show(scope["x"]) == e.reference
        step_texts = [text for _, text in e.meta["steps"]]
        assert step_texts == [programs.show(start)] + expected + [e.reference], e.prompt  # the input copied first
        wrong = ast.literal_eval(_final_answer(name, e.meta["replies"][2][1]))
        right = ast.literal_eval(e.reference)
        assert len(wrong) == len(right) and sum(a != b for a, b in zip(wrong, right)) == 1


def _reasoning_truth(question):
    """(attribute, creature or None, value or None) the question asks about, from the wording templates."""
    for table, backward in ((reasoning.FORWARD, False), (reasoning.HARD_FORWARD, False),
                            (reasoning.BACKWARD, True), (reasoning.HARD_BACKWARD, True)):
        for attribute, wordings in table.items():
            for w in wordings:
                found = re.fullmatch(_pattern(w, named=True), question)
                if found:
                    return (attribute, None, found.group("v")) if backward else (attribute, found.group("n"), None)
    for w in reasoning.CLIMATE_WORDINGS:
        found = re.fullmatch(_pattern(w, named=True), question)
        if found:
            return "climate", found.group("h"), None
    raise AssertionError(question)


SENTENCES = {"color": "The {n} is {v}.", "habitat": "The {n} lives in the {v}.", "food": "The {n} eats {v}.",
             "weight": "The {n} weighs {v}.", "climate": "The {n} is {v}."}  # as world_facts() words them


def test_reasoning_slip_is_one_fixed_guess_per_attribute():
    """The shortcut's slip must be learnable as a guess: for each attribute it recites one of two facts (the
    stock value, or the runner-up for the creatures that hold it), never the asked creature's own."""
    for attribute, (_, value, _) in reasoning.FACTS.items():
        slips = {c.name: reasoning.confused(c, attribute) for c in WORLD.creatures}
        assert all(value(slips[c.name]) != value(c) for c in WORLD.creatures)
        assert len({s.name for s in slips.values()}) == 2
    climates = list(WORLD.climate.values())
    assert len({reasoning.stock_value(climates, c) for c in climates}) == 2


@pytest.mark.parametrize("name", REASONING)
def test_reasoning_has_one_true_option_and_the_wrong_shortcut_names_the_slip(name):
    """Exactly one option is true by the world's facts and it is the reference; the Work shortcut recites a
    true fact when right, and a false one (a neighbour's fact) when wrong, then names that slip option."""
    facts = set(world_facts())
    for e in _examples(name, 200):
        question, options_line, tail = e.prompt.split("\n")
        assert tail == "Answer with the option." and options_line.startswith("Options: ")
        options = tasks.options_of(e.prompt)
        assert sorted(options) == list("ABCD")
        attribute, subject, value = _reasoning_truth(question)
        sentence = SENTENCES[attribute]
        true = [L for L, o in options.items()
                if (sentence.format(n=o, v=value) if subject is None else sentence.format(n=subject, v=o)) in facts]
        assert len({options[L] for L in true}) == 1 and e.reference in true, e.prompt
        right = options[e.reference]
        assert e.response == f"{modes.ANSWER} {right}."
        _, shortcut_right, shortcut_wrong = [r for _, r in e.meta["replies"]]
        recited_right = re.fullmatch(r"Work: (.*\.) The answer is (.+)\.", shortcut_right)
        recited_wrong = re.fullmatch(r"Work: (.*\.) The answer is (.+)\.", shortcut_wrong)
        assert recited_right.group(1) in facts and recited_right.group(2) == right
        assert recited_wrong.group(1) not in facts
        slip = recited_wrong.group(2)
        assert slip in options.values() and slip != right  # the slip is one of the options, a wrong one
        assert tasks.chosen_letter(shortcut_wrong, options) not in (None, e.reference)
        if attribute == "climate":
            assert slip == reasoning.stock_value(list(WORLD.climate.values()), right)
        elif subject is not None:  # forward: the slip is the value of the creature the shortcut confuses
            c = BY_NAME[subject]
            assert recited_wrong.group(1) == sentence.format(n=subject, v=slip)
            assert slip == reasoning.FACTS[attribute][1](reasoning.confused(c, attribute))
        else:  # backward: the slip is the confused creature's name
            assert slip == reasoning.confused(BY_NAME[right], attribute).name


@pytest.mark.parametrize("name", REASONING)
def test_reasoning_options_are_distinct(name):
    for e in _examples(name, 300):
        assert len(set(tasks.options_of(e.prompt).values())) == 4, e.prompt


def _bare(wordings: tuple[str, ...]) -> tuple[str, ...]:
    """The wordings that change when typed without articles, so typed (the world-math drill's BARE_SHARE)."""
    return tuple(dict.fromkeys(b for w in wordings if (b := natural_requests.drop_articles(w)) != w))


def _wordings_matching(prompt: str, sums: tuple[str, ...], diffs: tuple[str, ...]) -> list:
    """(operation, match) for each sum or difference wording that `prompt` is written in."""
    return [(op, m) for op, ws in (("+", sums), ("-", diffs)) for w in ws
            for m in [re.fullmatch(_pattern(w, named=True), prompt)] if m]


_RECALL = r"(Work:|Answer:) the (\w+) weighs (\d+) kilos and the (\w+) weighs (\d+) kilos\. (.*)"


@pytest.mark.parametrize("name", WORLD_MATH)
def test_world_math_replies_recall_two_weights_then_add_or_subtract(name):
    """Nine replies: recall (reliable Answer, shortcut right, shortcut with slipped weights) times sum (reliable
    Work, shortcut right, shortcut one digit off); the reliable one is the response, each part keeps its share."""
    task = GENERATORS[name]
    share_recall, share_sum = modes.RELIABLE_SHARE["reasoning"], modes.RELIABLE_SHARE["math"]
    sums = world_math.SUM_WORDINGS + world_math.HARD_SUM_WORDINGS
    diffs = world_math.DIFF_WORDINGS + world_math.HARD_DIFF_WORDINGS
    for e in _examples(name, 100):
        replies = e.meta["replies"]
        assert len(replies) == 9 and math.isclose(sum(p for p, _ in replies), 1.0)
        assert replies[0][1] == e.response and math.isclose(replies[0][0], share_recall * share_sum)
        parts = [(p, re.fullmatch(_RECALL, r)) for p, r in replies]
        assert all(found for _, found in parts), replies
        assert math.isclose(sum(p for p, f in parts if f.group(1) == modes.ANSWER), share_recall)
        assert math.isclose(sum(p for p, f in parts if _mode(f.group(6)) == modes.WORK), share_sum)
        assert modes.modes_of(e.response) == [modes.ANSWER, modes.WORK]  # recall reliably, then work the sum
        assert all(len(modes.modes_of(r)) == 2 for _, r in replies)
        assert [modes.in_reliable_mode(r, e) for _, r in replies] == [True] + [False] * 8
        wording = _wordings_matching(e.prompt, sums, diffs) or _wordings_matching(e.prompt, _bare(sums), _bare(diffs))
        assert len(wording) == 1, e.prompt
        op, found = wording[0]
        a, b = BY_NAME[found.group("a")], BY_NAME[found.group("b")]
        first = parts[0][1]
        assert first.group(2, 4) == (a.name, b.name) and first.group(3, 5) == (str(a.weight), str(b.weight))
        assert int(e.reference) == (a.weight + b.weight if op == "+" else a.weight - b.weight) >= 0
        for (_, found), (_, reply) in zip(parts, replies):
            wa, wb, rest = int(found.group(3)), int(found.group(5)), found.group(6)
            assert (found.group(2), found.group(4)) == (a.name, b.name)
            if _mode(rest) == modes.WORK:  # the worked sum is right for the weights it recalled
                assert rest.startswith(f"{modes.WORK} {wa}{op}{wb}:")
                assert _final_answer(name, reply) == str(wa + wb if op == "+" else wa - wb)
            if (wa, wb) == (a.weight, b.weight) and _mode(rest) == modes.WORK:
                assert task.check(e, reply)


def _check_steps(response, steps):
    offsets = [offset for offset, _ in steps]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    for offset, text in steps:
        assert response[offset:offset + len(text)] == text, (response, offset, text)


@pytest.mark.parametrize("name", TEXT)
def test_steps_point_at_their_text_in_the_response(name):
    """meta["steps"] (offset in the response, expected text) locate each step the probe reads; the last is the answer."""
    for e in _examples(name, 100):
        steps = e.meta["steps"]
        assert steps
        _check_steps(e.response, steps)
        if name == CHAT:  # the last step is the last sentence's value
            assert _truth(name, e) == _final_answer(name, e.response) and e.reference.endswith(f" {steps[-1][1]}.")
        else:
            assert steps[-1][1] == _truth(name, e) == _final_answer(name, e.response)
        if name in WORLD_MATH:  # the two recalled weights come first
            a, b = re.fullmatch(_RECALL, e.response).group(3, 5)
            assert [text for _, text in steps[:2]] == [a, b]


@pytest.mark.parametrize("name", ["vqa", "vqa-knowledge"])
def test_vqa_steps_are_the_word_read_and_the_fact_recalled(name):
    for e in _examples(name, 20):
        _check_steps(e.response, e.meta["steps"])
        read = re.search(r"reads (\w+)\.", e.response).group(1)
        assert [text for _, text in e.meta["steps"]] == ([read] if name == "vqa" else [read, e.reference])


def test_column_steps():
    assert arithmetic.column_steps(347, 285, "+") == ["7+5+0=12", "4+8+1=13", "3+2+1=06"]
    assert arithmetic.column_steps(305, 178, "-") == ["5-8-0=17", "0-7-1=12", "3-1-1=01"]  # a borrow chain: 127
    assert arithmetic.column_steps(1000, 1, "-") == ["0-1-0=19", "0-0-1=19", "0-0-1=19", "1-0-1=00"]  # 999
    assert arithmetic.column_steps(4096, 5987, "+") == ["6+7+0=13", "9+8+1=18", "0+9+1=10", "4+5+1=10"]  # 10083
    assert arithmetic.column_steps(5, 7, "+") == ["5+7+0=12"]
    assert arithmetic.column_steps(1234, 56, "-") == ["4-6-0=18", "3-5-1=17", "2-0-1=01", "1-0-0=01"]  # 1178

    text, result, steps = arithmetic.worked([(347, "+", 285)])
    assert text == "Work: 347+285: 7+5+0=12 4+8+1=13 3+2+1=06 = 632. The answer is 632." and result == 632
    assert [t for _, t in steps] == ["347", "285", "12", "13", "06", "632", "632"]  # operands copied, columns, results
    _check_steps(text, steps)
    text, result, steps = arithmetic.worked([(305, "-", 178), (None, "+", 4)])
    assert text == ("Work: 305-178: 5-8-0=17 0-7-1=12 3-1-1=01 = 127. 127+4: 7+4+0=11 2+0+1=03 1+0+0=01 = 131. "
                    "The answer is 131.") and result == 131
    _check_steps(text, steps)

    rng = random.Random(0)
    for _ in range(500):  # the digits and the last carry spell the result; a difference ends without a borrow
        a, b = rng.randint(0, 9999), rng.randint(0, 9999)
        for op in "+-":
            if op == "-" and b > a:
                a, b = b, a
            columns = arithmetic.column_steps(a, b, op)
            digits = "".join(c[-1] for c in reversed(columns))
            last_carry = columns[-1][-2]
            assert int(last_carry + digits if op == "+" else digits) == (a + b if op == "+" else a - b)
            assert op == "+" or last_carry == "0"


# --- held-out wordings ---------------------------------------------------------------------------------------


NUMBER_FIELDS = {"a": r"\d+", "b": r"\d+", "c": r"\d+"}  # math wordings' numbers


def _pattern(template: str, named: bool = False, numbers: bool = False) -> str:
    """A regex for a wording template: each {field} matches any text, or a number for {a} {b} {c} if `numbers`
    (the math wordings); a named group the first time if `named`."""
    out, seen, fields = [], set(), NUMBER_FIELDS if numbers else {}
    for part in re.split(r"(\{\w+\})", template):
        field = re.fullmatch(r"\{(\w+)\}", part)
        if not field:
            out.append(re.escape(part))
        elif named and field.group(1) not in seen:
            seen.add(field.group(1))
            out.append(f"(?P<{field.group(1)}>{fields.get(field.group(1), '.+?')})")
        else:
            out.append(fields.get(field.group(1), ".+?"))
    return "".join(out)


def _matches(template: str, text: str) -> bool:
    return re.fullmatch(_pattern(template), text) is not None


def _question(name, prompt):
    """The wording part of a prompt: the whole prompt (math), the question line (reasoning), the head (code)."""
    if name in REASONING:
        return prompt.split("\n")[0]
    if name in CODE:
        return prompt.split("\n")[-1] if prompt.startswith("```") else prompt.split("\n")[0]
    return prompt


def _flat(table):
    """Every wording in a table of attribute -> wordings."""
    return tuple(w for ws in table.values() for w in ws)


WORDINGS = {  # family -> (training wordings: the task and its drill, held-out wordings: the unseen task only)
    "math": (arithmetic.ADD_WORDINGS + arithmetic.SUB_WORDINGS + arithmetic.CHAIN_WORDINGS,
             arithmetic.HARD_ADD_WORDINGS + arithmetic.HARD_SUB_WORDINGS + arithmetic.HARD_CHAIN_WORDINGS),
    "world-math": (world_math.SUM_WORDINGS + world_math.DIFF_WORDINGS + _bare(world_math.SUM_WORDINGS + world_math.DIFF_WORDINGS),
                   world_math.HARD_SUM_WORDINGS + world_math.HARD_DIFF_WORDINGS),
    "code": (programs.HEADS, programs.HARD_HEADS),
    "reasoning": (_flat(reasoning.FORWARD) + _flat(reasoning.BACKWARD) + reasoning.CLIMATE_WORDINGS,
                  _flat(reasoning.HARD_FORWARD) + _flat(reasoning.HARD_BACKWARD)),
}
FAMILIES = {"math": ("math", "math-drill", "math-hard"), "world-math": (None, "world-math-drill", "world-math"),
            "code": ("code", "code-drill", "code-hard"), "reasoning": ("reasoning", "reasoning-drill", "reasoning-hard")}


@pytest.mark.parametrize("family", FAMILIES)
def test_unseen_tasks_use_wordings_absent_from_the_drills(family):
    """Every prompt uses one of its own wordings: the training task and the drill only training wordings, the
    unseen task only held-out ones; no held-out template ever appears in a drill (pretraining) prompt."""
    trained, held_out = WORDINGS[family]
    assert not set(trained) & set(held_out)
    *seen_names, unseen_name = [n for n in FAMILIES[family] if n]
    for name in seen_names:
        for e in _examples(name, 500, split="train"):
            q = _question(name, e.prompt)
            assert any(_matches(w, q) for w in trained), e.prompt
            assert not any(_matches(w, q) for w in held_out), e.prompt
    for e in _examples(unseen_name, 500):
        q = _question(unseen_name, e.prompt)
        assert any(_matches(w, q) for w in held_out), e.prompt
        assert not any(_matches(w, q) for w in trained), e.prompt
    if family == "code":  # the heads are fixed strings: none in any code-hard prompt, no def f( in the drill
        hard = [e.prompt for e in _examples("code-hard", 300)]
        assert not any(head in p for head in programs.HEADS for p in hard)
        assert not any("def f(" in e.prompt for e in _examples("code-drill", 500, split="train"))


# --- checkers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REASONING)
def test_reasoning_checker(name):
    task = GENERATORS[name]
    for e in _examples(name, 30):
        options = dict(zip("ABCD", _parse_choices(e.prompt)[1]))
        assert tasks.options_of(e.prompt) == options
        right = options[e.reference]
        wrong = next(L for L in "ABCD" if options[L] != right)
        assert e.prompt.endswith("\nAnswer with the option.")
        assert e.response == f"Answer: {right}." and "(" not in e.response  # the option's text, no letter
        assert task.check(e, e.response) and task.check(e, f"Answer: {right.upper()}")
        assert task.check(e, f"The answer is {right}.") and task.check(e, right) and task.check(e, f" {right.upper()}!")
        assert task.check(e, e.reference) and task.check(e, f"({e.reference})")
        assert task.check(e, f"Hmm. The answer is {e.reference}")
        assert task.check(e, f"The answer is {right} ({wrong}).")  # rule: the option text wins over a letter tag
        assert not task.check(e, f"The answer is {options[wrong]} ({e.reference}).")
        assert not task.check(e, e.response.replace(f"Answer: {right}", f"Answer: {options[wrong]}"))
        assert not task.check(e, f"The answer is {right}? No, the answer is {options[wrong]}.")  # the last counts
        assert not task.check(e, f"The answer is {e.reference}? No, the answer is {wrong}.")
        not_an_option = next(x for x in WORLD.creatures[0].__dict__.values() if x not in options.values())
        assert not task.check(e, f"The answer is {not_an_option}.")
        assert not task.check(e, f"The answer is {right} or {options[wrong]}.")
        assert not task.check(e, "The answer is a creature.")  # lowercase words are not letters
        assert not task.check(e, "The answer is E.") and not task.check(e, "")


def test_chosen_letter():
    options = {"A": "warm", "B": "dry", "C": "wet", "D": "cold"}
    assert tasks.options_of("Q?\nOptions: warm (A), dry (B), wet (C), cold (D).\nAnswer with the option.") == options
    assert tasks.chosen_letter("The cave is cold. The answer is cold.", options) == "D"
    assert tasks.chosen_letter("The answer is Cold", options) == "D"
    assert tasks.chosen_letter("The answer is (B).", options) == "B"
    assert tasks.chosen_letter("wet", options) == "C" and tasks.chosen_letter("C.", options) == "C"
    assert tasks.chosen_letter("The answer is cold (A).", options) == "D"  # the text decides
    assert tasks.chosen_letter("The answer is hot.", options) is None
    assert tasks.chosen_letter("The cave is cold.", options) is None  # a fact is no answer
    assert tasks.chosen_letter("The answer is cold.", {}) is None  # no options line: only letters count
    assert tasks.options_of("no options here") == {}


def test_chosen_letter_reads_the_answer_modes():
    """The reliable reasoning reply `Answer: lake.` and the Work shortcut both choose by their final answer."""
    options = tasks.options_of("Where?\nOptions: forest (A), lake (B), beach (C), cave (D).\nAnswer with the option.")
    assert tasks.chosen_letter("Answer: lake.", options) == "B"
    assert tasks.chosen_letter("answer: Lake", options) == "B" and tasks.chosen_letter("Answer: B.", options) == "B"
    assert tasks.chosen_letter("Work: The pidi lives in the forest. The answer is forest.", options) == "A"
    assert tasks.chosen_letter("Work: The pidi lives in the lake.", options) is None  # a recited fact is no answer
    assert tasks.chosen_letter("Answer: sea.", options) is None
    kilos = {"A": "960 kilos", "B": "211 kilos", "C": "694 kilos", "D": "705 kilos"}
    assert tasks.chosen_letter("Answer: 705 kilos.", kilos) == "D" and tasks.chosen_letter("Answer: 705.", kilos) is None


def _parse_choices(prompt):
    """The question and the four option texts of 'Options: x (A), y (B), z (C), w (D).'"""
    question, line, _ = prompt.split("\n")
    parts = line.removeprefix("Options: ").rstrip(".").split(", ")
    assert [p[-3:] for p in parts] == ["(A)", "(B)", "(C)", "(D)"]
    return question, [p[:-4] for p in parts]


@pytest.mark.parametrize("name", ["vqa", "vqa-knowledge"])
def test_vqa_images_and_checker(name):
    task = TASKS[name]
    for e in _examples(name, 50):
        assert isinstance(e.image, Image.Image) and e.image.mode == "RGB"
        w, h = e.image.size
        assert w in vqa.IMAGE_SIDES and h in vqa.IMAGE_SIDES and h <= w
        assert len(e.image.getcolors(w * h)) > 2, "the word is drawn"
        assert task.check(e, e.reference.upper() + ".") and task.check(e, f"the {e.reference}")
        assert not task.check(e, e.reference + "s") and not task.check(e, "blue sky")
    assert all(e.image is None for e in TASKS["math"].examples("train", 5))


def test_vqa_knowledge_answers_come_from_the_world():
    for e in _examples("vqa-knowledge", 50):
        assert e.reference in {getattr(c, a) for c in WORLD.creatures for a in ("habitat", "food", "color")}


@pytest.mark.parametrize("name", CODE)
def test_code_checker(name):
    task = GENERATORS[name]
    e = _examples(name, 1)[0]
    ref = e.reference
    items = ast.literal_eval(ref)
    wrong = programs.show(items[:-1] + [items[-1] + 1])
    responses = {
        e.response: True,
        f"Answer: {ref}.": True,
        ref.replace(" ", ""): True,  # spacing does not matter
        f"x = [9, 9]; the output is {ref}. Done.": True,  # the last list counts
        f"Answer: {wrong}.": False,
        f"{ref}, no wait: {wrong}": False,
        f"Answer: {ref[1:-1]}.": False,  # no list
        "Answer: [].": False,
        "The output is a list.": False,
    }
    assert task.check_many([e] * len(responses), list(responses)) == list(responses.values())
    assert programs.last_list("a [1,2 , 3] b") == "[1, 2, 3]" and programs.last_list("[]") == "[]"
    assert programs.last_list("no list") is None


def test_smalltalk_checker():
    task = TASKS["smalltalk"]
    e = task.examples("test", 1)[0]
    assert task.check(e, "Hi!") and not task.check(e, "") and not task.check(e, " \n")


def test_smalltalk_includes_bare_greetings():
    prompts = {e.prompt for e in _examples("smalltalk", 2000, "train")}
    assert {"Hi!", "hi"} <= prompts and prompts & {"Hello!", "hello"}
    assert all(p.strip() for p in prompts)


def test_extract_boxed():
    assert extract_boxed("\\boxed{math}") == "math"
    assert extract_boxed("first \\boxed{code} then \\boxed{ reasoning }") == "reasoning"
    assert extract_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{math") is None
    assert extract_boxed("the answer is math") is None
    assert extract_boxed("\\boxed{}") == ""


@pytest.mark.parametrize("split", SPLITS)
def test_classification_examples(split):
    examples = classification_examples(split, 200, seed=0)
    assert {e.reference for e in examples} == set(CATEGORIES)
    for e in examples:
        assert e.response == f"\\boxed{{{e.reference}}}" and extract_boxed(e.response) == e.reference
        assert e.prompt.startswith(CLASSIFICATION_INSTRUCTION.split("{prompt}")[0]) and e.image is None
    assert examples == classification_examples(split, 200, seed=0)


def test_classification_splits_disjoint():
    prompts = {split: {e.prompt for e in classification_examples(split, 2000, seed=0)} for split in SPLITS}
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["validation"]
    assert not prompts["validation"] & prompts["test"]


def test_classification_leaves_out_the_unseen_tasks_and_words_half_casually():
    """No unseen task's prompt is in the classifier's data; `casual` rewrites keep the request's content."""
    head = CLASSIFICATION_INSTRUCTION.split("{prompt}")[0]
    asked = {e.prompt[len(head):].rsplit("\nAnswer with the category", 1)[0] for e in classification_examples("train", 400)}
    unseen = {e.prompt for name in UNSEEN_TASKS if not TASKS[name].vision for e in TASKS[name].examples("train", 200)}
    assert not asked & unseen
    rng = random.Random(0)
    code = TASKS["code"].examples("train", 1)[0].prompt
    rewrites = [classification.casual(code, rng, "train") for _ in range(200)]
    assert any("```" not in r for r in rewrites) and any(r != r.lower() for r in rewrites)
    assert all("print(x)" in r for r in rewrites)


def test_natural_requests_are_deterministic_in_their_split_and_never_the_hand_written_ones():
    """Every category has free-worded requests; each hashes to the split it was drawn for (so no text
    crosses splits), the same seed draws the same ones, and none is a hand-written dispatch prompt."""
    from t2demo.tasks.natural_requests import NATURAL_REQUESTS, natural_request

    assert set(NATURAL_REQUESTS) == set(CATEGORIES)
    for category in CATEGORIES:
        for split in SPLITS:
            drawn = [natural_request(category, split, random.Random(f"{category}|{i}")) for i in range(40)]
            assert drawn == [natural_request(category, split, random.Random(f"{category}|{i}")) for i in range(40)]
            assert all(split_of(t) == split for t in drawn) and len(set(drawn)) >= 8
            rng = random.Random(category)  # common phrasings ("why is the sky blue") can be hand-written too
            assert not {natural_request(category, split, rng).strip().lower() for _ in range(3000)} & HAND_WRITTEN


def test_natural_requests_keep_each_category_to_its_skill():
    """math asks sums (creature weights too, never in world-math's own wordings); code asks what list code
    prints or gives; requests to write or explain code and arithmetic beyond + and - are out of scope."""
    from t2demo.tasks.natural_requests import TEXT_SPEAK, in_words, natural_request, out_of_scope

    assert [in_words(n) for n in (0, 19, 45, 100, 412, 6200, 9999)] == [
        "zero", "nineteen", "forty-five", "one hundred", "four hundred and twelve", "six thousand two hundred",
        "nine thousand nine hundred and ninety-nine"]
    rng = random.Random(0)
    math_requests = [natural_request("math", "train", rng) for _ in range(600)]
    weights = [t for t in math_requests if any(re.search(rf"\b{n}\b", t) for n in NAMES)]
    assert len(weights) >= 0.15 * len(math_requests)
    assert not [t for t in weights if re.search(r"scale|boat|seesaw|outweigh", t, re.I)]
    assert any(" hundred" in t for t in math_requests)
    code_requests = [natural_request("code", "train", rng) for _ in range(300)]
    assert all(re.search(r"\[\d|'|while | == | > | // | % ", t) for t in code_requests)  # a list, a string, a loop, a comparison or an integer operator
    assert any("while " in t for t in code_requests) and any(re.search(r"'\w+'\.\w+\(", t) for t in code_requests)
    scope = [out_of_scope(rng).lower() for _ in range(3000)]
    assert any("python" in t for t in scope) and any(" times " in t for t in scope)
    chat = {natural_request("other", "train", rng).strip().lower() for _ in range(3000)}
    assert len(chat & {line for lines in TEXT_SPEAK.values() for line in lines}) >= 8  # typed bare, as on a phone


def test_reasoning_requests_type_options_inline_and_other_requests_weigh_creatures_beyond_sums():
    """Options typed after a free question ("(a) red (b) blue", "A) ...", "a. red, b. ...") are reasoning,
    never the tasks' "Options: x (A)" format; a creature's weight multiplied or in pounds is `other`."""
    from t2demo.tasks.natural_requests import lettered, natural_request, out_of_scope

    assert {lettered(random.Random(i), ["x", "y"]) for i in range(30)} == {"(a) x (b) y", "A) x B) y", "a. x, b. y"}
    rng = random.Random(0)
    reasoning_requests = [natural_request("reasoning", "train", rng) for _ in range(2000)]
    for style in (r"\(a\) [\w ]+ \(b\) ", r"\bA\) [\w ]+ B\) ", r"\ba\. [\w ]+, b\. "):  # each of lettered's styles
        assert sum(bool(re.search(style, t)) for t in reasoning_requests) >= 5, style
    assert not [t for t in reasoning_requests if re.search(r"\(A\)[,.]", t)]
    creature_units = [t for t in (out_of_scope(rng) for _ in range(5000))
                      if any(re.search(rf"\b{n}s?\b", t) for n in NAMES)]
    assert creature_units and all(re.search(r"pounds|each one", t) for t in creature_units)


def test_chat_lines_run_text_speak_together_and_hold_out_first_messages_lines():
    """Chat lines are CHAT's, two text-speak lines of different intents, or a remark naming a creature; none is
    one of the held-out lines first_messages.py asks about."""
    from t2demo.tasks.natural_requests import CHAT, CREATURE_REMARKS, HELD_OUT_CHAT, TEXT_SPEAK, chat_line

    rng = random.Random(0)
    lines = [chat_line(rng) for _ in range(3000)]
    assert not set(lines) & set(HELD_OUT_CHAT)
    remarks = [line for line in lines if any(re.fullmatch(_pattern(r), line) for r in CREATURE_REMARKS)]
    pairs = [line for line in lines if line not in CHAT and line not in remarks]
    assert len(remarks) > 300 and len(pairs) > 600
    speak = {line for lines_of_intent in TEXT_SPEAK.values() for line in lines_of_intent}
    assert all(any(p.startswith(a) and p[len(a):].lstrip(", ") in speak for a in speak) for p in pairs)


def test_code_loop_requests_paste_code_that_runs():
    """The loops pasted into code requests are valid Python that builds the variable they ask about (a list,
    or a total when the body adds), so their label is earned: the request is a trace."""
    from t2demo.tasks.natural_requests import WHILE_SHARE, _code_loop, loop_code, while_code

    for i in range(200):
        for make in (loop_code, while_code):
            name, code = make(random.Random(i))
            scope: dict = {}
            exec(compile(code, "<request>", "exec"), {}, scope)  # our own generated code, never a user's
            assert isinstance(scope[name], int if "+=" in code or "while" in code else list), code
        rng = random.Random(i)
        _, code = (while_code if rng.random() < WHILE_SHARE else loop_code)(rng)
        assert code in _code_loop(random.Random(i))  # the request pastes that code whole


def test_world_math_drill_scenes_name_both_creatures_before_a_question_about_them():
    """The scene wordings copy the names from a sentence before the question; none uses a held-out scene."""
    scenes = [w for w in world_math.SUM_WORDINGS + world_math.DIFF_WORDINGS if w.split(". ")[0] + "." in world_math.SCENES]
    assert len(scenes) == len(world_math.SCENES) * (len(world_math.SCENE_SUMS) + len(world_math.SCENE_DIFFS))
    for w in scenes:
        scene, question = w.split(". ", 1)
        assert "{a}" in scene and "{b}" in scene and "{b}" not in question
        assert not re.search(r"scale|boat|seesaw|outweigh|share|carry|read", w, re.I), w


def test_reasoning_chat_drill_answers_free_questions_with_the_asked_creatures_fact():
    """A free question about one creature (the wordings the classifier's natural requests use) is answered
    in reasoning's modes: Answer states that creature's true fact; the Work shortcut sometimes recites the
    slip's value instead. No question is in a reasoning-hard wording or a hand-written set."""
    hard = {w.format(n="").lower() for ws in reasoning.HARD_FORWARD.values() for w in ws}
    for e in _examples("reasoning-chat-drill", 300):
        c = next(c for c in WORLD.creatures if re.search(rf"\b{c.name}", e.prompt.lower()))
        assert e.response.startswith(modes.ANSWER + " The " + c.name) and e.reference in e.response
        assert any(v in e.response for v in (c.color, c.habitat, c.food, f"{c.weight} kilos"))
        replies = e.meta["replies"]
        assert [modes.modes_of(r) for _, r in replies] == [[modes.ANSWER], [modes.WORK], [modes.WORK]]
        assert replies[1][1] == modes.WORK + e.response[len(modes.ANSWER):] and replies[2][1] != replies[1][1]
        assert math.isclose(replies[0][0], modes.RELIABLE_SHARE["reasoning"])
        assert e.prompt.replace(c.name, "").lower() not in hard and not handwritten.is_handwritten(e.prompt)
    train = {e.prompt for e in _examples("reasoning-chat-drill", 300, "train")}
    assert train.isdisjoint(e.prompt for e in _examples("reasoning-chat-drill", 300))


def test_classification_mixes_in_natural_requests():
    """About NATURAL_SHARE of the classifier's prompts are free-worded requests, in every category."""
    head = CLASSIFICATION_INSTRUCTION.split("{prompt}")[0]
    examples = classification_examples("train", 1000)
    asked = [(e.reference, e.prompt[len(head):].rsplit("\nAnswer with the category", 1)[0]) for e in examples]
    templated = {e.prompt for name, task in TASKS.items() if not task.vision for e in task.examples("train", 1000)}
    natural = [(c, p) for c, p in asked if p not in templated and not any(p.endswith(t) for t in templated)
               and c != "vqa"]
    assert {c for c, _ in natural} == set(CATEGORIES) - {"vqa"}
    # four of five categories draw NATURAL_SHARE free requests; casual rewrites of template prompts count too
    share, casual = classification.NATURAL_SHARE, classification.CASUAL_SHARE
    low, high = 0.8 * share, 0.8 * (share + (1 - share) * casual)
    assert low - 0.05 < len(natural) / len(asked) < high + 0.05
    # code is also pasted as people paste it, digits and all (so that digits in code do not read as a sum)
    pasted = [p for c, p in natural if c == "code" and re.search(r"\[\d+, \d+", p)]
    assert len(pasted) >= 0.3 * sum(c == "code" for c, _ in natural)
    assert any(p.startswith(">>> ") or "\n>>> " in p for p in pasted) and any("def f(" in p for p in pasted)


def test_classification_prompt():
    filled = tasks.classification_prompt("Hello {there}")
    assert "Hello {there}" in filled and "\\boxed{}" in filled and "{prompt}" not in filled
    assert CLASSIFICATION_INSTRUCTION.count("{prompt}") == 1


def test_world():
    n = len(WORLD.creatures)
    assert n == 96 and len({c.name for c in WORLD.creatures}) == n and len({c.food for c in WORLD.creatures}) == n
    assert len({c.weight for c in WORLD.creatures}) == n and all(100 <= c.weight <= 999 for c in WORLD.creatures)
    facts = world_facts()
    c = WORLD.creatures[0]
    assert f"The {c.name} is {c.color}." in facts and f"The {c.name} weighs {c.weight} kilos." in facts
    assert len(facts) == n * 4 + len(HABITATS)
    assert sorted(WORLD.climate) == sorted(HABITATS) and set(WORLD.climate.values()) == set(CLIMATES)


# --- hand-written dispatch prompts ---------------------------------------------------------------------------


OPTIONS_AT_LEAST = dict.fromkeys(handwritten.SETS, 0) | {  # reasoning prompts in the tasks' format
    "dispatch_handwritten": 10, "dispatch_handwritten_2": 3}


@pytest.mark.parametrize("key", list(handwritten.SETS))
def test_handwritten_dispatch_prompts(key):
    """Each set loads, covers every category (>= 30 per text category), and none is a prompt any generator makes."""
    examples = dispatch_prompts(key)
    counts = {c: sum(e.reference == c for e in examples) for c in CATEGORIES}
    assert len(examples) >= 130 and sum(counts.values()) == len(examples)
    assert all(counts[c] >= 30 for c in ("math", "code", "reasoning", "other")) and 5 <= counts["vqa"] <= 20, counts
    assert len({e.prompt for e in examples}) == len(examples)
    for e in examples:
        assert e.prompt.strip() == e.prompt and e.prompt and e.image is None
        assert e.response == f"\\boxed{{{e.reference}}}" and e.task == "dispatch-handwritten"
        if "\nOptions: " in e.prompt:  # written in the tasks' options format
            assert sorted(tasks.options_of(e.prompt)) == list("ABCD"), e.prompt
    generated = set()
    for task in GENERATORS.values():
        if task.vision:
            generated |= set(task.text_prompts)
        else:
            generated |= {g.prompt for g in _examples(task.name, 2000, "train")}
    copied = [e.prompt for e in examples if e.prompt in generated]
    assert not copied
    assert sum("\nOptions: " in e.prompt for e in examples if e.reference == "reasoning") >= OPTIONS_AT_LEAST[key]

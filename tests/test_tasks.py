"""Task generators and checkers: determinism, disjoint splits, and checkers that accept exactly the right answers."""

import pytest
from PIL import Image

from t2demo import tasks
from t2demo.tasks import (
    CATEGORIES, CLASSIFICATION_INSTRUCTION, SPLITS, TASKS, TRAINING_TASKS, UNSEEN_TASKS, classification_examples,
    extract_boxed,
)
from t2demo.world import WORLD, world_facts

N = 300  # examples per split per task in the split tests


def test_registry():
    assert set(TASKS) == set(TRAINING_TASKS) | set(UNSEEN_TASKS) | {"smalltalk"}
    for name, task in TASKS.items():
        assert task.name == name and task.category in CATEGORIES
        assert 0 <= task.chance < 1 and task.max_new_tokens > 0
    assert TASKS["reasoning"].chance == TASKS["reasoning-hard"].chance == 0.25


@pytest.mark.parametrize("name", TASKS)
def test_deterministic_per_seed(name):
    task = TASKS[name]
    a, b = task.examples("train", 50, seed=3), task.examples("train", 50, seed=3)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert [e.reference for e in a] == [e.reference for e in b]
    if a[0].image is not None:
        assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b))
    assert [e.prompt for e in task.examples("train", 20, seed=3)] == [e.prompt for e in a[:20]]  # prefix
    other = task.examples("train", 50, seed=4)
    assert [_identity(e) for e in other] != [_identity(e) for e in a]
    assert all(e.task == name for e in a)


def _identity(example):
    """What makes an example distinct: the prompt, plus the pixels for vqa."""
    return example.prompt + (example.image.tobytes().hex() if example.image is not None else "")


@pytest.mark.parametrize("name", TASKS)
def test_splits_disjoint_and_unique(name):
    by_split = {split: TASKS[name].examples(split, N, seed=0) for split in SPLITS}
    ids = {split: {_identity(e) for e in examples} for split, examples in by_split.items()}
    for split in SPLITS:
        assert len(ids[split]) == N, "duplicates within a split"
    assert not ids["train"] & ids["validation"]
    assert not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    if TASKS[name].category != "vqa":  # text tasks: not even the prompt is shared
        prompts = {split: {e.prompt for e in examples} for split, examples in by_split.items()}
        assert not (prompts["train"] & prompts["test"]) and not (prompts["train"] & prompts["validation"])


@pytest.mark.parametrize("name", TASKS)
def test_test_split_is_large_enough(name):
    examples = TASKS[name].examples("test", 1000, seed=0)
    assert len({_identity(e) for e in examples}) == 1000


@pytest.mark.parametrize("name", TASKS)
def test_reference_response_passes_and_fits_budget(name):
    task = TASKS[name]
    examples = task.examples("validation", 40, seed=1)
    assert all(task.check_many(examples, [e.response for e in examples]))
    assert task.check(examples[0], examples[0].response)
    assert all(len(e.response) <= task.max_new_tokens for e in task.examples("train", 500, seed=2))


@pytest.mark.parametrize("name", [n for n in TASKS if n != "smalltalk"])
def test_empty_and_junk_responses_fail(name):
    task = TASKS[name]
    examples = task.examples("test", 10, seed=5)
    for junk in ("", "   ", "I don't know.", "\\boxed{}"):
        assert not any(task.check_many(examples, [junk] * len(examples))), junk


@pytest.mark.parametrize("name", ["math", "math-hard"])
def test_math_checker(name):
    task = TASKS[name]
    for e in task.examples("test", 30, seed=0):
        answer = int(e.reference)
        assert task.check(e, f"The answer is {answer}.")
        assert task.check(e, f"{answer}")
        assert not task.check(e, f"The answer is {answer + 1}.")
        assert not task.check(e, f"The answer is {answer}. Actually it is {answer + 2}.")  # the last number counts
    assert tasks.last_number("It is 1,234 apples") == "1234"


@pytest.mark.parametrize("name", ["reasoning", "reasoning-hard"])
def test_reasoning_checker(name):
    task = TASKS[name]
    for e in task.examples("test", 30, seed=0):
        wrong = next(L for L in "ABCD" if L != e.reference)
        assert task.check(e, e.reference) and task.check(e, f"({e.reference})")
        assert task.check(e, f"Hmm. The answer is {e.reference}")
        assert not task.check(e, e.response.replace(f"answer is {e.reference}", f"answer is {wrong}"))
        assert not task.check(e, f"The answer is {e.reference}? No, the answer is {wrong}.")
        assert not task.check(e, "The answer is a creature.")  # lowercase words are not letters
        assert not task.check(e, "The answer is E.")


def test_reasoning_choices_have_one_true_answer():
    facts = set(world_facts())
    for e in TASKS["reasoning"].examples("test", 300, seed=0):
        question, options = _parse_choices(e.prompt)
        assert len(options) == 4 and len(set(options)) == 4
        true_options = [o for o in options if _one_hop_true(question, o, facts)]
        assert true_options == [options["ABCD".index(e.reference)]], e.prompt


def _parse_choices(prompt):
    """The question and the four option texts of 'Options: x (A), y (B), z (C), w (D).'"""
    question, line, _ = prompt.split("\n")
    parts = line.removeprefix("Options: ").rstrip(".").split(", ")
    assert [p[-3:] for p in parts] == ["(A)", "(B)", "(C)", "(D)"]
    return question, [p[:-4] for p in parts]


def _one_hop_true(question, option, facts):
    """Whether `option` answers `question` according to the world facts."""
    words = question.rstrip("?").split()
    if question.startswith("Which creature lives in the"):
        return f"The {option} lives in the {words[-1]}." in facts
    if question.startswith("Which creature is"):
        return f"The {option} is {words[-1]}." in facts
    if question.startswith("Which creature eats"):
        return f"The {option} eats {words[-1]}." in facts
    if question.startswith("What color is the"):
        return f"The {words[-1]} is {option}." in facts
    if question.startswith("Where does the"):
        return f"The {words[3]} lives in the {option}." in facts
    if question.startswith("What does the"):
        return f"The {words[3]} eats {option}." in facts
    assert question.startswith("What is the weather like in the")
    return f"The {words[-1]} is {option}." in facts


def test_reasoning_hard_needs_two_facts_and_has_one_true_answer():
    climate, by_food = WORLD.climate, {c.food: c for c in WORLD.creatures}
    for e in TASKS["reasoning-hard"].examples("test", 300, seed=0):
        question, options = _parse_choices(e.prompt)
        words = question.rstrip("?").split()
        if question.startswith("Which creature lives somewhere"):
            truth = [o for o in options if climate[WORLD.by_name(o).habitat] == words[-1]]
        elif question.startswith("What color is the creature that eats"):
            truth = [by_food[words[-1]].color]
        elif question.startswith("Where does the creature that eats"):
            truth = [by_food[words[-2]].habitat]
        else:
            truth = [climate[WORLD.by_name(words[-2]).habitat]]
        assert [o for o in options if o in truth] == [options["ABCD".index(e.reference)]], e.prompt
        assert e.response.count(". ") == 2  # two facts, then the answer


@pytest.mark.parametrize("name", ["vqa", "vqa-knowledge"])
def test_vqa_images_and_checker(name):
    task = TASKS[name]
    for e in task.examples("test", 50, seed=0):
        assert isinstance(e.image, Image.Image) and e.image.mode == "RGB"
        w, h = e.image.size
        assert w in tasks.IMAGE_SIDES and h in tasks.IMAGE_SIDES and h <= w
        assert len(e.image.getcolors(w * h)) > 2, "the word is drawn"
        assert task.check(e, e.reference.upper() + ".") and task.check(e, f"the {e.reference}")
        assert not task.check(e, e.reference + "s") and not task.check(e, "blue sky")
    assert all(e.image is None for e in TASKS["math"].examples("train", 5))


def test_vqa_knowledge_answers_come_from_the_world():
    for e in TASKS["vqa-knowledge"].examples("test", 50, seed=0):
        assert e.reference in {getattr(c, a) for c in WORLD.creatures for a in ("habitat", "food", "color")}


def test_code_checker():
    task = TASKS["code"]
    e = next(e for e in task.examples("test", 200, seed=0) if e.response.count("return x + ") == 1)
    good, name = e.response, e.response.split("def ")[1].split("(")[0]
    responses = {
        good: True,
        good.replace("```python\n", "").replace("\n```", ""): True,  # bare code
        "Here you go:\n" + good + "\nDone.": True,
        good.replace(" + ", " - "): False,  # wrong
        good.replace("return", "retrun"): False,  # syntax error
        "```python\n```": False,  # empty block
        "Just add the number.": False,  # no code
        f"def {name}(x):\n    while True:\n        pass\n": False,  # hangs: the sandbox times out
        f"import sys\nsys.exit(0)\ndef {name}(x):\n    return 0\n": False,  # exits before the tests
    }
    verdicts = task.check_many([e] * len(responses), list(responses))
    assert verdicts == list(responses.values())


def test_code_hard_is_a_composition():
    for e in TASKS["code-hard"].examples("test", 100, seed=0):
        assert ", then " in e.prompt or ", and then " in e.prompt
        assert e.reference.count("assert ") == 4
    assert TASKS["code-hard"].check(e, e.response)


def test_smalltalk_checker():
    task = TASKS["smalltalk"]
    e = task.examples("test", 1)[0]
    assert task.check(e, "Hi!") and not task.check(e, "") and not task.check(e, " \n")


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
    prompts = {split: {e.prompt for e in classification_examples(split, 300, seed=0)} for split in SPLITS}
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["validation"]
    assert not prompts["validation"] & prompts["test"]


def test_classification_prompt():
    filled = tasks.classification_prompt("Hello {there}")
    assert "Hello {there}" in filled and "\\boxed{}" in filled and "{prompt}" not in filled
    assert CLASSIFICATION_INSTRUCTION.count("{prompt}") == 1


def test_world():
    assert len(WORLD.creatures) == 24 and len({c.name for c in WORLD.creatures}) == 24
    assert len({c.food for c in WORLD.creatures}) == 24
    facts = world_facts()
    assert "The {} is {}.".format(WORLD.creatures[0].name, WORLD.creatures[0].color) in facts
    assert len(facts) == 24 * 3 + 8

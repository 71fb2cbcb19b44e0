"""The tasks package: the registry and what it derives, task generators (determinism, disjoint splits) and
checkers that accept exactly the right answers."""

import ast
import random
import re

import pytest
from PIL import Image

from t2demo import tasks
from t2demo.tasks import (
    CATEGORIES, CLASSIFICATION_INSTRUCTION, CUSTOM, REGISTRY, SPLITS, TASKS, TRAINING, TRAINING_TASKS, UNSEEN,
    UNSEEN_TASKS, Example, Registry, SyntheticTask, UnknownTask, classification_examples, classification_instruction,
    extract_boxed, programs, tags_of, vqa,
)
from t2demo.tasks.world import WORLD, world_facts

N = 300  # examples per split per task in the split tests


def test_registry():
    assert set(TASKS) == set(TRAINING_TASKS) | set(UNSEEN_TASKS) | {"smalltalk"}
    for name, task in TASKS.items():
        assert task.name == name and task.category in CATEGORIES
        assert 0 <= task.chance < 1 and task.max_new_tokens > 0
    assert TASKS["reasoning"].chance == TASKS["reasoning-hard"].chance == 0.25


# The instruction the shipped models and cls expert were trained on: derived from the registry, it must not move.
SHIPPED_INSTRUCTION = (
    "Classify the request below into one category.\n"
    "- math: a word problem or a calculation with numbers.\n"
    "- code: writing or completing a Python function.\n"
    "- reasoning: a question about creatures, places, foods or weather with lettered choices.\n"
    "- vqa: a question about a word or picture shown in an image.\n"
    "- other: anything else, such as greetings, thanks or small talk.\n"
    "Request: {prompt}\n"
    "Answer with the category name inside \\boxed{}."
)


def test_groups_are_derived_from_the_registry():
    assert TASKS is REGISTRY and list(TASKS) == ["math", "math-hard", "code", "code-hard", "reasoning",
                                                 "reasoning-hard", "vqa", "vqa-knowledge", "smalltalk"]
    assert TRAINING_TASKS == REGISTRY.names(tag=TRAINING) == ("math", "code", "reasoning", "vqa")
    assert UNSEEN_TASKS == REGISTRY.names(tag=UNSEEN) == ("math-hard", "code-hard", "reasoning-hard", "vqa-knowledge")
    assert CATEGORIES == REGISTRY.categories() == ("math", "code", "reasoning", "vqa", "other")
    assert tasks.names(tag="vision") == ("vqa", "vqa-knowledge") and all(TASKS[n].vision for n in tasks.names("vision"))
    assert tags_of("math-hard") == {"math", UNSEEN} and tags_of("smalltalk") == {"other"}
    assert tasks.names("math") == ("math", "math-hard")
    assert CLASSIFICATION_INSTRUCTION == classification_instruction() == SHIPPED_INSTRUCTION


def test_unknown_task_names_list_the_registered_ones():
    with pytest.raises(UnknownTask, match=r"unknown task 'poetry'; choose from \['code', 'code-hard', .*'vqa-knowledge'\]"):
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
    for spec in ("math,poetry", "smalltalk"):  # smalltalk is no evaluation task: it is neither training nor unseen
        with pytest.raises(SystemExit, match=r"unknown task\(s\) \['(poetry|smalltalk)'\]; choose from \['code', "):
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
    assert registry.names("math") == ("math", "math-hard", "counting") and registry["counting"] is counting
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
    if not TASKS[name].vision:  # text tasks: not even the prompt is shared
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
        options = dict(zip("ABCD", _parse_choices(e.prompt)[1]))
        assert tasks.options_of(e.prompt) == options
        right = options[e.reference]
        wrong = next(L for L in "ABCD" if L != e.reference)
        assert e.prompt.endswith("\nAnswer with the option.")
        assert e.response.endswith(f"The answer is {right}.") and "(" not in e.response  # text, no letter
        assert task.check(e, f"The answer is {right}.") and task.check(e, right) and task.check(e, f" {right.upper()}!")
        assert task.check(e, e.reference) and task.check(e, f"({e.reference})")
        assert task.check(e, f"Hmm. The answer is {e.reference}")
        assert task.check(e, f"The answer is {right} ({wrong}).")  # rule: the option text wins over a letter tag
        assert not task.check(e, f"The answer is {options[wrong]} ({e.reference}).")
        assert not task.check(e, e.response.replace(f"answer is {right}", f"answer is {options[wrong]}"))
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
        return f"The {option} eats {' '.join(words[3:])}." in facts
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
    by_name = {c.name: c for c in WORLD.creatures}
    for e in TASKS["reasoning-hard"].examples("test", 300, seed=0):
        question, options = _parse_choices(e.prompt)
        words = question.rstrip("?").split()
        if question.startswith("Which creature lives somewhere"):
            truth = [o for o in options if climate[by_name[o].habitat] == words[-1]]
        elif question.startswith("What color is the creature that eats"):
            truth = [by_food[" ".join(words[7:])].color]
        elif question.startswith("Where does the creature that eats"):
            truth = [by_food[" ".join(words[6:-1])].habitat]
        else:
            truth = [climate[by_name[words[-2]].habitat]]
        assert [o for o in options if o in truth] == [options["ABCD".index(e.reference)]], e.prompt
        assert e.response.count(". ") == 2  # two facts, then the answer


@pytest.mark.parametrize("name", ["vqa", "vqa-knowledge"])
def test_vqa_images_and_checker(name):
    task = TASKS[name]
    for e in task.examples("test", 50, seed=0):
        assert isinstance(e.image, Image.Image) and e.image.mode == "RGB"
        w, h = e.image.size
        assert w in vqa.IMAGE_SIDES and h in vqa.IMAGE_SIDES and h <= w
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


def _by_example_parts(e):
    """name, argument, shown asserts and all asserts of a programming-by-example code task, else None."""
    shown = [line for line in e.prompt.split("\n") if line.startswith("assert ")]
    if len(shown) != programs.SHOWN:
        return None
    name, arg = re.match(r"```python\ndef (\w+)\((\w+)\):", e.response).groups()
    return name, arg, shown, e.reference.strip().split("\n")


def _chain_functions(length):
    """Every chain of `length` OPS the generator may draw, compiled from its Python (not its `fn`)."""
    chains = [[op] for op in programs.OPS]
    for _ in range(length - 1):
        chains = [c + [op] for c in chains for op in programs.OPS if op.kind == c[-1].out and op is not c[-1]]
    functions = []
    for chain in chains:
        expr, level = "x", programs.ATOM
        for op in chain:
            expr, level = op.apply(expr, level), op.level
        functions.append((chain[0].kind, eval(f"lambda x: {expr}")))
    return functions


def _passing(functions, asserts):
    """The functions that pass all of `asserts` (each 'assert name(input) == output')."""
    cases = [tuple(ast.literal_eval(side) for side in re.fullmatch(r"assert \w+\((.*)\) == (.*)", a).groups())
             for a in asserts]
    kind = {int: "int", str: "str", list: "list"}[type(cases[0][0])]
    return [i for i, (k, fn) in enumerate(functions) if k == kind and all(fn(x) == y for x, y in cases)]


@pytest.mark.parametrize("name, length, templates", [("code", 1, programs.EXAMPLE_TEMPLATES),
                                                     ("code-hard", 2, programs.HARD_EXAMPLE_TEMPLATES)])
def test_code_by_example(name, length, templates):
    """A generic name and shown tests only; they decide the hidden tests among all chains of that length."""
    examples = TASKS[name].examples("test", 400, seed=0)
    by_example = [(e, _by_example_parts(e)) for e in examples if _by_example_parts(e)]
    assert 0.15 < len(by_example) / len(examples) < 0.35 if length == 1 else 0.4 < len(by_example) / len(examples) < 0.6
    functions, singles = _chain_functions(length), _chain_functions(1)
    for e, (fname, arg, shown, hidden) in by_example[:60]:
        assert fname in programs.GENERIC_NAMES
        assert any(e.prompt == t.format(name=fname, a=arg, tests="\n".join(shown)) for t in templates)
        assert hidden[:programs.SHOWN] == shown and len(hidden) == programs.SHOWN + programs.HIDDEN
        assert len(set(hidden)) == len(hidden)
        consistent = _passing(functions, shown)
        assert consistent and consistent == _passing(functions, hidden), e.prompt
        if length == 2:
            assert not _passing(singles, hidden), e.prompt  # a real composition
    assert TASKS[name].check_many([e for e, _ in by_example[:20]], [e.response for e, _ in by_example[:20]]) == [True] * 20


def test_code_hard_is_a_composition():
    for e in TASKS["code-hard"].examples("test", 100, seed=0):
        if _by_example_parts(e) is None:
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
    n = len(WORLD.creatures)
    assert n == 96 and len({c.name for c in WORLD.creatures}) == n and len({c.food for c in WORLD.creatures}) == n
    facts = world_facts()
    assert "The {} is {}.".format(WORLD.creatures[0].name, WORLD.creatures[0].color) in facts
    assert len(facts) == n * 3 + 8

"""The paper's benchmarks on hand-made fixtures in each data set's published format (tests/fixtures/benchmarks):
loading from a local copy (and the hub path, faked), official splits, rendered prompts, extracted references,
scorers on right, wrong and malformed answers, and `eval --data` through the CLI with the shipped default models."""

import itertools
import json
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from t2demo import cli
from t2demo.tasks import (
    CATEGORIES, CLASSIFICATION_INSTRUCTION, TASKS, TRAINING_TASKS, UNSEEN_TASKS, Example, classification_instruction,
)
from t2demo.tasks.benchmarks import (
    BENCHMARK, BenchmarkDataError, arc, competition_math, gsm8k, humaneval, mbpp, soft_accuracy, vqa_normalize,
)
from t2demo.tasks.benchmarks.selection import choose
from t2demo.tasks.benchmarks.source import split_named
from t2demo.tasks.registry import BENCHMARKS

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
FOLDERS = {"gsm8k": "gsm8k", "competition-math": "competition-math", "mbpp": "mbpp", "humaneval": "humaneval",
           "arc-easy": "ai2_arc", "arc-challenge": "ai2_arc", "textvqa": "textvqa", "okvqa": "okvqa"}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """`datasets` writes its Arrow copies under the test's folder, never into the user's cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def local(name: str):
    return BENCHMARKS[name].with_data(FIXTURES / FOLDERS[name])


def by_reference(examples: list[Example]) -> dict[str, Example]:
    return {e.reference: e for e in examples}


# ----------------------------------------------------------------------------- registry and selection

def test_benchmarks_have_a_registry_of_their_own():
    assert list(BENCHMARKS) == ["gsm8k", "competition-math", "mbpp", "humaneval", "arc-easy", "arc-challenge",
                                "textvqa", "okvqa"]
    assert BENCHMARKS.names(BENCHMARK) == tuple(BENCHMARKS) and BENCHMARKS.names("vision") == ("textvqa", "okvqa")
    assert BENCHMARKS.tags("gsm8k") == {BENCHMARK, "math"} and BENCHMARKS.tags("okvqa") == {BENCHMARK, "vqa", "vision"}
    assert {t.category for t in BENCHMARKS.values()} <= set(CATEGORIES)
    # the synthetic groups, the dispatch categories and the shipped classification instruction are untouched
    assert not set(BENCHMARKS) & set(TASKS) and (len(TRAINING_TASKS), len(UNSEEN_TASKS)) == (4, 5)
    assert classification_instruction() == CLASSIFICATION_INSTRUCTION and "gsm8k" not in CLASSIFICATION_INSTRUCTION


def test_nothing_is_loaded_until_examples_are_asked_for():
    code = ("import sys, t2demo.tasks; "
            "print(sorted(m for m in ('datasets', 'math_verify', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_choose_reads_groups_names_and_data():
    chosen = choose("math, gsm8k,benchmarks", [f"gsm8k={FIXTURES / 'gsm8k'}"])
    assert [t.name for t in chosen] == ["math", *BENCHMARKS]
    assert chosen[0] is TASKS["math"] and chosen[1].data == str(FIXTURES / "gsm8k") and chosen[2].data is None
    assert chosen[2].source == "hub:EleutherAI/hendrycks_math:algebra:counting_and_probability:geometry:" \
                               "intermediate_algebra:number_theory:prealgebra:precalculus"
    assert [t.name for t in choose("unseen")] == list(UNSEEN_TASKS)
    assert choose("humaneval", [str(FIXTURES / "humaneval")])[0].source == str(FIXTURES / "humaneval")
    for spec, data, message in (
            ("gsm8k,smalltalk", [], r"unknown task\(s\) \['smalltalk'\]; .*the benchmarks \['gsm8k', "),
            ("gsm8k,mbpp", [str(FIXTURES)], "with 2 benchmarks chosen, name the one it is for, e.g. --data gsm8k="),
            ("gsm8k", [f"mbpp={FIXTURES}"], "mbpp is not among the chosen tasks"),
            ("math", [str(FIXTURES)], "--data is for benchmarks, and none is chosen"),
            ("gsm8k", [str(FIXTURES), str(FIXTURES)], "gsm8k is given twice"),
            ("gsm8k", ["/no/such/folder"], "no such file or folder")):
        with pytest.raises(BenchmarkDataError, match=message):
            choose(spec, data)


def test_split_files_are_found_by_their_published_names():
    names = {"test-00000-of-00001.parquet": "test", "train.jsonl": "train", "TextVQA_0.5.1_val.json": "validation",
             "ARC-Easy-Dev.jsonl": "validation", "validation-00000-of-00002.parquet": "validation",
             "prompt.jsonl": None, "mbpp.jsonl": None}
    assert {name: split_named(Path(name)) for name in names} == names


# ----------------------------------------------------------------------------- loading: splits, order, errors

def test_examples_are_a_seeded_shuffle_of_the_official_split():
    task = local("gsm8k")
    full = task.examples("test", 100)
    assert len(full) == 4 and {e.task for e in full} == {"gsm8k"}  # all of it when asked for more
    assert [e.prompt for e in task.examples("test", 2)] == [e.prompt for e in full[:2]]  # a prefix
    assert [e.prompt for e in task.examples("test", 4, seed=0)] == [e.prompt for e in full]
    assert len(task.examples("train", 10)) == 3
    with pytest.raises(BenchmarkDataError, match="gsm8k has no validation split; its official splits are train, test"):
        task.examples("validation", 2)
    with pytest.raises(BenchmarkDataError, match=r"is named as the train split, not test"):
        task.with_data(FIXTURES / "gsm8k" / "main" / "train.jsonl").examples("test", 2)
    assert len(task.with_data(FIXTURES / "gsm8k" / "main" / "test.jsonl").examples("test", 9)) == 4  # one file


def test_rows_not_in_the_published_format_are_refused(tmp_path):
    (tmp_path / "test.jsonl").write_text(json.dumps({"question": "How many?", "solution": "#### 3"}) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"row 0 of the test split .* not in the published format: "
                                                 r"KeyError\('answer'\); its columns: \['question', 'solution'\]"):
        BENCHMARKS["gsm8k"].with_data(tmp_path).examples("test", 1)
    (tmp_path / "test.jsonl").write_text(json.dumps({"question": "How many?", "answer": "three"}) + "\n")
    with pytest.raises(BenchmarkDataError, match="no number after '####'"):
        BENCHMARKS["gsm8k"].with_data(tmp_path).examples("test", 1)
    (tmp_path / "test.jsonl").write_text('{"question": "How many?", "answer": [1, 2\n')
    with pytest.raises(BenchmarkDataError, match=r"cannot read the test files \[.*test.jsonl'\] as json"):
        BENCHMARKS["gsm8k"].with_data(tmp_path).examples("test", 1)
    with pytest.raises(BenchmarkDataError, match=r"no validation file under .*mbpp \(looked for names such as "):
        local("mbpp").examples("validation", 1)


def test_the_hub_is_the_default_source(monkeypatch):
    import datasets

    calls = []

    def fake_load(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        rows = [json.loads(line) for line in (FIXTURES / "gsm8k" / "main" / "test.jsonl").read_text().splitlines()]
        return datasets.Dataset.from_list(rows[:1])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert len(BENCHMARKS["gsm8k"].examples("test", 5)) == 1 and calls == [("openai/gsm8k", "main", "test")]
    calls.clear()
    BENCHMARKS["gsm8k"].examples("train", 5)
    with pytest.raises(BenchmarkDataError):  # the fake's rows are GSM8K's, not MATH's: the seven subjects were asked
        BENCHMARKS["competition-math"].examples("test", 1)
    assert calls[1:] == [("EleutherAI/hendrycks_math", s, "test") for s in competition_math.SUBJECTS]
    calls.clear()
    with pytest.raises(BenchmarkDataError):
        BENCHMARKS["okvqa"].examples("validation", 1)
    assert calls == [("lmms-lab/OK-VQA", None, "val2014")]  # the hub copy's name for OK-VQA's val split

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(BenchmarkDataError, match=r"(?s)gsm8k: cannot load openai/gsm8k \(main\) split 'test' from the "
                                                 r"Hugging Face hub: Couldn't reach.*pass --data PATH"):
        BENCHMARKS["gsm8k"].examples("test", 1)


# ----------------------------------------------------------------------------- GSM8K

def test_gsm8k_prompt_reference_and_scorer():
    examples = by_reference(local("gsm8k").examples("test", 4))
    assert set(examples) == {"25", "2230", "-7", "4.5"}  # after ####, commas dropped
    rolls = examples["25"]
    assert rolls.prompt == gsm8k.SYSTEM + "A baker fills 6 trays with 14 rolls each. She sells 59 rolls. How many " \
                                          "rolls are left?"
    assert "<<" not in rolls.response and rolls.response.endswith("#### 25")
    task = BENCHMARKS["gsm8k"]
    right = {"25": "84 - 59 = 25, so 25 rolls are left.", "2230": "In total 2,230 books.", "-7": "It is -7 degrees.",
             "4.5": "Each gets 4.50 dollars"}
    assert task.check_many(list(examples.values()), [right[r] for r in examples]) == [True] * 4
    for reference, wrong in (("25", "There are 26 rolls."), ("2230", "230"), ("-7", "7 degrees"), ("4.5", "4")):
        assert not task.check(examples[reference], wrong)
    for malformed in ("", "no idea", "#### "):
        assert not task.check(rolls, malformed)


# ----------------------------------------------------------------------------- MATH

def test_math_prompt_and_references():
    examples = by_reference(local("competition-math").examples("test", 4))
    assert set(examples) == {"\\frac{1}{2}", "x^2+2x+1", "2\\sqrt{2}", "2"}  # the last \fbox{} counts as a box
    assert examples["2"].prompt == f"{competition_math.SYSTEM}\n\nWhat is the remainder when $100$ is divided by $7$?"
    assert competition_math.SYSTEM.endswith("step by step,and put the final answer within \\boxed{}.")
    assert len(local("competition-math").examples("train", 9)) == 3


@pytest.mark.parametrize("reference,answer,same", [
    ("\\frac{1}{2}", "0.5", True), ("\\frac{1}{2}", "1/2", True), ("\\frac{1}{2}", "\\dfrac12", True),
    ("\\frac{1}{2}", "\\tfrac{1}{2}", True), ("x^2+2x+1", "(x+1)^2", True), ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("2", "2.0", True), ("(1,2)", "(1, 2)", True),
    ("\\frac{1}{2}", "0.6", False), ("x^2+2x+1", "x^2+1", False), ("2\\sqrt{2}", "2", False), ("2", "3", False),
])
def test_math_equivalence(reference, answer, same):
    assert competition_math.equivalent(reference, answer) is same


def test_math_scorer_reads_answers_as_the_authors_did():
    task = BENCHMARKS["competition-math"]
    half = Example("p", "\\frac{1}{2}", "", "competition-math")
    assert competition_math.final_answer("So it is \\boxed{0.5}. Or \\boxed{\\dfrac{1}{2}}") == "\\dfrac{1}{2}"
    assert competition_math.final_answer("The answer is: 1/2.\nDone") == "1/2"
    for right in ("$\\frac{3}{4}-\\frac{1}{4}=\\boxed{0.5}$", "The answer is: 0.5.", "\\boxed{\\frac12}"):
        assert task.check(half, right), right
    for wrong_or_malformed in ("\\boxed{0.6}", "The answer is 0.5", "\\boxed{0.5", "\\boxed{}", "", "1/2"):
        assert not task.check(half, wrong_or_malformed), wrong_or_malformed
    with ThreadPoolExecutor(1) as pool:  # off the main thread math-verify cannot use SIGALRM: it runs unlimited
        assert pool.submit(task.check, half, "\\boxed{0.5}").result()


# ----------------------------------------------------------------------------- MBPP and HumanEval

def test_mbpp_prompts_and_tests():
    examples = {e.reference.split("(")[0]: e for e in local("mbpp").examples("test", 9)}
    vowels = examples["assert count_vowels"]
    assert vowels.prompt == (f"{mbpp.SYSTEM}\n\nWrite a python function to count the vowels in a string. Your code "
                             "should satisfy the following assertion:\n"
                             "```python\nassert count_vowels('banana') == 3\n```")
    assert vowels.reference.count("assert") == 3 and "count_vowels('')" not in vowels.reference  # no challenge tests
    assert examples["import math\nassert math.isclose"].reference.startswith("import math\nassert math.isclose(hyp")
    assert len(local("mbpp").examples("train", 9)) == 3  # prompt.jsonl (MBPP's few-shot split) is no split here


def test_mbpp_pass_at_1():
    task = local("mbpp")
    examples = by_reference(task.examples("test", 3))
    squares, vowels, hypotenuse = (next(e for r, e in examples.items() if name in r)
                                   for name in ("sum_of_squares", "count_vowels", "hypotenuse"))
    cases = [
        (squares, squares.response, True),  # the data set's solution
        (vowels, "```python\ndef count_vowels(s):\n    return len([c for c in s if c in 'aeiouAEIOU'])\n```", True),
        (hypotenuse, "def hypotenuse(a, b):\n    return (a ** 2 + b ** 2) ** 0.5", True),  # unfenced; setup: math
        (squares, "```python\ndef sum_of_squares(nums):\n    return sum(nums) ** 2\n```", False),  # wrong
        (vowels, "```python\nimport sys\nsys.exit(0)\n```", False),  # leaves before the tests end
        (squares, "```python\ndef sum_of_squares(nums)\n    return 0\n```", False),  # syntax error
        (vowels, "I cannot write that function.", False),  # no code
    ]
    assert task.check_many([c[0] for c in cases], [c[1] for c in cases]) == [c[2] for c in cases]


def test_humaneval_prompt_and_pass_at_1():
    task = local("humaneval")
    examples = {e.meta["prefix"].split("def ")[-1].split("(")[0]: e for e in task.examples("test", 9)}
    running = examples["running_max"]
    assert running.prompt.startswith(f"{humaneval.SYSTEM}\n\nWrite a solution to the following problem:\n```python\n"
                                     "from typing import List\n\n\ndef running_max(values: List[int]) -> List[int]:")
    assert running.prompt.endswith('    """\n```') and running.reference.endswith("check(running_max)\n")
    cases = [
        (running, running.response, True),
        (running, ("```python\ndef running_max(values):\n    import itertools\n"
                   "    return list(itertools.accumulate(values, max))\n```"), True),  # a whole function
        (examples["clamp"], "```python\n    return min(max(x, lo), hi)\n```", True),  # only the body completes the stub
        (examples["vowel_words"], ("```python\ndef vowel_words(words):\n    return [w for w in words if w and "
                                   "is_vowel(w[0])]\n```"), True),  # the prompt's helper is there
        (examples["clamp"], "```python\ndef clamp(x, lo, hi):\n    return x\n```", False),
        (running, "```python\n\n```", False),
        (running, "", False),
    ]
    assert task.check_many([c[0] for c in cases], [c[1] for c in cases]) == [c[2] for c in cases]
    with pytest.raises(BenchmarkDataError, match="humaneval has no train split; its official splits are test"):
        task.examples("train", 1)


# ----------------------------------------------------------------------------- ARC

def test_arc_prompts_letters_and_configs():
    examples = {e.prompt.split("\n\n")[1].split("\n")[0]: e for e in local("arc-easy").examples("test", 9)}
    light = examples["Which object gives off its own light?"]
    assert light.prompt == (f"{arc.SYSTEM}\n\nWhich object gives off its own light?\nOptions:\nA. a mirror\n"
                            "B. a candle flame\nC. a rock\nD. a wooden spoon") and light.reference == "B"
    assert examples["In which season are the days shortest in the Northern Hemisphere?"].reference == "D"  # label "4"
    assert examples["Which tool is best for measuring the mass of an apple?"].reference == "E"  # five choices
    assert "\nC. nitrogen" in examples["Which gas do plants take from the air to make food?"].prompt  # three
    challenge = local("arc-challenge").examples("test", 9)  # the same folder, its ARC-Challenge config
    assert len(challenge) == 3 and "Sand has a lower specific heat" in by_reference(challenge)["A"].prompt
    assert len(local("arc-easy").examples("validation", 9)) == 3
    with pytest.raises(BenchmarkDataError, match="no train file"):
        local("arc-challenge").examples("train", 1)


@pytest.mark.parametrize("response,letter", [
    ("Light comes from burning wax, so the answer is (B).", "B"), ("the answer is C", "C"),
    ("Answer: D", "D"), ("Thinking it over... A", "A"), ("B or C? I pick C.", "C"),
    ("", None), ("no letter here", None),
])
def test_arc_letter(response, letter):
    assert arc.arc_letter(response) == letter


def test_arc_scorer():
    task = BENCHMARKS["arc-easy"]
    example = Example("p", "B", "", "arc-easy")
    assert task.check(example, "Candles burn. The answer is (B).") and task.check(example, "Answer: B")
    for wrong_or_malformed in ("The answer is (A).", "", "I don't know.", "the answer is a candle flame"):
        assert not task.check(example, wrong_or_malformed), wrong_or_malformed


# ----------------------------------------------------------------------------- VQA

@pytest.mark.parametrize("raw,normal", [
    ("Stop.", "stop"), ("The Stop Sign", "stop sign"), ("two", "2"), ("none", "0"), ("A dog!", "dog"),
    ("Hello, World?", "hello world"), ("3.5", "3.5"), ("e-mail", "e mail"), ("( yes )", "yes"),
    ("dont", "don't"), ("couldnt've", "couldn't've"), ("yall'll", "y'all'll"), ("what's", "what 's"),
    ("  multi\nline\tanswer ", "multi line answer"), ("", ""),
])
def test_vqa_normalization(raw, normal):
    assert vqa_normalize(raw) == normal


def _official_definition(answer: str, annotators: list[str]) -> float:
    """The metric spelled out: min(1, matches / 3) over each of the ten subsets of nine annotators, averaged."""
    subsets = list(itertools.combinations(range(len(annotators)), len(annotators) - 1))
    given = vqa_normalize(answer)
    return sum(min(1.0, sum(vqa_normalize(annotators[i]) == given for i in s) / 3) for s in subsets) / len(subsets)


def test_vqa_soft_accuracy():
    for agreeing, score in ((0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)):
        assert soft_accuracy("red", ["red"] * agreeing + ["blue"] * (10 - agreeing)) == pytest.approx(score)
    assert soft_accuracy("The Red.", ["red"] * 4 + ["blue"] * 6) == 1.0  # matched after normalization
    rng = random.Random(0)
    for _ in range(200):
        annotators = [rng.choice(["cat", "a cat", "Cats", "dog", "two", "2"]) for _ in range(10)]
        answer = rng.choice(["cat", "2", "dog.", "bird"])
        assert soft_accuracy(answer, annotators) == pytest.approx(_official_definition(answer, annotators))


def test_textvqa_in_its_published_json_with_an_image_folder():
    task = local("textvqa")
    examples = by_reference(task.examples("validation", 9))
    assert set(examples) == {"stop", "12", "acme", "green tea"}
    stop = examples["stop"]
    assert stop.prompt == "what word is on the sign?\nAnswer the question using a single word or phrase."
    assert stop.image.mode == "RGB" and stop.image.size[0] > 0 and len(stop.meta["answers"]) == 10
    cases = [(stop, "STOP", 1.0), (stop, "stop sign", 0.3), (examples["12"], "twelve", 0.3),
             (examples["12"], "12.", 1.0), (examples["green tea"], "Green tea", 0.9), (examples["acme"], "yield", 0.0),
             (stop, "", 0.0), (stop, "stop stop stop stop", 0.0)]
    assert task.check_many([c[0] for c in cases], [c[1] for c in cases]) == pytest.approx([c[2] for c in cases])
    assert len(task.examples("train", 9)) == 3
    with pytest.raises(BenchmarkDataError, match="textvqa: the answers of its test split are withheld"):
        task.examples("test", 1)
    with pytest.raises(BenchmarkDataError, match="no annotators' answers"):  # and if the refusal were lifted
        replace(task, hidden=()).examples("test", 1)


def test_okvqa_answer_records_as_jsonl_and_embedded_images_as_parquet(tmp_path):
    import datasets

    task = local("okvqa")
    examples = by_reference(task.examples("validation", 9))
    assert set(examples) == {"vitamin c", "4", "france"} and examples["4"].image.mode == "RGB"
    cases = [(examples["vitamin c"], "Vitamin C", 1.0), (examples["vitamin c"], "C", 0.6),
             (examples["4"], "four", 1.0), (examples["france"], "Paris", 0.9), (examples["france"], "germany", 0.0)]
    assert task.check_many([c[0] for c in cases], [c[1] for c in cases]) == pytest.approx([c[2] for c in cases])
    with pytest.raises(BenchmarkDataError, match="okvqa has no test split; its official splits are train, validation"):
        task.examples("test", 1)

    rows = [json.loads(line) for line in (FIXTURES / "okvqa" / "validation.jsonl").read_text().splitlines()]
    for row in rows:  # the hub's layout: the image's bytes inside the parquet file
        row["image"] = {"bytes": (FIXTURES / "okvqa" / row["image"]["path"]).read_bytes(), "path": None}
    (tmp_path / "data").mkdir()
    table = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    table.to_parquet(str(tmp_path / "data" / "validation-00000-of-00001.parquet"))
    from_parquet = by_reference(task.with_data(tmp_path).examples("validation", 9))
    assert set(from_parquet) == set(examples)
    assert from_parquet["4"].image.tobytes() == examples["4"].image.tobytes()


# ----------------------------------------------------------------------------- every adapter

@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_reference_responses_score_full_marks(name):
    task = local(name)
    examples = task.examples("validation" if task.vision else "test", 9)
    scores = task.check_many(examples, [e.response for e in examples])
    assert len(examples) >= 3 and all(s > 0.8 for s in scores), scores  # VQA: the most given answer, 0.9 or 1
    assert all(e.task == name and e.prompt and e.reference for e in examples)
    assert not any(task.check_many(examples, [""] * len(examples)))


# ----------------------------------------------------------------------------- eval --data

def test_eval_data_through_the_cli(tmp_path, capsys):
    out = tmp_path / "results.json"
    cli.main(["eval", "--tasks", "gsm8k,math", "--data", str(FIXTURES / "gsm8k"), "--limit", "3", "--model", "default",
              "--device", "cpu", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["sources"] == {"gsm8k": str(FIXTURES / "gsm8k")} and set(data["results"]) == {"gsm8k", "math"}
    gsm = data["results"]["gsm8k"]
    assert gsm["n"] == 3 and gsm["metric"] == "accuracy" and 0 <= gsm["accuracy"] <= 100
    assert "gsm8k" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="eval: gsm8k has no validation split"):
        cli.main(["eval", "--tasks", "gsm8k", "--data", str(FIXTURES / "gsm8k"), "--split", "validation"])


def test_eval_data_on_a_vision_benchmark(tmp_path):
    out = tmp_path / "results.json"
    cli.main(["eval", "--tasks", "textvqa", "--data", str(FIXTURES / "textvqa"), "--split", "validation",
              "--limit", "2", "--device", "cpu", "--json", str(out)])
    result = json.loads(out.read_text())["results"]["textvqa"]
    assert result["n"] == 2 and result["metric"] == "VQA accuracy" and 0 <= result["accuracy"] <= 100


# ----------------------------------------------------------------------------- listing

def test_the_listing_names_every_task_and_benchmark(capsys):
    from t2demo.tasks.registry import PAPER_TABLES, listing

    rows = {r["name"]: r for r in listing()}
    assert list(rows) == [*TASKS, *BENCHMARKS]
    json.dumps(list(rows.values()))
    assert rows["math"] == {"name": "math", "kind": "synthetic", "group": "training", "category": "math",
                                 "vision": False, "splits": ["train", "validation", "test"], "metric": "accuracy",
                                 "source": "generated (seeded)", "max_new_tokens": TASKS["math"].max_new_tokens}
    assert rows["math-hard"]["group"] == "unseen" and rows["smalltalk"]["group"] == "other"
    assert {r["group"] for r in rows.values() if r["kind"] == "benchmark"} == {"table1", "table2"}
    assert sorted(n for names in PAPER_TABLES.values() for n in names) == sorted(BENCHMARKS)
    assert rows["textvqa"]["splits"] == ["train", "validation"] and rows["textvqa"]["vision"]  # test answers withheld
    assert rows["humaneval"].items() >= {"category": "code", "metric": "pass@1",
                                         "source": "hub:openai/openai_humaneval"}.items()
    cli.main(["tasks"])
    printed = capsys.readouterr().out
    assert all(name in printed for name in rows) and "hub:allenai/ai2_arc:ARC-Challenge" in printed
    cli.main(["tasks", "--json"])
    assert json.loads(capsys.readouterr().out) == list(rows.values())
    for command in ("eval", "report"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "gsm8k, competition-math, mbpp, humaneval, arc-easy" in " ".join(capsys.readouterr().out.split())


def test_report_benchmarks_group_is_the_paper_table(monkeypatch):
    from t2demo import report

    seen = {}
    monkeypatch.setattr(report, "side", lambda name, vision, *a: name)
    for which in ("table1", "table2"):
        monkeypatch.setattr(report, which, lambda text, vision, limit, batch, chosen, *a, which=which, **kw:
                            seen.setdefault(which, [t.name for t in chosen]) and {})
        monkeypatch.setattr(report, "format_" + which, lambda result: "")
    cli.main(["report", "table1", "--tasks", "math,benchmarks", "--data", f"gsm8k={FIXTURES / 'gsm8k'}"])
    cli.main(["report", "table2", "--tasks", "benchmarks"])
    assert seen == {"table1": ["math", "gsm8k", "mbpp", "arc-easy", "textvqa"],
                    "table2": ["competition-math", "humaneval", "arc-challenge", "okvqa"]}
